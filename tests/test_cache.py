"""The teacher cache's segments: crash safety, truncation, concurrent writers,
the move from the file-per-request layout, and what a lookup costs."""

import json
import subprocess
import sys

from faqforge.models.cache import ResponseCache, cached_entries, request_key
from faqforge.teacher.client import Teacher
from tests.support.sections import teacher_at


def conversation(i):
    return [{"role": "user", "content": f"Write 1 question about item {i}: \"\"\"Item {i} ships in {i} days.\"\"\""}]


def asked(server, since=0):
    return {r["body"]["messages"][0]["content"] for r in server.requests[since:]}


def test_answers_land_in_a_few_sealed_segments_not_a_file_each(tmp_path, openai_server):
    teacher = Teacher(teacher_at(openai_server), cache_dir=tmp_path)
    first = teacher.chat([conversation(i) for i in range(40)])
    teacher.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0].endswith(".idx.npy") and names[1].endswith(".jsonl")
    again = Teacher(teacher_at(openai_server), cache_dir=tmp_path)
    second = again.chat([conversation(i) for i in range(40)])
    assert again.stats["calls"] == 0 and again.stats["cache_hits"] == 40 and len(openai_server.requests) == 40
    assert [r["text"] for r in second] == [r["text"] for r in first] and all(r["cached"] for r in second)
    again.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # nothing asked, nothing written


def test_a_segment_cut_off_mid_write_keeps_its_whole_lines_and_asks_the_rest_again(tmp_path, openai_server):
    """Two runs, two segments; the second is cut in the middle of a line as a crash
    (or a full disk) would leave it, before it was sealed. The next run keeps its
    whole lines, asks again only what the cut lost, and loses nothing of the first."""
    run = Teacher(teacher_at(openai_server), cache_dir=tmp_path)
    run.chat([conversation(i) for i in range(10)])
    run.close()
    run = Teacher(teacher_at(openai_server), cache_dir=tmp_path)
    run.chat([conversation(i) for i in range(10, 30)])
    segment = run.cache.cache.writing["path"]
    data = segment.read_bytes()
    lines = data.splitlines(keepends=True)
    cut = sum(len(line) for line in lines[:12]) + len(lines[12]) // 2   # 12 whole lines and half of one
    segment.write_bytes(data[:cut])
    run.cache.cache.writing = None  # the process is gone: no seal
    lost = {json.loads(line)["entry"]["request"]["messages"][0]["content"] for line in lines[12:]}
    seen = len(openai_server.requests)

    after = Teacher(teacher_at(openai_server), cache_dir=tmp_path)
    replies = after.chat([conversation(i) for i in range(30)])
    assert all(r["text"] for r in replies)
    assert asked(openai_server, seen) == lost and after.stats["calls"] == 8 and after.stats["cache_hits"] == 22
    after.close()
    assert segment.read_bytes() == data[:cut - len(lines[12]) // 2]  # the half line is gone, the rest kept
    assert len(list(cached_entries(tmp_path))) == 30


def test_a_sealed_segment_truncated_later_is_read_only_where_whole(tmp_path, openai_server):
    run = Teacher(teacher_at(openai_server), cache_dir=tmp_path)
    run.chat([conversation(i) for i in range(10)])
    run.close()
    [segment] = tmp_path.glob("*.jsonl")
    data = segment.read_bytes()
    segment.write_bytes(data[:len(data) * 2 // 3])
    kept = data[:len(data) * 2 // 3]
    whole = {json.loads(line)["key"] for line in kept.splitlines(keepends=True) if line.endswith(b"\n")}
    keys = [run.cache.key(conversation(i), run.sampling) for i in range(10)]
    entries = ResponseCache(tmp_path).get_many(keys)
    assert 0 < len(whole) < 10 and {k for k, e in zip(keys, entries) if e is not None} == whole


def test_two_processes_write_one_cache_at_once(tmp_path):
    """Each writer appends to its own segment under a lock; a reader opening the
    cache meanwhile does not seal a live writer's segment."""
    script = (
        "import sys, time\n"
        "from faqforge.models.cache import ResponseCache\n"
        "cache = ResponseCache(sys.argv[1])\n"
        "for i in range(300):\n"
        "    cache.put(f'{int(sys.argv[2]) * 1000 + i:064x}', {'text': 'x' * 200, 'i': i})\n"
        "    time.sleep(0.001)\n"
        "cache.close()\n")
    writers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(n)]) for n in (1, 2)]
    while not list(tmp_path.glob("*.jsonl")):
        pass
    ResponseCache(tmp_path).close()  # opened mid-write
    assert [w.wait() for w in writers] == [0, 0]
    cache = ResponseCache(tmp_path)
    found = cache.get_many([f"{n * 1000 + i:064x}" for n in (1, 2) for i in range(300)])
    assert all(e and e["i"] == i % 300 for i, e in enumerate(found))
    assert len(list(tmp_path.glob("*.jsonl"))) == 2 and len(list(tmp_path.glob("*.idx.npy"))) == 2


def test_the_file_per_request_layout_is_moved_into_a_segment(tmp_path, openai_server, capsys):
    """A cache written by faqforge before segments (`<key[:2]>/<key>.json`, with a
    temporary a killed write left) is read, moved into one segment and removed."""
    params = teacher_at(openai_server)
    model_id = "openai:test-teacher"
    sampling = {"temperature": params.temperature, "top_p": 1.0, "max_tokens": params.max_tokens, "seed": 0}
    for i in range(5):
        key = request_key(model_id, conversation(i), sampling)
        (tmp_path / key[:2]).mkdir(exist_ok=True)
        (tmp_path / key[:2] / f"{key}.json").write_text(json.dumps({"text": f"old answer {i}", "prompt_tokens": 1,
                                                                     "completion_tokens": 1}))
    (tmp_path / key[:2] / f".{key}.json.x1y2.tmp").write_text('{"half')
    teacher = Teacher(params, cache_dir=tmp_path)
    replies = teacher.chat([conversation(i) for i in range(6)])
    assert [r["text"] for r in replies[:5]] == [f"old answer {i}" for i in range(5)]
    assert teacher.stats["calls"] == 1 and len(openai_server.requests) == 1
    teacher.close()
    assert "moved 5 cached answers" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(list(tmp_path.glob("*.jsonl"))) == 2 and len(list(cached_entries(tmp_path))) == 6


def test_a_lookup_reads_only_the_entries_it_finds(tmp_path):
    """100,000 entries: opening the cache reads the indexes, not the segments."""
    cache = ResponseCache(tmp_path, segment_bytes=4 * 2**20)
    keys = [f"{i:064x}" for i in range(100_000)]
    for i, key in enumerate(keys):
        cache.put(key, {"text": "an answer of some length " * 4, "i": i})
    cache.close()
    assert len(list(tmp_path.glob("*.jsonl"))) > 3   # rotated at segment_bytes
    again = ResponseCache(tmp_path)
    assert not again.files
    found = again.get_many(keys[5:10] + ["f" * 64])
    assert [e["i"] for e in found[:5]] == [5, 6, 7, 8, 9] and found[5] is None
    assert len(again.files) <= 2
