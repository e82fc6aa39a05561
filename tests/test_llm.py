import json
import math

import pytest

from faqforge.core.sections import Teacher as TeacherSection
from faqforge.models.cache import cached_entries, request_key
from faqforge.teacher.client import Teacher
from tests.support.openai_server import UPSTREAM_TOKEN, OpenAIServer
from tests.support.sections import section

MESSAGES = [{"role": "user", "content": 'Write 2 questions:\n"""Run dvc push to upload the cache to the remote storage."""'}]


def teacher_at(server, **extra):
    return TeacherSection(**{"backend": "openai", "model": "test-teacher", "base_url": server.base_url,
                             "api_key_env": "FAQFORGE_TEST_KEY", "temperature": 0.0, "max_tokens": 64,
                             "concurrency": 4, "timeout": 10, "max_retries": 2, "backoff_seconds": 0.05, **extra})


def test_request_key_depends_on_content_only():
    a = request_key("m", MESSAGES, {"temperature": 0})
    assert a == request_key("m", json.loads(json.dumps(MESSAGES)), {"temperature": 0})
    assert a != request_key("m", MESSAGES, {"temperature": 0.7})
    assert a != request_key("other", MESSAGES, {"temperature": 0})


def test_openai_backend_talks_http_and_caches(tmp_path, openai_server, monkeypatch):
    monkeypatch.setenv("FAQFORGE_TEST_KEY", "sk-test-secret-123")
    teacher = Teacher(teacher_at(openai_server), cache_dir=tmp_path / "cache")
    first = teacher.chat([MESSAGES, MESSAGES[:1] + [{"role": "user", "content": "Verdict?"}]])
    assert all(r["text"] and not r["cached"] for r in first)
    assert "dvc push" in first[0]["text"]
    request = openai_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "test-teacher" and request["body"]["max_tokens"] == 64
    assert request["auth"] == "Bearer sk-test-secret-123"
    assert teacher.stats["calls"] == 2 and teacher.stats["completion_tokens"] > 0

    again = Teacher(teacher_at(openai_server), cache_dir=tmp_path / "cache")
    second = again.chat([MESSAGES])
    assert second[0]["cached"] and second[0]["text"] == first[0]["text"]
    assert len(openai_server.requests) == 2 and again.stats["cache_hits"] == 1
    cached = "".join(p.read_text(errors="replace") for p in (tmp_path / "cache").iterdir())
    assert "sk-test-secret-123" not in cached and "dvc push" in cached


def test_openai_backend_retries_server_errors(tmp_path, openai_server):
    openai_server.fail_first = 1
    teacher = Teacher(teacher_at(openai_server), cache_dir=tmp_path / "cache")
    [result] = teacher.chat([MESSAGES])
    assert result["text"] and len(openai_server.requests) == 2


def test_failed_request_becomes_error_record_and_is_not_cached(tmp_path, openai_server):
    openai_server.fail_first = 100
    teacher = Teacher(teacher_at(openai_server, max_retries=0), cache_dir=tmp_path / "cache")
    [result] = teacher.chat([MESSAGES])
    assert result["text"] is None and result["error"] == "InternalServerError"
    assert teacher.stats["errors"] == 1 and teacher.stats["errors_by_kind"] == {"InternalServerError": 1}
    assert not list(cached_entries(tmp_path / "cache"))


def test_error_messages_are_recorded_with_key_like_text_redacted(tmp_path, monkeypatch):
    """The server's error body repeats our API key and a token of its own: the error
    record keeps the message, minus both."""
    monkeypatch.setenv("FAQFORGE_TEST_KEY", "planted-key-1234")  # no known key shape: only the env value finds it
    with OpenAIServer(faults=["401"], echo_secrets=True) as server:
        [result] = Teacher(teacher_at(server), cache_dir=tmp_path / "cache").chat([MESSAGES])
    assert result["error"] == "AuthenticationError" and "failure 401" in result["message"]
    assert "planted-key-1234" not in result["message"] and UPSTREAM_TOKEN not in result["message"]
    assert "Authorization: Bearer [REDACTED]" in result["message"]
    assert "api_key=[REDACTED_PASSWORD]" in result["message"]


def test_unreachable_server_is_an_error_record(tmp_path):
    params = TeacherSection(backend="openai", model="m", base_url="http://127.0.0.1:9/v1", api_key_env="X",
                            max_retries=0, timeout=2)
    [result] = Teacher(params, cache_dir=tmp_path).chat([MESSAGES])
    assert result["error"] == "APIConnectionError"


