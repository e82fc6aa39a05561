"""`faqforge serve` over real HTTP on 127.0.0.1: the openai SDK (sync, async,
streaming), `faqforge chat`, the training prompt, and the limits that make it
safe to expose. It is also the real OpenAI-compatible peer the openai backend is
tested against."""

import asyncio
import contextlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from faqforge.answering.app import Limits, create_app
from faqforge.answering.backends import ModelServer, TrainedPrompt
from faqforge.teacher.client import Teacher
from tests.support.corpus import a_stop_in
from tests.support.http import running
from tests.support.project import ROOT
from tests.support.sections import section

KEY = "sk-serve-7Hq2LmX9pR4tW1zK"
SYSTEM = "You are the faqforge help assistant."
QUESTION = "How do I add a document?"
ASK = [{"role": "user", "content": QUESTION}]


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """A LoRA adapter on the tiny model with random (non-zero) weights, so it changes answers,
    stored with the prompt it was 'trained' with, as the finetune stage stores it."""
    import torch
    from peft import LoraConfig, get_peft_model

    from faqforge.models.checkpoints import load_model
    model, _ = load_model(tiny_model)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=64, target_modules="all-linear",
                                                  init_lora_weights=False))
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(path)
    (path / "prompt.json").write_text(json.dumps({"system_prompt": SYSTEM, "context": "closed_book",
                                                  "passages": 0}))
    return str(path)


@pytest.fixture(scope="module")
def model_server(tiny_model, adapter):
    return ModelServer(tiny_model, {"chatbot": adapter}, name="tiny", batch_size=8, max_wait_ms=50,
                       max_tokens_limit=1000)


def app_for(model_server, key=KEY, **limits):
    layout = {"system_prompt": SYSTEM, "passages": 0}
    return create_app(TrainedPrompt(model_server, {"tiny": layout, "chatbot": layout}), key, Limits(**limits))


@pytest.fixture(scope="module")
def served(model_server):
    with running(app_for(model_server)) as url:
        yield model_server, url


def get(url, key=KEY):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.load(e)


def post(url, body, key=KEY, raw=None, headers=None):
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/chat/completions", data=data, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {key}", **(headers or {})})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.load(e)


def expected(tiny_model, adapter, messages, max_new_tokens):
    """The answers the tiny model and its adapter give in-process (sampled, seed 0: the random
    model's greedy answer is blank lines)."""
    from peft import PeftModel

    from faqforge.models.checkpoints import load_model
    from faqforge.models.decoding import generate_chat
    from faqforge.models.sampling import Sampling
    model, tokenizer = load_model(tiny_model)
    sampled = Sampling(max_tokens=max_new_tokens, temperature=1.0)
    base = generate_chat(model, tokenizer, [messages], sampled)[0]["text"]
    tuned = generate_chat(PeftModel.from_pretrained(model, adapter).eval(), tokenizer, [messages], sampled)[0]["text"]
    return {"tiny": base, "chatbot": tuned}


def test_the_openai_sdk_sync_async_and_streaming_gets_base_and_adapter_answers(served, tiny_model, adapter):
    import openai
    model_server, url = served
    want = expected(tiny_model, adapter, [{"role": "system", "content": SYSTEM}, *ASK], 12)
    assert want["tiny"] and want["chatbot"] and want["tiny"] != want["chatbot"]
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
    assert [m.id for m in client.models.list()] == ["tiny", "chatbot"]
    for name in ("tiny", "chatbot"):
        reply = client.chat.completions.create(model=name, messages=ASK, max_tokens=12, temperature=1.0, seed=0)
        assert reply.choices[0].message.content == want[name]  # no system message: the trained one was used
        assert reply.usage.completion_tokens == 12 and reply.choices[0].finish_reason == "length"
        stream = client.chat.completions.create(model=name, messages=ASK, max_tokens=12, temperature=1.0, seed=0,
                                                stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == want[name]
        assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # token by token
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
        assert chunks[-1].usage.completion_tokens == 12 and chunks[0].choices[0].delta.role == "assistant"

    async def together():
        async with openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0) as aclient:
            return await asyncio.gather(*[aclient.chat.completions.create(
                model=name, messages=ASK, max_tokens=12, temperature=1.0) for name in ("tiny", "chatbot") * 3])
    before = dict(model_server.stats)
    replies = asyncio.run(together())
    assert [r.model for r in replies] == ["tiny", "chatbot"] * 3
    assert all(r.choices[0].message.content and r.usage.completion_tokens == 12 for r in replies)
    assert model_server.stats["batches"] - before["batches"] < 6  # requests that came together shared batches


