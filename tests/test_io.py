import json

import pytest

from faqforge.io import PipelineError, atomic_path, load_params, read_evalset, read_jsonl, write_jsonl


def test_jsonl_round_trip_keeps_unicode(tmp_path):
    records = [{"q": "Où est le cache ?"}, {"q": "キャッシュはどこ？"}]
    assert write_jsonl(tmp_path / "a.jsonl", records) == 2
    assert read_jsonl(tmp_path / "a.jsonl") == records


def test_atomic_write_leaves_previous_file_when_writer_fails(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"n": 1}])

    def broken():
        yield {"n": 2}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl(path, broken())
    assert read_jsonl(path) == [{"n": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_path_creates_parent(tmp_path):
    with atomic_path(tmp_path / "deep" / "x.txt") as tmp:
        tmp.write_text("ok")
    assert (tmp_path / "deep" / "x.txt").read_text() == "ok"


def test_read_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(PipelineError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_malformed_params_names_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("teacher:\n  model: x\n bad: [\n")
    with pytest.raises(PipelineError, match=r"params.yaml: malformed YAML at line \d+"):
        load_params(path, ["teacher"])


def test_missing_params_section_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("teacher:\n  model: x\n")
    with pytest.raises(PipelineError, match="missing or empty section.*student"):
        load_params(path, ["teacher", "student"])


def test_project_params_have_every_section():
    sections = ["teacher", "student", "ingest", "generate", "curate", "dedup", "decontaminate",
                "augment", "split", "finetune", "evaluate"]
    params = load_params("params.yaml", sections)
    assert params["teacher"]["backend"] in ("local", "openai")
    assert params["student"]["model"] == "embedded:smollm2-135m-instruct"


@pytest.mark.parametrize("content, message", [
    (None, "eval set not found"),
    ("[{\"question\": \"q\",}]", "not valid JSON at line 1"),
    ("{}", "expected a non-empty JSON array"),
    (json.dumps([{"question": "q?", "answer": "a"}, {"question": "q2?"}]), "item 1 has a missing or empty \"answer\""),
    (json.dumps([{"question": " ", "answer": "a"}]), "item 0 has a missing or empty \"question\""),
])
def test_evalset_errors_name_file_and_item(tmp_path, content, message):
    path = tmp_path / "evalset.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PipelineError, match=message) as err:
        read_evalset(path)
    assert "evalset.json" in str(err.value)


def test_project_evalset_is_valid_and_large_enough():
    items = read_evalset("data/eval/evalset.json")
    assert len(items) >= 40
    assert len({i["question"] for i in items}) == len(items)