def test_local_backend_generates_and_caches(tmp_path, tiny_model):
    params = TeacherSection(backend="local", model=tiny_model, temperature=0.0, max_tokens=8, batch_size=2)
    teacher = Teacher(params, cache_dir=tmp_path / "cache", base_dir=tmp_path / "no-base")
    results = teacher.chat([MESSAGES, [{"role": "user", "content": "hi"}], MESSAGES])
    assert [r["completion_tokens"] <= 8 for r in results] == [True] * 3
    assert results[0]["text"] == results[2]["text"]  # greedy: same prompt, same answer
    assert teacher.stats["calls"] == 3
    again = Teacher(params, cache_dir=tmp_path / "cache", base_dir=tmp_path / "no-base")
    assert [r["text"] for r in again.chat([MESSAGES])] == [results[0]["text"]]
    assert again.stats["calls"] == 0 and not again.backend.loaded  # a full cache hit loads no model


def test_retries_every_transient_fault_and_obeys_retry_after(tmp_path):
    faults = ["429", "500", "503", "drop", "truncated", "nonjson"]
    with OpenAIServer(faults=faults, retry_after=1) as server:
        params = teacher_at(server, max_retries=6, backoff_seconds=0.05)
        teacher = Teacher(params, cache_dir=tmp_path)
        [result] = teacher.chat([MESSAGES])
    assert result["text"] and "dvc push" in result["text"]
    assert [r["fault"] for r in server.requests] == faults + [None]
    assert teacher.stats["retries"] == 6 and teacher.stats["errors"] == 0 and teacher.stats["calls"] == 1
    gaps = [b["time"] - a["time"] for a, b in zip(server.requests, server.requests[1:])]
    assert gaps[0] >= 1.0                       # Retry-After: 1 was obeyed
    for attempt, gap in enumerate(gaps[1:], start=1):  # our own backoff: 0.05 s doubling, jitter 0.5-1x
        assert 0.05 * 2 ** attempt * 0.5 <= gap <= 0.05 * 2 ** attempt + 0.5
    assert teacher.stats["retry_wait_seconds"] >= 1.0


def test_timeout_is_retried(tmp_path):
    with OpenAIServer(faults=["timeout"], slow_seconds=3) as server:
        teacher = Teacher(teacher_at(server, timeout=1, backoff_seconds=0.01), cache_dir=tmp_path)
        [result] = teacher.chat([MESSAGES])
    assert result["text"] and teacher.stats["retries"] == 1


def test_attempts_are_bounded_and_failure_is_recorded(tmp_path):
    with OpenAIServer(faults=["503"] * 10) as server:
        teacher = Teacher(teacher_at(server, max_retries=2, backoff_seconds=0.01), cache_dir=tmp_path)
        [result] = teacher.chat([MESSAGES])
    assert len(server.requests) == 3
    assert result["text"] is None and result["error"] == "InternalServerError"
    assert teacher.stats["errors_by_kind"] == {"InternalServerError": 1}


def test_client_errors_are_not_retried(tmp_path):
    with OpenAIServer(faults=["401", "404"]) as server:
        teacher = Teacher(teacher_at(server, concurrency=1), cache_dir=tmp_path)
        results = teacher.chat([MESSAGES, [{"role": "user", "content": "other"}]])
    assert [r["error"] for r in results] == ["AuthenticationError", "NotFoundError"]
    assert len(server.requests) == 2 and teacher.stats["retries"] == 0


def test_schema_is_dropped_for_servers_without_guided_decoding(tmp_path):
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with OpenAIServer(reject_schema=True) as server:
        teacher = Teacher(teacher_at(server), cache_dir=tmp_path)
        results = teacher.chat([MESSAGES, MESSAGES[:1] + [{"role": "user", "content": "other"}]],
                               response_formats=[schema, schema])
    assert all(r["text"] for r in results)
    assert teacher.stats["schema_fallbacks"] == 1 and teacher.stats["errors"] == 0
    assert sum("response_format" in r["body"] for r in server.requests) <= 2
    assert "response_format" not in server.requests[-1]["body"]


def test_requests_per_minute_paces_requests(tmp_path, openai_server):
    teacher = Teacher(teacher_at(openai_server, requests_per_minute=600), cache_dir=tmp_path)
    teacher.chat([[{"role": "user", "content": f"q{i}"}] for i in range(6)])
    times = sorted(r["time"] for r in openai_server.requests)
    assert times[-1] - times[0] >= 5 * 0.1 * 0.95