def test_a_stop_string_ends_the_answer_streamed_or_not_and_chat_decodes_as_serve(served, tiny_model, adapter,
                                                                                 tmp_path):
    """`stop` (one field of the sampling settings) through serve, streamed and not, and
    through chat in-process: the same answer, cut where the stop string first appears."""
    import openai
    _, url = served
    whole = expected(tiny_model, adapter, [{"role": "system", "content": SYSTEM}, *ASK], 12)["chatbot"]
    stop, cut = a_stop_in(whole)
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
    settings = {"model": "chatbot", "messages": ASK, "max_tokens": 12, "temperature": 1.0, "seed": 0}
    reply = client.chat.completions.create(**settings, stop=[stop])
    assert reply.choices[0].message.content == cut and reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens < 12
    chunks = list(client.chat.completions.create(**settings, stop=stop, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == cut
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "faqforge", "chat", "--model", tiny_model, "--adapter", adapter, "--passages",
               "0", "--question", QUESTION, "--max-new-tokens", "12", "--temperature", "1", "--seed", "0"]
    # In-process, decoded as serve decodes: the same cut answer (without the stop string, the whole one:
    # test_the_openai_sdk_... compares serve with generate_chat itself).
    done = subprocess.run(command + ["--stop", stop], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == cut, done.stderr


def test_faqforge_chat_talks_to_serve(served, tmp_path):
    _, url = served
    for name in ("tiny", "chatbot"):
        done = subprocess.run([sys.executable, "-m", "faqforge", "chat", "--base-url", url, "--model", name,
                               "--question", QUESTION, "--max-new-tokens", "8", "--passages", "0", "--temperature", "1"],
                              capture_output=True, text=True, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "FAQFORGE_SERVE_KEY": KEY})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() and KEY not in done.stdout + done.stderr
    wrong = subprocess.run([sys.executable, "-m", "faqforge", "chat", "--base-url", url, "--model", "chatbot",
                            "--question", QUESTION, "--passages", "0"], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "FAQFORGE_SERVE_KEY": "sk-wrong-key-123456"})
    assert wrong.returncode == 1 and "AuthenticationError" in wrong.stderr and "sk-wrong" not in wrong.stderr


def test_served_prompt_token_ids_are_the_training_prompts(served, tiny_model):
    """The prompt the server builds (trained system prompt filled in, the tokenizer's chat
    template) is token for token the prompt part of a training example."""
    from faqforge.models.checkpoints import load_tokenizer
    from faqforge.training.setup import tokenize_example
    _, url = served
    example = tokenize_example(load_tokenizer(tiny_model), [{"role": "system", "content": SYSTEM}, *ASK,
                                                            {"role": "assistant", "content": "Put it in data/docs/."}])
    prompt = example["input_ids"][:example["labels"].index(next(x for x in example["labels"] if x != -100))]
    for messages in (ASK, [{"role": "system", "content": SYSTEM}, *ASK]):
        status, _, reply = post(url, {"model": "chatbot", "messages": messages, "max_tokens": 3,
                                      "return_token_ids": True})
        assert status == 200 and reply["prompt_token_ids"] == prompt
        assert reply["usage"]["prompt_tokens"] == len(prompt) and len(reply["choices"][0]["token_ids"]) == 3
    status, _, other = post(url, {"model": "chatbot", "messages": [{"role": "system", "content": "Mine."}, *ASK],
                                  "max_tokens": 1, "return_token_ids": True})
    assert other["prompt_token_ids"] != prompt  # a client's own system prompt is kept


