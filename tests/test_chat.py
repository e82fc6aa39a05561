import io
import os
import pty
import select
import subprocess
import sys
import time

from faqforge.answering.chat import answer_turn, converse
from faqforge.core.chat_format import question_turn
from faqforge.documents.retrieval import Retriever, build_index
from faqforge.models.sampling import Sampling
from tests.support.corpus import CHUNKS, INDEX
from tests.support.openai_server import teacher_reply
from tests.support.project import ROOT

QUESTION = "How do I run the whole pipeline with make run on a laptop?"


class RecordingBot:
    """Stands in for the model in the loop's own test: answers in two pieces
    and records every conversation it was asked to continue."""

    def __init__(self):
        self.seen = []

    def stream(self, messages, sampling):
        self.seen.append([dict(m) for m in messages])
        yield "answer "
        yield str(len(self.seen))


def test_conversation_is_multi_turn_and_reset_starts_over():
    bot, out = RecordingBot(), io.StringIO()
    lines = iter(["first?", "", "second?", "/reset", "third?", "/quit", "never read"])
    converse(bot, "Be brief.", Sampling(), read=lambda prompt: next(lines), out=out)
    first, second, third = bot.seen
    assert first == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "first?"}]
    assert second == first + [{"role": "assistant", "content": "answer 1"}, {"role": "user", "content": "second?"}]
    assert third == first[:1] + [{"role": "user", "content": "third?"}]
    assert "answer 1\nanswer 2\n(conversation reset)\nanswer 3\n" in out.getvalue()


def test_end_of_input_leaves_quietly():
    def read(prompt):
        raise EOFError
    converse(RecordingBot(), None, Sampling(), read=read, out=io.StringIO())


def read_until(fd, marker, timeout=120):
    """Read from a pty until `marker` appears; returns everything read."""
    data, deadline = b"", time.monotonic() + timeout
    while marker.encode() not in data:
        assert time.monotonic() < deadline, f"no {marker!r} in {data.decode(errors='replace')!r}"
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                data += os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
    return data.decode(errors="replace")


