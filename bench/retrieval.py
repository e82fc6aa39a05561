"""Retrieval: faqforge's BM25 (bm25s) against rank-bm25, the usual Python BM25, in one run.

    .venv/bin/python -m bench.retrieval [sizes [queries]]     # default 10000,100000,1000000 and 200
    .venv/bin/python -m bench.retrieval quality               # part 1 only

1. Quality on the default corpus (after `dvc repro split`), the evaluate stage's
   retrieval figures at k = 1, 2 (the default passages), 3 and 5: the share of
   answerable eval questions whose reference the top k passages support, and
   recall@k of each validation pair's own chunk; for BM25, the embedded encoder
   (retriever.base) as shipped and fine-tuned on the training pairs (the retriever
   stage's models/retriever/), each alone and fused with BM25 by reciprocal rank
   (hybrid), each index built from data/chunks.jsonl.
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
import tempfile
import time
from pathlib import Path

import numpy as np

from faqforge.core.config import load_config
from faqforge.core.io import read_evalset, read_jsonl
from faqforge.documents.retrieval import ENCODER_CARD, Bm25, Retriever, build_index
from faqforge.evaluation.scores import retrieval_metrics
from faqforge.training.retriever import RETRIEVER_DIR

ROOT = Path(__file__).resolve().parents[1]

ONLY_QUALITY = sys.argv[1:2] == ["quality"]
SIZES = [] if ONLY_QUALITY else [int(n) for n in
                                 (sys.argv[1] if len(sys.argv) > 1 else "10000,100000,1000000").split(",")]
QUERIES = int(sys.argv[2]) if len(sys.argv) > 2 else 200
K = 3


def quality():
    """The evaluate stage's retrieval figures (retrieval_metrics) at k = 1, the default
    split.raft.passages, 3 and 5: BM25; the embedded encoder as shipped, alone and fused
    with BM25 (hybrid); and the retriever stage's encoder, fine-tuned on the training
    side of the split (the validation pairs and the eval questions are never trained
    on), alone and hybrid. Each index is built from data/chunks.jsonl with the index params."""
    chunks, val, evalset = ROOT / "data/chunks.jsonl", ROOT / "data/val.jsonl", ROOT / "data/eval/evalset.json"
    if not chunks.exists() or not val.exists():
        print("quality: no data/chunks.jsonl or data/val.jsonl; run `dvc repro split` first")
        return
    config = load_config(sections=["index", "split", "retriever"])
    split, index = config["split"], config["index"]
    pairs = [p for p in read_jsonl(val) if p.get("chunk_id") and p.get("kind") != "refusal"]
    items = read_evalset(evalset)
    references = [x["answer"] if x.get("answerable", True) else None for x in items]
    default = split.raft.passages
    shipped = config["retriever"].base
    with tempfile.TemporaryDirectory() as scratch:
        def measure(name, method, model):
            start = time.perf_counter()
            directory = Path(scratch) / name
            dense = index.dense.model_copy(update={"model": model, "base_url": None})
            build_index(read_jsonl(chunks), index.model_copy(update={"method": method, "dense": dense}), directory)
            retriever = Retriever(directory)
            built = time.perf_counter() - start
            for k in sorted({1, default, 3, 5}):
                m = retrieval_metrics(retriever.search([x["question"] for x in items], k), references,
                                      retriever.search([p["question"] for p in pairs], k),
                                      [p["chunk_id"] for p in pairs])
                print(f"quality, {name} (index built in {built:.1f} s), k={k}{' (the default)' if k == default else ''}"
                      f": the top {k} passages support the reference of {m['eval_supported']:.3f} of "
                      f"{m['questions']} answerable eval questions and hold {m['eval_passage_recall']:.3f} of it; "
                      f"a validation pair's own chunk among them: {m['val_own_chunk_recall_at_k']:.3f} "
                      f"({m['val_pairs']} pairs, {retriever.manifest['passages']} passages)")
            return retriever

        measure("bm25", "bm25", None)
        measure(f"dense, {shipped} as shipped", "dense", shipped)
        measure(f"hybrid, {shipped} as shipped", "hybrid", shipped)
        trained = ROOT / RETRIEVER_DIR
        if not (trained / ENCODER_CARD).exists():
            print(f"quality: no {RETRIEVER_DIR}; run `dvc repro retriever` for the fine-tuned rows")
            return
        print(f"{RETRIEVER_DIR}: {json.loads((trained / ENCODER_CARD).read_text())}")
        measure("dense, fine-tuned (models/retriever)", "dense", str(trained))
        measure("hybrid, fine-tuned (models/retriever)", "hybrid", str(trained))


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