def test_teacher_requests_share_batches_and_logprobs_and_schemas_work(served, tmp_path, monkeypatch):
    from faqforge.synthesis.generate import response_format
    model_server, url = served
    monkeypatch.setenv("SERVE_TEST_KEY", KEY)

    def teacher(model, cache, **extra):
        from faqforge.core.sections import Teacher as TeacherSection
        return Teacher(TeacherSection(**{"backend": "openai", "model": model, "base_url": url,
                                         "api_key_env": "SERVE_TEST_KEY", "temperature": 0.0, "max_tokens": 6,
                                         "max_retries": 0, "concurrency": 8, **extra}),
                       cache_dir=tmp_path / cache)
    before = dict(model_server.stats)
    chats = [[{"role": "user", "content": f"Question number {i}?"}] for i in range(8)]
    replies = teacher("chatbot", "a").chat(chats, top_logprobs=2)
    assert all(r["text"] is not None and len(r["logprobs"]) == r["completion_tokens"] for r in replies)
    assert all(len(t["top"]) == 2 for r in replies for t in r["logprobs"])
    batches = model_server.stats["batches"] - before["batches"]
    assert model_server.stats["requests"] - before["requests"] == 8 and batches < 8
    fmt = response_format(2, section("generate", format="qa", answer_first=True, answer_style="plain",
                                     max_chars={"question": 40, "answer": 40}))
    [guided] = teacher("tiny", "g", max_tokens=120).chat([ASK], response_formats=[fmt])
    assert len(json.loads(guided["text"])) == 2
    [unknown] = teacher("nope", "n").chat([ASK])
    assert unknown["error"] == "NotFoundError" and "choose one of" in unknown["message"]


def test_a_missing_or_wrong_key_gets_401_compared_in_constant_time(served, monkeypatch):
    _, url = served
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert get(f"{url}/models", key=None)[0] == 401
    status, headers, body = get(f"{url}/models", key=KEY[:-1] + "X")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert body["error"]["type"] == "authentication_error" and KEY not in json.dumps(body)
    assert post(url, {"model": "tiny", "messages": ASK}, key="nope")[0] == 401
    assert (KEY[:-1] + "X").encode() in [a for a, _ in compared]  # the wrong key went through compare_digest
    assert get(f"{url.removesuffix('/v1')}/health", key=None)[:1] == (200,)  # for load balancers, no key
    assert get(f"{url}/models")[0] == 200


