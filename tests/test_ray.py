"""`teacher.engine: ray`: the teacher stages' pending requests answered by a Ray
Data job on a local Ray instance (CPU), against the test OpenAI server."""

import importlib.util
import json
import shutil

import pytest

from faqforge.teacher.client import Teacher
from faqforge.teacher.ray_engine import vllm_reply, vllm_row
from tests.support.openai_server import OpenAIServer
from tests.support.project import make_project, sh, tune
from tests.support.sections import teacher_at

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed (`pip install 'ray[data]==2.60.0'`; CI installs it)")


@pytest.fixture(scope="module")
def local_ray():
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_rows_for_ray_data_llm_vllm_engine_carry_the_request_and_come_back_as_reply_records():
    """backend local with engine ray runs the model in ray.data.llm's vLLM engines
    (GPU nodes only); what faqforge gives the processor and reads back runs here."""
    schema = {"type": "array", "items": {"type": "object"}}
    messages = [{"role": "user", "content": "Write 2 questions about caches."}]
    row = {"key": "k1", "messages": json.dumps(messages),
           "sampling": json.dumps({"temperature": 0.0, "top_p": 1.0, "max_tokens": 64, "seed": 0,
                                   "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}})}
    sent = vllm_row(row)
    assert sent["messages"] == messages and sent["sampling_params"] == {
        "temperature": 0.0, "top_p": 1.0, "max_tokens": 64, "seed": 0, "guided_decoding": {"json": schema}}
    back = vllm_reply({**sent, "generated_text": " [{\"question\": \"Why?\"}] ", "num_input_tokens": 12,
                       "num_generated_tokens": 7})
    assert back["key"] == "k1" and json.loads(back["messages"]) == messages and back["sampling"] == row["sampling"]
    assert json.loads(back["reply"]) == {"text": '[{"question": "Why?"}]', "prompt_tokens": 12,
                                         "completion_tokens": 7, "finish_reason": "stop"}


@needs_ray
@pytest.mark.slow
def test_generate_on_ray_writes_what_the_default_engine_writes_and_a_rerun_asks_nothing(tmp_path, tiny_model):
    """The same cache-cold generate run, once in-process and once on a local Ray
    instance started by the stage: the same data/qa_raw.jsonl byte for byte, every
    request asked once; rerun with the warm cache, the server sees no request."""
    with OpenAIServer() as server:
        (tmp_path / "default").mkdir()
        default = make_project(tmp_path / "default", tiny_model, server.base_url)
        sh(default, "dvc", "repro", "ingest")
        on_ray = tmp_path / "ray"
        shutil.copytree(default, on_ray, symlinks=True)
        sh(default, "python", "stages/generate.py")
        asked_in_process = len(server.requests)
        tune(on_ray, teacher={"engine": "ray", "ray_actors": 2})
        run = sh(on_ray, "python", "stages/generate.py")
        assert "requests to answer on Ray" in run.stdout + run.stderr   # the Ray path ran
        assert len(server.requests) == 2 * asked_in_process > 0
        assert (on_ray / "data/qa_raw.jsonl").read_bytes() == (default / "data/qa_raw.jsonl").read_bytes()
        assert (on_ray / "data/generate_dropped.jsonl").read_bytes() == \
            (default / "data/generate_dropped.jsonl").read_bytes()
        again = sh(on_ray, "python", "stages/generate.py")
        assert len(server.requests) == 2 * asked_in_process and "on Ray" not in again.stdout + again.stderr
        assert (on_ray / "data/qa_raw.jsonl").read_bytes() == (default / "data/qa_raw.jsonl").read_bytes()


@needs_ray
def test_failures_on_ray_are_accounted_not_cached_and_asked_again(tmp_path, local_ray, capsys):
    """Teacher.chat on Ray with a server failing every other request and no retries:
    the failures come back as error records in their places, counted, not cached; the
    next run asks only those."""
    messages = [[{"role": "user", "content": f"Verdict on item {i}?"}] for i in range(20)]
    with OpenAIServer(faults=["500", None] * 10) as server:
        params = teacher_at(server, engine="ray", ray_actors=1, max_retries=0)
        teacher = Teacher(params, cache_dir=tmp_path)
        replies = teacher.chat(messages)
        teacher.close()
        assert "teacher: 20 requests to answer on Ray" in capsys.readouterr().out   # the Ray path ran
        failed = [i for i, r in enumerate(replies) if r.get("error")]
        assert len(failed) == 10 and all(replies[i]["text"] for i in set(range(20)) - set(failed))
        assert teacher.stats["calls"] == 20 and teacher.stats["errors"] == 10
        again = Teacher(params, cache_dir=tmp_path)
        replies = again.chat(messages)
        assert all(r["text"] for r in replies) and again.stats["calls"] == 10 and again.stats["cache_hits"] == 10
        assert len(server.requests) == 30
