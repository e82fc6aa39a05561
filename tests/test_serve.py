"""`serve` is the real OpenAI-compatible peer the openai backend is tested against."""

import json
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from conftest import ROOT
from faqforge.answering.backends import ModelServer, Retrieving
from faqforge.answering.serve import make_http_server
from faqforge.teacher.client import Teacher

QUESTION = [{"role": "user", "content": "How do I add a document?"}]


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """A LoRA adapter on the tiny model with random (non-zero) weights, so it changes answers."""
    import torch
    from peft import LoraConfig, get_peft_model

    from faqforge.models.checkpoints import load_model
    model, _ = load_model(tiny_model)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=64, target_modules="all-linear",
                                                  init_lora_weights=False))
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def served(tiny_model, adapter):
    model_server = ModelServer(tiny_model, {"chatbot": adapter}, name="tiny", batch_size=8, max_wait_ms=50)
    http = make_http_server(model_server, port=0)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield model_server, f"http://127.0.0.1:{http.server_address[1]}/v1"
    http.shutdown()
    http.server_close()


def teacher(url, model, tmp_path, **extra):
    return Teacher({"backend": "openai", "model": model, "base_url": url, "api_key_env": "NONE",
                    "temperature": 0.0, "max_tokens": 12, "max_retries": 0, "concurrency": 8, **extra},
                   cache_dir=tmp_path)


def test_models_lists_base_and_adapters(served):
    _, url = served
    with urllib.request.urlopen(f"{url}/models") as response:
        assert [m["id"] for m in json.load(response)["data"]] == ["tiny", "chatbot"]


def test_base_and_adapter_answers_match_in_process_generation(served, tiny_model, adapter, tmp_path):
    from peft import PeftModel

    from faqforge.models.checkpoints import load_model
    from faqforge.models.decoding import generate_chat
    _, url = served
    [base] = teacher(url, "tiny", tmp_path / "a").chat([QUESTION])
    [tuned] = teacher(url, "chatbot", tmp_path / "b").chat([QUESTION])
    model, tokenizer = load_model(tiny_model)
    expected_base = generate_chat(model, tokenizer, [QUESTION], max_new_tokens=12)[0]["text"]
    with_adapter = PeftModel.from_pretrained(model, adapter).eval()
    expected_tuned = generate_chat(with_adapter, tokenizer, [QUESTION], max_new_tokens=12)[0]["text"]
    assert base["text"] == expected_base and tuned["text"] == expected_tuned
    assert base["text"] != tuned["text"]
    assert base["completion_tokens"] == 12 and base["prompt_tokens"] > 5


def test_concurrent_requests_share_batches_and_logprobs_and_schema_work(served, tmp_path):
    from faqforge.synthesis.generate import response_format
    model_server, url = served
    before = dict(model_server.stats)
    chats = [[{"role": "user", "content": f"Question number {i}?"}] for i in range(8)]
    replies = teacher(url, "chatbot", tmp_path, max_tokens=6).chat(chats, top_logprobs=2)
    assert all(r["text"] is not None and len(r["logprobs"]) == r["completion_tokens"] for r in replies)
    assert all(len(t["top"]) == 2 for r in replies for t in r["logprobs"])
    batches = model_server.stats["batches"] - before["batches"]
    assert model_server.stats["requests"] - before["requests"] == 8 and batches < 8

    fmt = response_format(2, {"format": "qa", "answer_first": True, "max_chars": {"question": 40, "answer": 40}})
    [guided] = teacher(url, "tiny", tmp_path / "g", max_tokens=120).chat([QUESTION], response_formats=[fmt])
    assert len(json.loads(guided["text"])) == 2


