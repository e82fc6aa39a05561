import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faqforge.core.io import PipelineError, atomic_path, read_evalset, read_jsonl, write_jsonl


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


def test_a_sigkilled_writer_leaves_the_previous_file_and_the_next_write_sweeps_its_temporary(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"n": 1}])
    writer = subprocess.Popen([sys.executable, "-c", (
        "import itertools, sys\n"
        "from faqforge.core.io import write_jsonl\n"
        "def slow():\n"
        "    for n in itertools.count():\n"
        "        if n == 1000: print('writing', flush=True)\n"
        "        yield {'n': n, 'pad': 'x' * 100}\n"
        f"write_jsonl({str(path)!r}, slow())\n")], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "writing\n"
    writer.kill()
    writer.wait()
    [stale] = [p for p in tmp_path.iterdir() if p.name != "out.jsonl"]
    assert stale.name.startswith(".out.jsonl.") and stale.stat().st_size > 0
    assert read_jsonl(path) == [{"n": 1}]
    write_jsonl(path, [{"n": 2}])
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"] and read_jsonl(path) == [{"n": 2}]


def test_atomic_path_creates_parent(tmp_path):
    with atomic_path(tmp_path / "deep" / "x.txt") as tmp:
        tmp.write_text("ok")
    assert (tmp_path / "deep" / "x.txt").read_text() == "ok"


def test_read_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(PipelineError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(path)


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


FULL_DISK = """
import sys
from faqforge.core.io import PipelineError, write_jsonl
path = sys.argv[1] + "/qa.jsonl"
write_jsonl(path, [{"id": 1, "answer": "the previous output"}])
try:
    write_jsonl(path, ({"id": i, "answer": "x" * 1000} for i in range(200)))  # 200 kB into 64 kB
except PipelineError as e:
    print(e)
"""


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs root and unshare to mount a small tmpfs in a private mount namespace")
def test_a_full_disk_is_a_clear_error_and_the_previous_output_stays(tmp_path):
    """A real full disk: a 64 kB tmpfs, mounted in a private mount namespace."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (f"mount -t tmpfs -o size=64k tmpfs {disk} && {sys.executable} -c '{FULL_DISK}' {disk} && "
              f"cat {disk}/qa.jsonl && ls -a {disk}")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert result.returncode == 0, result.stderr
    message, previous, listing = result.stdout.split("\n", 2)
    assert message.startswith(f"{disk}/qa.jsonl: no space left on the device while writing it")
    assert "the previous qa.jsonl, if any, is unchanged" in message
    assert previous == '{"id": 1, "answer": "the previous output"}'
    assert listing.split() == [".", "..", "qa.jsonl"]  # no temporary file left behind


def test_the_shared_stage_tail_writes_records_drops_and_metrics(tmp_path, monkeypatch, capsys):
    from faqforge.core.stage import finish
    monkeypatch.chdir(tmp_path)
    kept = ({"id": i} for i in range(3))  # streamed: a generator is written as it comes
    dropped = [{"id": 9, "reason": "too short"}, {"id": 8, "reason": "too short"}, {"id": 7, "reason": "language"}]
    metrics = finish("demo", 5, {"data/demo.jsonl": kept}, iter(dropped), {"own": 1})
    assert metrics == {"records_in": 5, "kept": 3, "dropped": 3, "dropped_by_reason": {"too short": 2, "language": 1},
                       "own": 1}
    assert json.loads((tmp_path / "metrics/demo.json").read_text()) == metrics
    assert len((tmp_path / "data/demo.jsonl").read_text().splitlines()) == 3
    assert [json.loads(x) for x in (tmp_path / "data/demo_dropped.jsonl").read_text().splitlines()] == dropped
    assert "demo: kept 3 of 5; dropped 3 (see data/demo_dropped.jsonl)" in capsys.readouterr().out
    # a stage that streamed its output itself passes the count
    assert finish("demo", 4, 4, [])["kept"] == 4
