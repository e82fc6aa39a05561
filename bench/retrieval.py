"""Retrieval: faqforge's BM25 (bm25s) against rank-bm25, the usual Python BM25, in one run.

    .venv/bin/python -m bench.retrieval [sizes [queries]]     # default 10000,100000,1000000 and 200

1. Quality on the default corpus (after `dvc repro split`): recall@1/3/5 of each
   validation pair's own chunk, and for the eval set the share of questions
   whose reference the top 3 passages support, with the index data/index/ holds.
2. Speed on synthetic corpora of n passages (60 words each, Zipf-distributed
   words of a 30,000-word vocabulary, like text): index build time (tokenizing
   included, the same tokenizer for both: faqforge's folding, stop words and
   English stems) and single-question latency p50 / p99 for the top 3. rank-bm25
   scores every passage in Python per query term, so at large n it answers
   fewer queries (printed); the ratio is rank-bm25's time over faqforge's.
"""

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from faqforge.documents.retrieval import Bm25, Retriever
from faqforge.evaluation.factual import factual_scores

ROOT = Path(__file__).resolve().parents[1]

SIZES = [int(n) for n in (sys.argv[1] if len(sys.argv) > 1 else "10000,100000,1000000").split(",")]
QUERIES = int(sys.argv[2]) if len(sys.argv) > 2 else 200
K = 3


def quality():
    index, val, evalset = ROOT / "data/index", ROOT / "data/val.jsonl", ROOT / "data/eval/evalset.json"
    if not (index / "index.json").exists() or not val.exists():
        print("quality: no data/index or data/val.jsonl; run `dvc repro split` first")
        return
    retriever = Retriever(index)
    pairs = [json.loads(line) for line in val.read_text().splitlines()]
    pairs = [p for p in pairs if p.get("chunk_id") and p.get("kind") != "refusal"]
    hits = retriever.search([p["question"] for p in pairs], 5)
    for k in (1, 3, 5):
        found = sum(any(h["chunk_id"] == p["chunk_id"] for h in hit[:k]) for hit, p in zip(hits, pairs))
        print(f"quality: recall@{k} of the validation pair's own chunk: {found / len(pairs):.3f} ({len(pairs)} pairs)")
    items = json.loads(evalset.read_text())
    shown = retriever.search([x["question"] for x in items], K)
    supported = [factual_scores(x["answer"], " ".join(h["text"] for h in s))["factual"] >= 0.5
                 for x, s in zip(items, shown)]
    print(f"quality: eval questions whose reference the top {K} passages support: "
          f"{sum(supported) / len(supported):.3f} ({len(items)} questions, {retriever.manifest['passages']} passages)")


def corpus(n, seed=0, words=60, vocabulary=30_000):
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}x{chr(97 + i % 26)}" for i in range(vocabulary)])
    ids = np.minimum(rng.zipf(1.2, size=(n, words)), vocabulary) - 1
    return [" ".join(row) for row in vocab[ids]], vocab


def questions(vocab, count, seed=1):
    rng = np.random.default_rng(seed)
    ids = np.minimum(rng.zipf(1.3, size=(count, 6)), len(vocab)) - 1
    return [" ".join(vocab[row]) + "?" for row in ids]


def latencies(answer, asked):
    times = []
    for q in asked:
        start = time.perf_counter()
        answer(q)
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def speed(n):
    from rank_bm25 import BM25Okapi
    texts, vocab = corpus(n)
    asked = questions(vocab, QUERIES)
    ours = Bm25()
    start = time.perf_counter()
    ours.build(texts)
    ours_build = time.perf_counter() - start
    ours_p50, ours_p99 = latencies(lambda q: ours.search([q], K), asked)

    start = time.perf_counter()
    tokens = ours.tokens(texts)  # the same folding, stop words and stems, as lists of strings
    theirs = BM25Okapi(tokens, k1=1.5, b=0.75)
    theirs_build = time.perf_counter() - start
    del tokens
    few = asked[:max(10, QUERIES * 10_000 // n)] if n > 10_000 else asked

    def rank_bm25_top(q):
        scores = theirs.get_scores(ours.tokens([q])[0])
        return np.argpartition(-scores, K)[:K]
    theirs_p50, theirs_p99 = latencies(rank_bm25_top, few)
    print(f"n={n:,}: build faqforge {ours_build:.1f} s, rank-bm25 {theirs_build:.1f} s "
          f"({theirs_build / ours_build:.1f}x); query p50 faqforge {ours_p50 * 1000:.2f} ms, rank-bm25 "
          f"{theirs_p50 * 1000:.1f} ms ({theirs_p50 / ours_p50:.0f}x); p99 {ours_p99 * 1000:.2f} ms vs "
          f"{theirs_p99 * 1000:.1f} ms ({theirs_p99 / ours_p99:.0f}x); {len(asked)} / {len(few)} queries", flush=True)


if __name__ == "__main__":
    quality()
    for size in SIZES:
        speed(size)
