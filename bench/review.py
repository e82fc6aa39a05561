"""The review screen at 100,000 pairs: how fast the first page and each filter answer,
over real HTTP on 127.0.0.1, against loading the pairs' JSONL file once.

    .venv/bin/python -m bench.review [pairs]

Writes a synthetic project (generated, not committed) to a temporary directory:
`pairs` curated pairs (100,000 by default) whose questions and answers are
sentences of the sample corpus's chunks (data/chunks.jsonl; `dvc repro ingest`
first) over 2,000 chunks in 13 documents, judge verdicts and scores, a tenth of
them dropped by curate and 2% by dedup, and 5,000 review decisions. Then it
starts the review app on it and times GET /api/pairs (median of 5) for the
first page and for each filter. Target: each under 300 ms.
"""

import json
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def synthetic(root, n):
    from faqforge.dataset.decisions import append_decisions, make_decision
    rng = random.Random(0)
    chunks = [json.loads(line) for line in (ROOT / "data/chunks.jsonl").read_text().splitlines()]
    sentences = [s.strip() + "." for c in chunks for s in c["text"].split(".") if len(s.split()) > 4]
    fake_chunks = [{**rng.choice(chunks), "chunk_id": f"{k:016x}"} for k in range(2000)]
    data = root / "data"
    data.mkdir(parents=True)
    (data / "chunks.jsonl").write_text("".join(json.dumps(c) + "\n" for c in fake_chunks))
    curated, dropped, duplicates = [], [], []
    for k in range(n):
        chunk = fake_chunks[k % len(fake_chunks)]
        pair = {"id": f"{chunk['chunk_id']}-{k // len(fake_chunks)}", "chunk_id": chunk["chunk_id"],
                "doc": chunk["doc"], "question": rng.choice(sentences).rstrip(".") + "?",
                "answer": rng.choice(sentences), "grounding": round(rng.random(), 3),
                "judge": {"result": rng.choice(["YES", "NO", None]), "score": rng.randint(0, 5), "reason": "r"}}
        if k % 10 == 9:
            dropped.append({**pair, "dropped_by": "curate", "reason": "judge said no", "why": "judge said no"})
            continue
        curated.append(pair)
        if k % 50 == 7:
            duplicates.append({**pair, "dropped_by": "dedup", "reason": "near duplicate",
                               "duplicate_of": curated[0]["id"], "why": "92 >= 90"})
    for name, records in (("qa_curated", curated), ("curate_dropped", dropped), ("dedup_dropped", duplicates)):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    append_decisions(data / "review.jsonl", [make_decision(rng.choice(curated)["id"], rng.choice(["approve", "edit"]),
                                                           "bench", answer="edited") for _ in range(5000)])
    return curated


def timed(url, query, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with urllib.request.urlopen(f"{url}/api/pairs?{urllib.parse.urlencode(query)}") as response:
            total = json.load(response)["total"]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, total


def main():
    from faqforge.core.io import read_jsonl
    from faqforge.review.app import create_review_app
    from faqforge.review.store import Store
    from tests.support.http import running
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        curated = synthetic(root, n)
        start = time.perf_counter()
        read_jsonl(root / "data/qa_curated.jsonl")
        baseline = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        store = Store(root, "bench")
        loaded = (time.perf_counter() - start) * 1000
        print(f"{len(store.rows)} pairs; baseline: read_jsonl of qa_curated.jsonl once {baseline:.0f} ms; "
              f"the store loads everything (pairs, drops, chunks, 5,000 decisions) in {loaded:.0f} ms")
        word = curated[0]["question"].split()[1]
        queries = {"first page": {}, "page 1,000": {"page": 1000},
                   f"search {word!r}": {"q": word}, "one document": {"doc": curated[0]["doc"]},
                   "judge said NO": {"verdict": "NO"}, "score 4-5": {"min_score": 4, "max_score": 5},
                   "not reviewed": {"reviewed": "no"}, "dropped": {"state": "dropped"},
                   "all of them": {"q": word, "verdict": "YES", "min_score": 2, "reviewed": "no", "state": "kept"}}
        worst = 0
        with running(create_review_app(store)) as url:
            url = url.removesuffix("/v1")
            for name, query in queries.items():
                ms, total = timed(url, query)
                worst = max(worst, ms)
                print(f"{name:>22}: {ms:6.1f} ms = {ms / baseline:.2f}x the JSONL load ({total} match)")
        print(f"slowest {worst:.1f} ms: {'under' if worst < 300 else 'OVER'} the 300 ms target")
        return 0 if worst < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