def test_bad_requests_get_openai_errors(served, tmp_path):
    _, url = served
    [unknown] = teacher(url, "nope", tmp_path).chat([QUESTION])
    assert unknown["error"] == "NotFoundError" and "choose one of" in unknown["message"]
    bad_schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer"}}}
    [rejected] = teacher(url, "tiny", tmp_path / "s").chat([QUESTION], response_formats=[bad_schema])
    assert rejected["text"] is not None  # the 400 names response_format: the client falls back without it
    request = urllib.request.Request(f"{url}/chat/completions", data=b"{not json", method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 400 and "not JSON" in json.load(error.value)["error"]["message"]


def test_serve_command_runs_and_checks_its_arguments(tiny_model, adapter, tmp_path):
    bad = subprocess.run([sys.executable, "-m", "faqforge", "serve", "--model", tiny_model,
                          "--lora-modules", f"chatbot={tmp_path}"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "adapter_config.json not found" in bad.stderr
    full = subprocess.run([sys.executable, "-m", "faqforge", "serve", "--model", tiny_model,
                           "--lora-modules", f"chatbot={tiny_model}"], capture_output=True, text=True, cwd=ROOT)
    assert full.returncode == 1 and f"serve it with --model {tiny_model} --served-model-name chatbot" in full.stderr
    process = subprocess.Popen([sys.executable, "-m", "faqforge", "serve", "--model", tiny_model, "--port", "0",
                                "--lora-modules", f"chatbot={adapter}", "--passages", "0"], stdout=subprocess.PIPE,
                               text=True, cwd=ROOT)
    try:
        line = process.stdout.readline()
        assert line.startswith("serving tiny-model") or "chatbot" in line
        url = line.split(" on ")[1].strip()
        start = time.monotonic()
        [reply] = teacher(url, "chatbot", tmp_path).chat([QUESTION])
        assert reply["text"] is not None and time.monotonic() - start < 60
    finally:
        process.terminate()
        process.wait(timeout=30)


def start_serve(*args, cwd):
    """`python -m faqforge serve` on a free port; returns the process and its /v1 URL."""
    process = subprocess.Popen([sys.executable, "-m", "faqforge", "serve", "--port", "0", *args], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    line = process.stdout.readline()
    if not line.startswith("serving"):
        process.kill()
        raise AssertionError(f"serve did not start: {line}{process.stderr.read()}")
    return process, line.split(" on ")[1].strip()


def test_serve_forwards_the_built_prompt_to_a_generator_and_returns_sources(tmp_path, openai_server):
    """--generator-url: no model in-process; the second server gets the training layout, the client the sources."""
    import openai

    from faqforge.core.chat_format import question_messages
    from faqforge.documents.retrieval import Retriever, build_index
    from openai_server import teacher_reply
    from test_retrieval import CHUNKS, PARAMS
    build_index(CHUNKS, PARAMS, tmp_path / "data" / "index")
    layout = tmp_path / "adapter"
    layout.mkdir()
    (layout / "prompt.json").write_text(json.dumps({"system_prompt": "Answer from the passages.", "context": "raft",
                                                    "passages": 2}))
    process, url = start_serve("--generator-url", openai_server.base_url, "--layout-from", str(layout), cwd=tmp_path)
    try:
        assert "top 2 passages of data/index" in process.stdout.readline()
        client = openai.OpenAI(base_url=url, api_key="none")
        question = "How do I upload my outputs to a remote?"
        reply = client.chat.completions.create(model="test-teacher", messages=[{"role": "user", "content": question}],
                                               temperature=0, max_tokens=40)
        forwarded = openai_server.requests[-1]["body"]
        shown = Retriever(tmp_path / "data" / "index").search([question], 2)[0]
        # The generator got exactly the prompt training used: system prompt, passages, question.
        assert forwarded["messages"] == question_messages(question, "Answer from the passages.", shown)
        assert (forwarded["model"], forwarded["temperature"], forwarded["max_tokens"]) == ("test-teacher", 0, 40)
        assert reply.choices[0].message.content == teacher_reply(forwarded["messages"])
        sources = reply.choices[0].model_extra["sources"]
        assert sources and {s["doc"] for s in sources} == {"data/docs/remote-storage.txt"}
        assert all(s["source"] == "remote-storage.txt, Remotes" and s["text"] for s in sources)
        with pytest.raises(openai.NotFoundError, match="not served"):
            client.chat.completions.create(model="nope", messages=[{"role": "user", "content": question}])
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_in_process_serving_with_retrieval_returns_sources_and_keeps_built_prompts(tiny_model, tmp_path):
    from faqforge.core.chat_format import question_turn
    from faqforge.documents.retrieval import Retriever, build_index
    from test_retrieval import CHUNKS, PARAMS
    build_index(CHUNKS, PARAMS, tmp_path / "index")
    retriever = Retriever(tmp_path / "index")
    inner = ModelServer(tiny_model, name="tiny", batch_size=2, max_wait_ms=5)
    seen = []
    complete = inner.complete
    inner.complete = lambda body: seen.append(body["messages"]) or complete(body)
    server = Retrieving(inner, retriever, 2, "Be brief.")
    question = "Which Python version is needed for installing?"
    reply = server.complete({"model": "tiny", "messages": [{"role": "user", "content": question}], "max_tokens": 4})
    assert reply["choices"][0]["sources"] and reply["choices"][0]["sources"][0]["doc"] == "data/docs/installation.txt"
    assert seen[0][0] == {"role": "system", "content": "Be brief."}
    built = question_turn(question, retriever.search([question], 2)[0])
    assert seen[0][1]["content"] == built
    server.complete({"model": "tiny", "messages": [{"role": "system", "content": "Mine."},
                                                   {"role": "user", "content": built}], "max_tokens": 4})
    assert seen[1] == [{"role": "system", "content": "Mine."}, {"role": "user", "content": built}]  # as sent