def test_chat_in_a_terminal_answers_resets_and_quits(tiny_model, tmp_path):
    """The real command under a pseudo-terminal, with the tiny model and no adapter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    # Sampled with a seed: greedy, the random tiny model only writes newlines.
    command = [sys.executable, "-m", "faqforge", "chat", "--model", tiny_model, "--adapter", "",
               "--max-new-tokens", "8", "--system", "Be brief.", "--temperature", "1", "--seed", "3"]
    one_shot = subprocess.run(command + ["--question", QUESTION], capture_output=True, text=True, cwd=tmp_path,
                              env=env, timeout=120).stdout.strip()
    controller, terminal = pty.openpty()
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal, cwd=tmp_path, env=env)
    os.close(terminal)
    try:
        assert "/reset starts over" in read_until(controller, "you> ")
        os.write(controller, f"{QUESTION}\n".encode())
        reply = read_until(controller, "you> ")
        answer_text = reply.split(QUESTION, 1)[-1].rsplit("you> ", 1)[0].strip()
        # The answer streamed onto the terminal is the one the one-shot mode prints.
        assert answer_text and answer_text == one_shot, (reply, one_shot)
        os.write(controller, b"/reset\n")
        assert "(conversation reset)" in read_until(controller, "you> ")
        os.write(controller, b"/quit\n")
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        os.close(controller)


def test_one_shot_question_streams_from_a_served_model(openai_server, tmp_path):
    """--base-url: the answer arrives as server-sent events from a real HTTP server."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEST_KEY": "secret"}
    result = subprocess.run([sys.executable, "-m", "faqforge", "chat", "--base-url", openai_server.base_url,
                             "--model", "test-teacher", "--api-key-env", "TEST_KEY", "--system", "Be brief.",
                             "--question", QUESTION], capture_output=True, text=True, env=env, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = teacher_reply([{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}])
    assert result.stdout.strip() == expected.strip() and len(expected.split()) > 3
    request = openai_server.requests[-1]
    assert request["body"]["stream"] is True and request["auth"] == "Bearer secret"
    assert "stop" not in request["body"] and request["body"]["max_tokens"] == 256
    result = subprocess.run([sys.executable, "-m", "faqforge", "chat", "--base-url", openai_server.base_url,
                             "--model", "test-teacher", "--api-key-env", "TEST_KEY", "--system", "Be brief.",
                             "--question", QUESTION, "--stop", "END", "--stop", "\n\n"], capture_output=True, text=True, env=env,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0 and openai_server.requests[-1]["body"]["stop"] == ["END", "\n\n"], result.stderr


def test_a_key_is_not_sent_over_plain_http_to_another_host(tmp_path):
    """Refused before any connection (the address is in a documentation range that routes nowhere)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAQFORGE_SERVE_KEY": "sk-serve-7Hq2LmX9pR4tW1zK"}
    command = [sys.executable, "-m", "faqforge", "chat", "--base-url", "http://192.0.2.7:8000/v1", "--model", "chatbot",
               "--question", "hi", "--passages", "0"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 1 and "plain http to another host, so the key in FAQFORGE_SERVE_KEY" in result.stderr
    assert "--insecure-http" in result.stderr and "sk-serve" not in result.stderr


def test_answer_writes_as_it_streams():
    out = io.StringIO()
    assert answer_turn(RecordingBot(), [{"role": "user", "content": "q"}], Sampling(), out) == "answer 1"
    assert out.getvalue() == "answer 1\n"


def test_unreachable_server_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "faqforge", "chat", "--base-url", "http://127.0.0.1:9/v1",
                             "--model", "chatbot", "--question", "hi"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120, cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error: http://127.0.0.1:9/v1")


class CitingBot(RecordingBot):
    def stream(self, messages, sampling):
        self.seen.append([dict(m) for m in messages])
        yield "Run dvc push after adding a remote. [1]"


def test_answer_shows_the_question_its_passages_and_prints_the_sources(tmp_path):
    build_index(CHUNKS, INDEX, tmp_path / "index")
    retriever, bot, out = Retriever(tmp_path / "index"), CitingBot(), io.StringIO()
    question = "How do I upload my outputs to a remote?"
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]
    assert answer_turn(bot, messages, Sampling(), out, retriever, 2) == "Run dvc push after adding a remote. [1]"
    shown = retriever.search([question], 2)[0]
    assert bot.seen[0] == [messages[0], {"role": "user", "content": question_turn(question, shown)}]
    assert shown[0]["doc"] == "data/docs/remote-storage.txt"
    assert out.getvalue() == "Run dvc push after adding a remote. [1]\nSources:\n  [1] remote-storage.txt, Remotes\n"
    lines = iter(["Which Python version is needed?", question, "/quit"])
    converse(bot, "Be brief.", Sampling(), read=lambda prompt: next(lines),
             out=io.StringIO(), retriever=retriever, k=2)
    second = bot.seen[-1]  # only the newest question is shown passages; the earlier one stays as asked
    assert second[1] == {"role": "user", "content": "Which Python version is needed?"}
    assert second[-1]["content"].startswith("Answer the question from the passages below")


def test_chat_retrieves_as_the_student_was_trained_and_prints_sources(tmp_path, openai_server):
    """No --passages: the adapter's prompt.json says RAFT with 2 passages and its system prompt."""
    import json
    build_index(CHUNKS, INDEX, tmp_path / "data" / "index")
    (tmp_path / "models" / "adapter").mkdir(parents=True)
    (tmp_path / "models" / "adapter" / "prompt.json").write_text(json.dumps(
        {"system_prompt": "Answer from the passages.", "context": "raft", "passages": 2}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    question = "How do I upload my outputs to a remote?"
    result = subprocess.run([sys.executable, "-m", "faqforge", "chat", "--base-url", openai_server.base_url,
                             "--model", "test-teacher", "--answer", "model", "--question", question],
                            capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sent = openai_server.requests[-1]["body"]["messages"]
    assert sent[0] == {"role": "system", "content": "Answer from the passages."}
    assert sent[1]["content"].count("\n[") == 2 and sent[1]["content"].endswith(f"Question: {question}")
    answer_text, block = result.stdout.rsplit("Sources", 1)
    assert answer_text.strip() and "  [1] remote-storage.txt, Remotes" in block
    missing = subprocess.run([sys.executable, "-m", "faqforge", "chat", "--base-url", openai_server.base_url,
                              "--model", "m", "--passages", "2", "--index", "nowhere", "--question", "q"],
                             capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert missing.returncode == 1 and "nowhere/index.json: no retrieval index there" in missing.stderr


def test_a_full_fine_tune_is_chatted_with_as_the_model_itself(tiny_model, tmp_path):
    """finetune.method full leaves a checkpoint, not an adapter, in models/adapter: chat loads it as the model."""
    from faqforge.answering.chat import local_bot
    bot = local_bot("models/base-that-is-not-read", tiny_model)
    assert bot.model.name_or_path == tiny_model and not hasattr(bot.model, "peft_config")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-m", "faqforge", "chat", "--adapter", str(empty), "--passages", "0",
                             "--question", "q"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and "neither a LoRA adapter (adapter_config.json) nor a fine-tuned checkpoint" \
        in result.stderr
