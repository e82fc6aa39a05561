"""faqforge at scale: a synthetic corpus through the stages, and what the teacher
cache's layout costs DVC.

    .venv/bin/python -m bench.scale cache [requests]          # default 100000
    .venv/bin/python -m bench.scale stages [chunks ...]       # default 10000 100000

`cache`: the same N answered requests (entries shaped as generate's: the request
with its worked examples and a reply, ~2.5 KB) stored in the file-per-request
layout faqforge used before (the baseline) and in segments, each tracked by DVC
in a scratch repository: `dvc add` (hash, copy into the DVC cache), `dvc status`
with nothing changed, then 1% more answers (a second run) and `dvc commit` and
`dvc status` again. Prints seconds and the files DVC handles, with the ratios.

`stages`: a synthetic corpus of N chunks (markdown files of ~100 sections each,
generated here, not committed) through ingest, generate and curate against the
test OpenAI server in a process of its own (canned answers at once), then dedup,
each stage a `python stages/<stage>.py` process in a scratch copy of the project:
wall time and peak RSS per stage (the stage process and its children), cache
files, and the growth per 10x of chunks. One pair per chunk keeps the request
count at 2 per chunk (generate and the judge).
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faqforge.models.cache import ResponseCache, request_key

ROOT = Path(__file__).resolve().parent.parent
DVC = [sys.executable, "-m", "dvc"]


def entry(i):
    """A cache entry the size and shape of a generate answer."""
    messages = [{"role": "system", "content": "You write question/answer pairs for an FAQ. " * 8},
                {"role": "user", "content": f"Write 3 questions about this text:\n\"\"\"Section {i}. " + "The "
                 "pipeline reruns only the stages whose inputs changed; dvc push stores the cache. " * 6 + '"""'}]
    reply = json.dumps([{"answer": f"Answer {i} " * 10, "question": f"What does section {i} say?"}] * 3)
    request = {"model": "openai:bench", "messages": messages, "sampling": {"temperature": 0.0, "max_tokens": 512}}
    return request_key("openai:bench", messages, request["sampling"]), {
        "text": reply, "prompt_tokens": 600, "completion_tokens": 120, "finish_reason": "stop", "request": request}


def write_file_per_request(directory, start, stop):
    for i in range(start, stop):
        key, value = entry(i)
        path = directory / key[:2] / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")


def write_segments(directory, start, stop):
    cache = ResponseCache(directory)
    for i in range(start, stop):
        cache.put(*entry(i))
    cache.close()