def test_cost_is_accounted_and_budget_stops_before_it_is_passed(tmp_path, openai_server):
    from faqforge.core.io import PipelineError
    from faqforge.teacher.errors import check_error_rate
    prices = {"usd_per_1m_prompt_tokens": 1000.0, "usd_per_1m_completion_tokens": 2000.0, "concurrency": 1}
    teacher = Teacher(teacher_at(openai_server, **prices), cache_dir=tmp_path / "a")
    teacher.chat([[{"role": "user", "content": "one"}]])
    completion = teacher.stats["completion_tokens"]
    assert teacher.stats["cost_usd"] == pytest.approx((50 * 1000 + completion * 2000) / 1e6)

    budget = Teacher(teacher_at(openai_server, budget_usd=0.3, **prices), cache_dir=tmp_path / "b")
    results = budget.chat([[{"role": "user", "content": f"question {i}"}] for i in range(10)])
    sent = [r for r in results if r["text"]]
    unsent = [r for r in results if r.get("error") == "BudgetExhausted"]
    assert sent and unsent and len(sent) + len(unsent) == 10
    assert budget.stats["cost_usd"] <= 0.3
    with pytest.raises(PipelineError, match="budget_usd"):
        check_error_rate("generate", budget.stats, 1.0)


def test_logprobs_come_back_in_one_shape_from_both_backends(tmp_path, openai_server, tiny_model):
    from faqforge.synthesis.curate import judge_messages
    from faqforge.teacher.verdict import parse_verdict
    judge = section("curate", judge={"system_prompt": "Judge. Verdict: YES or NO.",
                                     "user_prompt": "{text} {question} {answer}", "examples": []}).judge
    messages = judge_messages({"question": "Q?", "answer": "A."}, "text", judge)
    [remote] = Teacher(teacher_at(openai_server), cache_dir=tmp_path / "a").chat([messages], top_logprobs=2)
    assert openai_server.requests[0]["body"]["top_logprobs"] == 2
    verdict = parse_verdict(remote["text"], remote["logprobs"])
    assert verdict["result"] == "YES" and verdict["p_yes"] == pytest.approx(1 / (1 + math.exp(-2.3)), abs=1e-3)
    local = Teacher(TeacherSection(backend="local", model=tiny_model, max_tokens=4), cache_dir=tmp_path / "b",
                    base_dir=tmp_path / "none")
    [reply] = local.chat([messages], top_logprobs=3)
    assert len(reply["logprobs"]) == reply["completion_tokens"]
    for token in reply["logprobs"]:
        assert len(token["top"]) == 3 and token["logprob"] <= max(token["top"].values()) + 1e-6


def test_local_backend_follows_a_json_schema(tmp_path, tiny_model):
    from faqforge.synthesis.generate import parse_pairs, response_format
    params = section("generate", format="qa", answer_first=True, answer_style="plain",
                     max_chars={"question": 40, "answer": 60})
    teacher = Teacher(TeacherSection(backend="local", model=tiny_model, max_tokens=200, batch_size=4),
                      cache_dir=tmp_path, base_dir=tmp_path / "none")
    replies = teacher.chat([MESSAGES, [{"role": "user", "content": "hi"}]],
                           response_formats=[response_format(2, params), response_format(3, params)])
    for reply, n in zip(replies, (2, 3)):
        records = json.loads(reply["text"])  # a random model, yet valid JSON of the schema
        assert len(records) == n and parse_pairs(reply["text"]) == [
            {"question": r["question"].strip(), "answer": r["answer"].strip()} for r in records]
        for r in records:
            assert r["question"].endswith("?") and "?" not in r["question"][:-1] and len(r["question"]) <= 40
            assert r["answer"].strip() and len(r["answer"]) <= 60


def test_local_decoding_knobs_are_part_of_the_cache_key(tmp_path, tiny_model):
    params = TeacherSection(backend="local", model=tiny_model, max_tokens=4)
    Teacher(params, cache_dir=tmp_path, base_dir=tmp_path / "none").chat([MESSAGES])
    again = Teacher(params.model_copy(update={"guided_no_repeat_ngram": 3}), cache_dir=tmp_path, base_dir=tmp_path / "none")
    again.chat([MESSAGES])
    assert again.stats["calls"] == 1 and again.stats["cache_hits"] == 0


