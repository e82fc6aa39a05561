import json

from faqforge.llm import Teacher, request_key

MESSAGES = [{"role": "user", "content": 'Write 2 questions:\n"""Run dvc push to upload the cache to the remote storage."""'}]


def openai_params(server, **extra):
    return {"backend": "openai", "model": "test-teacher", "base_url": server.base_url,
            "api_key_env": "FAQFORGE_TEST_KEY", "temperature": 0.0, "max_tokens": 64,
            "concurrency": 4, "timeout": 10, "max_retries": 2, **extra}


def test_request_key_depends_on_content_only():
    a = request_key("m", MESSAGES, {"temperature": 0})
    assert a == request_key("m", json.loads(json.dumps(MESSAGES)), {"temperature": 0})
    assert a != request_key("m", MESSAGES, {"temperature": 0.7})
    assert a != request_key("other", MESSAGES, {"temperature": 0})


def test_openai_backend_talks_http_and_caches(tmp_path, openai_server, monkeypatch):
    monkeypatch.setenv("FAQFORGE_TEST_KEY", "sk-test-secret-123")
    teacher = Teacher(openai_params(openai_server), cache_dir=tmp_path / "cache")
    first = teacher.chat([MESSAGES, MESSAGES[:1] + [{"role": "user", "content": "Verdict?"}]])
    assert all(r["text"] and not r["cached"] for r in first)
    assert "dvc push" in first[0]["text"]
    request = openai_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "test-teacher" and request["body"]["max_tokens"] == 64
    assert request["auth"] == "Bearer sk-test-secret-123"
    assert teacher.stats["calls"] == 2 and teacher.stats["completion_tokens"] > 0

    again = Teacher(openai_params(openai_server), cache_dir=tmp_path / "cache")
    second = again.chat([MESSAGES])
    assert second[0]["cached"] and second[0]["text"] == first[0]["text"]
    assert len(openai_server.requests) == 2 and again.stats["cache_hits"] == 1
    cached = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert "sk-test-secret-123" not in cached


def test_openai_backend_retries_server_errors(tmp_path, openai_server):
    openai_server.fail_first = 1
    teacher = Teacher(openai_params(openai_server), cache_dir=tmp_path / "cache")
    [result] = teacher.chat([MESSAGES])
    assert result["text"] and len(openai_server.requests) == 2


def test_failed_request_becomes_error_record_and_is_not_cached(tmp_path, openai_server):
    openai_server.fail_first = 100
    teacher = Teacher(openai_params(openai_server, max_retries=0), cache_dir=tmp_path / "cache")
    [result] = teacher.chat([MESSAGES])
    assert result["text"] is None and result["error"] == "InternalServerError"
    assert teacher.stats["errors"] == 1 and teacher.stats["errors_by_kind"] == {"InternalServerError": 1}
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_unreachable_server_is_an_error_record(tmp_path):
    params = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "X",
              "max_retries": 0, "timeout": 2}
    [result] = Teacher(params, cache_dir=tmp_path).chat([MESSAGES])
    assert result["error"] == "APIConnectionError"


def test_local_backend_generates_and_caches(tmp_path, tiny_model):
    params = {"backend": "local", "model": tiny_model, "temperature": 0.0, "max_tokens": 8, "batch_size": 2}
    teacher = Teacher(params, cache_dir=tmp_path / "cache", base_dir=tmp_path / "no-base")
    results = teacher.chat([MESSAGES, [{"role": "user", "content": "hi"}], MESSAGES])
    assert [r["completion_tokens"] <= 8 for r in results] == [True] * 3
    assert results[0]["text"] == results[2]["text"]  # greedy: same prompt, same answer
    assert teacher.stats["calls"] == 3
    again = Teacher(params, cache_dir=tmp_path / "cache", base_dir=tmp_path / "no-base")
    assert [r["text"] for r in again.chat([MESSAGES])] == [results[0]["text"]]
    assert again.stats["calls"] == 0 and again._local is None  # a full cache hit loads no model