def test_bad_requests_get_openai_shaped_errors(served):
    _, url = served
    cases = [({"model": "nope", "messages": ASK}, 404, "model"),
             ({"model": "tiny", "messages": []}, 400, "messages"),
             ({"model": "tiny", "messages": ASK, "max_tokens": 1001}, 400, "max_tokens"),
             ({"model": "tiny", "messages": ASK, "temperature": 3}, 400, "temperature"),
             ({"model": "tiny", "messages": ASK, "logprobs": True, "stream": True}, 400, "logprobs"),
             ({"model": "tiny", "messages": ASK, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
             ({"model": "tiny", "messages": ASK, "stop": [""]}, 400, "stop"),
             ({"model": "tiny", "messages": ASK, "stop": 7}, 400, "stop"),
             ({"model": "tiny", "messages": ASK, "response_format": {"type": "json_schema", "json_schema": {
                 "name": "x", "schema": {"type": "integer"}}}}, 400, "response_format")]
    for body, status, param in cases:
        got, _, reply = post(url, body)
        assert (got, reply["error"]["param"]) == (status, param), reply
        assert reply["error"]["message"] and reply["error"]["type"]
    status, _, reply = post(url, None, raw=b"{not json")
    assert status == 400 and "not JSON" in reply["error"]["message"]
    assert get(f"{url}/nowhere")[0] == 404


def raw_request(url, head, body=b"", wait=5.0):
    """Send hand-made bytes; returns the status line and the rest of the response."""
    port = int(url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        with contextlib.suppress(socket.timeout):
            while chunk := sock.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and data.split(b"\r\n\r\n", 1)[1].rstrip().endswith(b"}"):
                    break
    status, _, rest = data.decode(errors="replace").partition("\r\n")
    return status, rest


def test_body_limits_and_bad_content_length(model_server):
    with running(app_for(model_server, max_body_bytes=2000, body_timeout=1.0)) as url:
        status, _, reply = post(url, {"model": "tiny", "messages": [{"role": "user", "content": "x" * 3000}]})
        assert status == 413 and "2000 bytes" in reply["error"]["message"]
        base = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        status, rest = raw_request(url, base + "Content-Length: 99999999999\r\n\r\n")
        assert " 413 " in status
        status, rest = raw_request(url, base + "Content-Length: abc\r\n\r\n", b"{}")
        assert " 400 " in status
        start = time.monotonic()
        status, rest = raw_request(url, base + "Content-Length: 100\r\n\r\n", b'{"model": "tiny"}')
        assert " 408 " in status and "did not arrive within 1 s" in rest and time.monotonic() - start < 5


def stream_lines(url, body, key=KEY):
    """Open a streamed request; returns (response, its line iterator)."""
    request = urllib.request.Request(f"{url}/chat/completions", data=json.dumps({**body, "stream": True}).encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "Authorization": f"Bearer {key}"})
    response = urllib.request.urlopen(request)
    return response, (line.decode() for line in response if line.strip())


def test_overload_gets_503_with_retry_after_and_a_gone_client_stops_its_generation(model_server):
    """Two long generations fill a server limited to two; the third request is told when to
    come back; closing the streams mid-way stops both generations well before max_tokens."""
    with running(app_for(model_server, max_concurrent=2)) as url:
        before = model_server.stats["cancelled"]
        opened = [stream_lines(url, {"model": "tiny", "messages": ASK, "max_tokens": 900, "temperature": 0.7})
                  for _ in range(2)]  # one batch: ~2 s of generating
        for _, lines in opened:
            assert next(lines).startswith("data: ")  # both are in flight
            assert json.loads(next(lines)[6:])["choices"][0]["delta"]["content"]
        status, headers, reply = post(url, {"model": "tiny", "messages": ASK, "max_tokens": 4})
        assert status == 503 and int(headers["retry-after"]) >= 1 and "limit of 2" in reply["error"]["message"]
        for response, _ in opened:
            response.fp.raw._sock.shutdown(socket.SHUT_RDWR)  # the client goes away mid-stream
            response.close()
        deadline = time.monotonic() + 30
        while model_server.stats["cancelled"] < before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        stopped = [n for how, n in list(model_server.finished)[-2:] if how == "cancelled"]
        assert len(stopped) == 2 and max(stopped) < 900, model_server.finished
        assert post(url, {"model": "tiny", "messages": ASK, "max_tokens": 4})[0] == 200  # capacity is back


def test_a_client_gone_before_a_plain_answer_stops_its_generation_too(model_server):
    with running(app_for(model_server)) as url:
        before = model_server.stats["cancelled"]
        body = json.dumps({"model": "tiny", "messages": ASK, "max_tokens": 900}).encode()
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            time.sleep(0.3)  # generating
        deadline = time.monotonic() + 30
        while model_server.stats["cancelled"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        how, tokens = model_server.finished[-1]
        assert how == "cancelled" and tokens < 900


def test_a_generation_over_the_time_limit_is_stopped(model_server):
    with running(app_for(model_server, request_timeout=0.3)) as url:
        start = time.monotonic()
        status, _, reply = post(url, {"model": "tiny", "messages": ASK, "max_tokens": 900})
        assert status == 504 and "longer than this server allows" in reply["error"]["message"]
        assert time.monotonic() - start < 5 and model_server.finished[-1][0] == "timed_out"
        _, lines = stream_lines(url, {"model": "tiny", "messages": ASK, "max_tokens": 900})
        events = list(lines)
        assert "longer than this server allows" in events[-1] and "[DONE]" not in events[-1]


def serve_command(*args, env=None, cwd=ROOT):
    return subprocess.Popen([sys.executable, "-m", "faqforge", "serve", "--port", "0", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def started(process):
    line = process.stdout.readline()
    if not line.startswith("serving"):
        process.kill()
        raise AssertionError(f"serve did not start: {line}{process.stderr.read()}")
    return line.split(" on ")[1].strip()


def test_serve_command_checks_its_arguments_and_refuses_an_open_address_without_a_key(tiny_model, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FAQFORGE_SERVE_KEY"}
    bad = subprocess.run([sys.executable, "-m", "faqforge", "serve", "--model", tiny_model,
                          "--lora-modules", f"chatbot={tmp_path}"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert bad.returncode == 1 and "neither adapter_config.json" in bad.stderr
    for host in ("0.0.0.0", "::"):
        open_ = subprocess.run([sys.executable, "-m", "faqforge", "serve", "--model", tiny_model, "--host", host],
                               capture_output=True, text=True, cwd=ROOT, env=env)
        assert open_.returncode == 1 and "without a key" in open_.stderr and "--insecure" in open_.stderr


def test_serve_command_serves_a_full_fine_tune_beside_the_base_and_logs_no_key(tiny_model, adapter, tmp_path):
    """`--lora-modules` takes a full checkpoint too; the key checks run in the real process, and
    neither the right key nor a wrong one shows up in what it prints."""
    import openai
    full = tmp_path / "full"
    subprocess.run(["cp", "-r", tiny_model, str(full)], check=True)
    (full / "prompt.json").write_text(json.dumps({"system_prompt": SYSTEM, "context": "closed_book", "passages": 0}))
    process = serve_command("--model", tiny_model, "--lora-modules", f"chatbot={adapter}", f"full={full}",
                            env={"FAQFORGE_SERVE_KEY": KEY})
    try:
        url = started(process)
        client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
        assert [m.id for m in client.models.list()] == ["base", "chatbot", "full"]
        for name in ("base", "chatbot", "full"):
            assert client.chat.completions.create(model=name, messages=ASK, max_tokens=4).choices[0].message.content
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="sk-wrong-7Hq2LmX9", max_retries=0).models.list()
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert "POST /v1/chat/completions" in out + err  # uvicorn's access log is on
    assert KEY not in out + err and "sk-wrong" not in out + err


def test_serve_forwards_the_built_prompt_to_a_generator_and_returns_sources(tmp_path, openai_server):
    """--generator-url: no model in-process; the second server gets the training layout, the client the sources."""
    import openai

    from faqforge.core.chat_format import question_messages
    from faqforge.documents.retrieval import Retriever, build_index
    from tests.support.corpus import CHUNKS, INDEX
    from tests.support.openai_server import teacher_reply
    build_index(CHUNKS, INDEX, tmp_path / "data" / "index")
    layout = tmp_path / "adapter"
    layout.mkdir()
    (layout / "prompt.json").write_text(json.dumps({"system_prompt": "Answer from the passages.", "context": "raft",
                                                    "passages": 2}))
    process = serve_command("--generator-url", openai_server.base_url, "--layout-from", str(layout),
                            "--answer", "model", cwd=tmp_path)
    try:
        url = started(process)
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
        streamed = list(client.chat.completions.create(model="test-teacher", stream=True, max_tokens=40,
                                                       messages=[{"role": "user", "content": question}]))
        assert "".join(c.choices[0].delta.content or "" for c in streamed) == reply.choices[0].message.content
        assert streamed[-1].choices[0].model_extra["sources"] == sources
        with pytest.raises(openai.NotFoundError, match="not served"):
            client.chat.completions.create(model="nope", messages=[{"role": "user", "content": question}])
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_and_chat_answer_evidence_first_with_the_same_quote_and_sources(tmp_path, openai_server):
    """--answer evidence (the default): a verbatim quote of a retrieved passage citing it, from
    faqforge.documents.evidence, in serve's reply and stream and in chat's output; no model generates."""
    import openai

    from faqforge.documents.evidence import evidence_reply
    from faqforge.documents.retrieval import Retriever, build_index
    from tests.support.corpus import CHUNKS, INDEX
    build_index(CHUNKS, INDEX, tmp_path / "data" / "index")
    layout = tmp_path / "adapter"
    layout.mkdir()
    (layout / "prompt.json").write_text(json.dumps({"system_prompt": "Answer from the passages.", "context": "raft",
                                                    "passages": 2}))
    question = "How do I upload my outputs to a remote?"
    shown = Retriever(tmp_path / "data" / "index").search([question], 2)[0]
    expected = evidence_reply(question, shown)
    quote, n = expected.rsplit(" [", 1)[0].strip('"'), int(expected.rsplit("[", 1)[1].rstrip("]"))
    assert quote in shown[n - 1]["text"] and quote.startswith("Then dvc push uploads")
    process = serve_command("--generator-url", openai_server.base_url, "--layout-from", str(layout), cwd=tmp_path)
    try:
        client = openai.OpenAI(base_url=started(process), api_key="none")
        asked = len(openai_server.requests)
        reply = client.chat.completions.create(model="test-teacher", messages=[{"role": "user", "content": question}])
        assert reply.choices[0].message.content == expected
        sources = reply.choices[0].model_extra["sources"]
        assert [(s["n"], s["cited"], s["doc"]) for s in sources] == [(n, True, shown[n - 1]["doc"])]
        streamed = list(client.chat.completions.create(model="test-teacher", stream=True,
                                                       messages=[{"role": "user", "content": question}]))
        assert "".join(c.choices[0].delta.content or "" for c in streamed) == expected
        assert streamed[-1].choices[0].model_extra["sources"] == sources
        assert len(openai_server.requests) == asked   # the generator was never asked
    finally:
        process.terminate()
        process.wait(timeout=30)
    (tmp_path / "models").mkdir()
    (layout).rename(tmp_path / "models" / "adapter")
    chat = subprocess.run([sys.executable, "-m", "faqforge", "chat", "--base-url", openai_server.base_url,
                           "--model", "test-teacher", "--question", question], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60, cwd=tmp_path)
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout == f"{expected}\nSources:\n  [{n}] {sources[0]['source']}\n"
    assert len(openai_server.requests) == asked


def test_in_process_serving_with_retrieval_uses_the_training_layout_token_for_token(tiny_model, tmp_path):
    from faqforge.core.chat_format import question_messages, question_turn
    from faqforge.documents.retrieval import Retriever, build_index
    from faqforge.models.checkpoints import load_tokenizer
    from faqforge.models.decoding import generate_chat  # noqa: F401  (what ModelServer answers with)
    from faqforge.training.setup import tokenize_example
    from tests.support.corpus import CHUNKS, INDEX
    build_index(CHUNKS, INDEX, tmp_path / "index")
    retriever = Retriever(tmp_path / "index")
    inner = ModelServer(tiny_model, name="tiny", batch_size=2, max_wait_ms=5)
    app = create_app(TrainedPrompt(inner, {"tiny": {"system_prompt": "Be brief.", "passages": 2}}, retriever))
    question = "Which Python version is needed for installing?"
    shown = retriever.search([question], 2)[0]
    example = tokenize_example(load_tokenizer(tiny_model), [*question_messages(question, "Be brief.", shown),
                                                            {"role": "assistant", "content": "3.11 [1]"}])
    prompt = example["input_ids"][:example["labels"].index(next(x for x in example["labels"] if x != -100))]
    with running(app) as url:
        status, _, reply = post(url, {"model": "tiny", "messages": [{"role": "user", "content": question}],
                                      "max_tokens": 4, "return_token_ids": True}, key=None)
        assert status == 200 and reply["prompt_token_ids"] == prompt
        assert reply["choices"][0]["sources"][0]["doc"] == "data/docs/installation.txt"
        built = question_turn(question, shown)  # a client that built the prompt itself is answered as it is
        status, _, same = post(url, {"model": "tiny", "messages": [{"role": "system", "content": "Be brief."},
                                                                   {"role": "user", "content": built}],
                                     "max_tokens": 4, "return_token_ids": True}, key=None)
        assert same["prompt_token_ids"] == prompt