def timed(*command, cwd):
    start = time.monotonic()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def dvc_costs(layout, write, n):
    """Seconds for dvc add / status / commit after 1% more / status, and the file counts."""
    with tempfile.TemporaryDirectory(prefix=f"scale-{layout}-") as scratch:
        repo = Path(scratch)
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        subprocess.run([*DVC, "init", "-q"], cwd=repo, check=True)
        out = repo / "cache/llm/generate"
        out.mkdir(parents=True)
        write(out, 0, n)
        files = sum(1 for p in out.rglob("*") if p.is_file())
        row = {"files": files, "add": timed(*DVC, "add", "cache/llm/generate", cwd=repo),
               "status": timed(*DVC, "status", cwd=repo)}
        write(out, n, n + n // 100)
        row["commit_1pct"] = timed(*DVC, "commit", "-f", "cache/llm/generate.dvc", cwd=repo)
        row["status_after"] = timed(*DVC, "status", cwd=repo)
        row["files_after"] = sum(1 for p in out.rglob("*") if p.is_file())
        return row


def cache_bench(n):
    rows = {layout: dvc_costs(layout, write, n) for layout, write in (
        ("file per request (before)", write_file_per_request), ("segments", write_segments))}
    base, new = rows["file per request (before)"], rows["segments"]
    print(f"{n:,} answered requests, then 1% more")
    print(f"{'':28}{'files':>9}{'after':>7}{'dvc add':>10}{'status':>9}{'commit +1%':>12}{'status':>9}")
    for layout, row in rows.items():
        print(f"{layout:28}{row['files']:>9,}{row['files_after']:>7,}{row['add']:>9.1f}s{row['status']:>8.1f}s{row['commit_1pct']:>11.1f}s"
              f"{row['status_after']:>8.1f}s")
    print(f"{'segments / before':28}{new['files'] / base['files']:>9.5f}{'':>7}{new['add'] / base['add']:>9.3f}x"
          f"{new['status'] / base['status']:>8.3f}x{new['commit_1pct'] / base['commit_1pct']:>11.3f}x"
          f"{new['status_after'] / base['status_after']:>8.3f}x")


# 24,000 made-up words: questions share words as a corpus's do, but the vocabulary is fixed, so at a
# million chunks every word recurs far more than in real text (whose vocabulary keeps growing): the hard
# case for dedup's word index
ONSETS = ("al", "bor", "cen", "dra", "el", "fin", "gal", "hom", "ist", "jur", "kel", "lum", "mar", "nor", "ob",
          "pra", "quen", "ros", "sal", "tor")
VOCABULARY = [a + b + c + d for a in ONSETS for b in ("a", "e", "i", "o", "u", "ar", "en", "or", "ul", "ey")
              for c in "bdglmnprstvz" for d in ("", "a", "ex", "ion", "is", "on", "er", "ia", "us", "et")]
SERVER = """
import sys
from tests.support.openai_server import OpenAIServer
with OpenAIServer(record=False) as server:
    print(server.base_url, flush=True)
    sys.stdin.read()
"""
SECTIONS_PER_FILE = 100
STAGES = ("ingest", "generate", "curate", "dedup")


def section(i):
    """~100 tokens of prose no other section shares: words drawn (seeded by i) from
    VOCABULARY, so the teacher's questions differ as a real corpus's do."""
    pick = random.Random(i).choices
    words = pick(VOCABULARY, k=40)
    return (f"## {words[0].title()} {words[1]} {words[2]}\n\n"
            f"{words[3].title()} {words[4]} {words[24]} {words[25]} keeps {i % 97 + 2} copies of each "
            f"{words[5]} {words[6]} for {i % 31 + 1} days. Run `faqforge {words[7]} --{words[8]}` to check "
            f"the {words[9]} of the "
            f"{words[10]} {words[11]}. A {words[12]} with more than {i % 500 + 10} {words[13]} {words[14]}s is "
            f"split by the {words[15]} {words[16]}. Set {words[17]}_{words[18]} to {i % 13 + 1} when the "
            f"{words[19]} {words[20]} is slow, and ask the {words[21]} about {words[22]} {words[23]}.\n\n")


def make_project(directory, chunks, base_url):
    """A scratch project: params for the test server, the repo's prompts and eval set,
    and `chunks` sections of synthetic markdown."""
    import yaml
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["teacher"].update(backend="openai", model="test-teacher", base_url=base_url, api_key_env="NO_KEY")
    params["generate"].update(min_questions=1, max_questions=1)
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(ROOT / "prompts.yaml", directory / "prompts.yaml")
    (directory / "data/eval").mkdir(parents=True)
    shutil.copy(ROOT / "data/eval/evalset.json", directory / "data/eval/evalset.json")
    docs = directory / "data/docs"
    docs.mkdir()
    for f in range(0, chunks, SECTIONS_PER_FILE):
        text = "".join(section(i) for i in range(f, min(f + SECTIONS_PER_FILE, chunks)))
        (docs / f"guide-{f // SECTIONS_PER_FILE:06d}.md").write_text(f"# Guide {f}\n\n{text}")


def run_stage(stage, cwd):
    """(seconds, peak RSS in MiB) of one stage process."""
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, str(ROOT / "stages" / f"{stage}.py")], cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{stage} failed:\n{stderr.decode()[-3000:]}")
    return time.monotonic() - start, usage.ru_maxrss / 1024


def stages_bench(sizes):
    server = subprocess.Popen([sys.executable, "-c", SERVER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    base_url = server.stdout.readline().strip()
    rows = {}
    try:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix=f"scale-{n}-") as scratch:
                project = Path(scratch)
                make_project(project, n, base_url)
                rows[n] = {}
                for stage in STAGES:
                    rows[n][stage] = run_stage(stage, project)
                    print(f"  {n:,} chunks, {stage}: {rows[n][stage][0]:.1f} s, {rows[n][stage][1]:.0f} MiB",
                          flush=True)
                metrics = {s: json.loads((project / f"metrics/{s}.json").read_text()) for s in STAGES}
                rows[n]["records"] = {s: (metrics[s]["records_in"], metrics[s]["kept"]) for s in STAGES}
                rows[n]["cache files"] = sum(1 for p in (project / "cache/llm").rglob("*") if p.is_file())
            print(f"{n:,} chunks: " + ", ".join(f"{s} {rows[n][s][0]:.0f} s / {rows[n][s][1]:.0f} MiB"
                                               for s in STAGES) + f"; cache files {rows[n]['cache files']}; "
                  f"records in/kept {rows[n]['records']}", flush=True)
    finally:
        server.stdin.close()
        server.wait()
    print(f"\n{'chunks':>10}" + "".join(f"{s + ' s':>12}{s + ' MiB':>14}" for s in STAGES))
    for n, row in rows.items():
        print(f"{n:>10,}" + "".join(f"{row[s][0]:>12.1f}{row[s][1]:>14.0f}" for s in STAGES))
    sizes = list(rows)
    for small, big in zip(sizes, sizes[1:]):
        print(f"{f'x{big // small}':>10}" + "".join(
            f"{rows[big][s][0] / rows[small][s][0]:>11.2f}x{rows[big][s][1] / rows[small][s][1]:>13.2f}x"
            for s in STAGES))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "cache"
    if mode == "cache":
        cache_bench(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)
    elif mode == "stages":
        stages_bench([int(n) for n in sys.argv[2:]] or [10_000, 100_000])
    else:
        raise SystemExit(f"unknown mode {mode!r}: cache | stages")


if __name__ == "__main__":
    main()