def test_scrub_rewrites_replies_before_they_are_cached_and_cleans_old_entries(tmp_path, openai_server):
    """The teacher's reply passes through `scrub` before the cache sees it; an entry
    cached without a scrub is rewritten the next time a scrubbing run reads it."""
    from faqforge.core.sections import Pii
    from faqforge.hygiene.pii import PiiPolicy
    messages = [{"role": "user", "content": 'Write 1 questions:\n"""Mail the support desk at help@example.com '
                                            'for any question about the product."""'}]
    raw = Teacher(teacher_at(openai_server), cache_dir=tmp_path / "raw").chat([messages])[0]["text"]
    assert "help@example.com" in raw
    scrub = PiiPolicy(Pii(action="redact")).scrub
    [reply] = Teacher(teacher_at(openai_server), cache_dir=tmp_path / "clean", scrub=scrub).chat([messages])
    assert "[EMAIL]" in reply["text"] and "help@example.com" not in reply["text"]
    # (the request itself holds it here; in the pipeline ingest redacted the chunk before it was asked)
    cached = [entry["text"] for entry in cached_entries(tmp_path / "clean")]
    assert cached and not [text for text in cached if "help@example.com" in text]
    scrubbing = Teacher(teacher_at(openai_server), cache_dir=tmp_path / "raw", scrub=scrub)
    [again] = scrubbing.chat([messages])
    assert again["cached"] and "[EMAIL]" in again["text"]
    scrubbing.close()
    [entry] = cached_entries(tmp_path / "raw")  # the old version is gone from disk, not only shadowed
    assert "[EMAIL]" in entry["text"]
    assert "help@example.com" not in "".join(p.read_text(errors="replace") for p in (tmp_path / "raw").iterdir()
                                             if p.suffix == ".jsonl").split('"request"')[0]


def test_a_key_is_never_sent_over_plain_http_to_another_host(tmp_path, monkeypatch):
    """A key set for the teacher and a plain-http, non-loopback URL: the stage stops
    before any connection is made (the client is never even built)."""
    import openai

    from faqforge.core.io import PipelineError

    def no_client(*args, **kwargs):
        raise AssertionError("a client was built")
    monkeypatch.setattr(openai, "AsyncOpenAI", no_client)
    monkeypatch.setenv("TEACHER_KEY", "sk-live-9fQ2xLmP4rT7wZ1k")
    params = TeacherSection(backend="openai", model="m", api_key_env="TEACHER_KEY", max_retries=0)
    for url in ("http://10.0.0.5:8000/v1", "http://gpu-host:8000/v1", "http://[2001:db8::1]:8000/v1"):
        teacher = Teacher(params.model_copy(update={"base_url": url}), cache_dir=tmp_path / "cache")
        with pytest.raises(PipelineError, match=r"teacher.base_url .* is plain http to another host, so the key in "
                                                r"TEACHER_KEY would cross the network unencrypted"):
            teacher.chat([MESSAGES])
    monkeypatch.delenv("TEACHER_KEY")  # no key, nothing to leak: it connects (and here fails as a test double)
    with pytest.raises(AssertionError, match="a client was built"):
        Teacher(params.model_copy(update={"base_url": "http://10.0.0.5:8000/v1"}), cache_dir=tmp_path / "cache").chat([MESSAGES])


@pytest.mark.parametrize("url, insecure", [("https://api.example.com/v1", False), ("http://127.0.0.1:8000/v1", False),
                                           ("http://localhost:8000/v1", False), ("http://[::1]:8000/v1", False),
                                           ("http://10.0.0.5:8000/v1", True)])
def test_https_loopback_or_an_explicit_override_may_carry_the_key(url, insecure):
    from faqforge.hygiene.keys import check_key_transport
    assert check_key_transport(url, "sk-live-9fQ2xLmP4rT7wZ1k", insecure, "teacher", "OPENAI_API_KEY", "x") is None


def test_map_streams_in_order_holding_a_window_and_the_first_answer_comes_before_the_last_request(
        tmp_path, openai_server):
    """5,000 items through Teacher.map with a window of 100: replies come in input
    order; when the first arrives, only about a window of items has been read;
    items needing no request pass through in their place; a rerun asks nothing."""
    pulled = []

    def items():
        for i in range(5000):
            pulled.append(i)
            yield i

    def request(i):
        return None if i % 10 == 0 else ([{"role": "user", "content": f"Verdict on item {i}?"}], {"max_tokens": 8})

    teacher = Teacher(teacher_at(openai_server, concurrency=16), cache_dir=tmp_path)
    seen, pulled_at_first = [], None
    for item, reply in teacher.map(items(), request, window=100):
        if pulled_at_first is None:
            pulled_at_first = len(pulled)
        assert (reply is None) == (item % 10 == 0) and (reply is None or reply["text"])
        seen.append(item)
    teacher.close()
    assert seen == list(range(5000)) and pulled_at_first <= 100 + 64
    assert teacher.stats["calls"] == len(openai_server.requests) == 4500
    again = Teacher(teacher_at(openai_server), cache_dir=tmp_path)
    assert [item for item, _ in again.map(range(5000), request)] == list(range(5000))
    assert again.stats["calls"] == 0 and again.stats["cache_hits"] == 4500
