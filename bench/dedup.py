"""Dedup and decontamination at scale.

    .venv/bin/python bench/dedup.py [n_pairs]

100,000 generated pairs (tests/synthetic.py: questions of 6-18 words, answers of
12-45, 10% planted near-duplicates) go through `near_duplicate_clusters`
(token_set_ratio >= 90 on the question). Baseline, measured in the same run:
exhaustive pairwise thefuzz on a 3,000-pair sample; the exhaustive run on 100k
pairs is out of reach, so its time is extrapolated from the sample (pairs grow
with n^2) and printed as such. Then decontamination of the 100k pairs against
1,000 eval items, 200 of them reworded copies of training questions; baseline:
all-pairs rapidfuzz `cdist` (what faqforge did before the word index), timed on
5,000 pairs and extrapolated. Targets: dedup <= 300 s, decontamination <= 60 s
on 2 cores.
"""

import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rapidfuzz import fuzz as rf_fuzz  # noqa: E402
from rapidfuzz import process, utils  # noqa: E402
from synthetic import near_copy  # noqa: E402
from synthetic import pairs as synthetic_pairs  # noqa: E402
from thefuzz import fuzz  # noqa: E402

from faqforge.decontaminate import contamination  # noqa: E402
from faqforge.dedup import near_duplicate_clusters, near_duplicate_edges  # noqa: E402


def exhaustive(questions):
    """Every pair through thefuzz: (seconds, set of pairs scoring >= 90)."""
    start = time.monotonic()
    found = set()
    for i in range(len(questions)):
        for j in range(i + 1, len(questions)):
            if fuzz.token_set_ratio(questions[i], questions[j]) >= 90:
                found.add((i, j))
    return time.monotonic() - start, found


def components(edges, n):
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i
    for i, j in edges:
        parent[root(j)] = root(i)
    groups = {}
    for i in range(n):
        groups.setdefault(root(i), set()).add(i)
    return sorted(map(sorted, groups.values()))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    data = synthetic_pairs(n, 0.1, seed=1)
    sample = [p["question"] for p in data[:3000]]
    baseline, truth = exhaustive(sample)
    sample_fast = time.monotonic()
    near_duplicate_clusters(data[:3000], "question", "token_set_ratio", 90)
    sample_fast = time.monotonic() - sample_fast
    # The word index is what runs above 500,000 pairs (1,000 texts); on the sample it must find what thefuzz finds.
    indexed = {(i, j) for i, j, _ in near_duplicate_edges(sample, "token_set_ratio", 90, all_pairs_up_to=0)}
    extrapolated = baseline * (n / len(sample)) ** 2

    start = time.monotonic()
    kept, dropped = near_duplicate_clusters(data, "question", "token_set_ratio", 90)
    elapsed = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
    planted = sum("planted_from" in p for p in data)
    print(f"exhaustive thefuzz on 3,000 pairs (baseline): {baseline:7.1f} s; faqforge on the same: "
          f"{sample_fast:.2f} s ({baseline / sample_fast:.0f}x)")
    same = components(truth, len(sample)) == components(indexed, len(sample))
    print(f"word index (used above 1,000 texts) forced on the same sample: {len(truth)} pairs score >= 90 in thefuzz, "
          f"{len(indexed - truth)} false edges; duplicate clusters identical to exhaustive: {same}")
    print(f"dedup of {n:,} pairs: {elapsed:7.1f} s (target <= 300 s); exhaustive thefuzz extrapolated: "
          f"{extrapolated / 3600:.1f} h, so {extrapolated / elapsed:.0f}x; "
          f"peak RSS of the whole process {peak:.0f} MiB")
    print(f"  {len(dropped):,} dropped as duplicates ({planted:,} near copies were planted; some planted edits "
          f"score below 90, and random questions can collide)")

    # 1,000 eval items: 200 reworded copies of training questions (planted leaks), 800 new ones.
    rng = random.Random(2)
    leaked_from = rng.sample(range(n), 200)
    evalset = [{"question": near_copy(data[i]["question"], rng), "answer": "A fresh answer."} for i in leaked_from]
    evalset += [{"question": p["question"], "answer": p["answer"]} for p in synthetic_pairs(800, 0, seed=2)]
    slice_ = data[:5000]
    start = time.monotonic()
    process.cdist([utils.default_process(p["question"]) for p in slice_],
                  [utils.default_process(e["question"]) for e in evalset], scorer=rf_fuzz.token_set_ratio,
                  score_cutoff=85, workers=-1)
    baseline = (time.monotonic() - start) * n / len(slice_)
    start = time.monotonic()
    clean, leaked = contamination(data, evalset, 13, 85, "token_set_ratio")
    elapsed = time.monotonic() - start
    caught = len({i for i in leaked_from} & {int(p["id"][1:]) for p in leaked})
    print(f"decontamination of {n:,} pairs against {len(evalset):,} eval items: {elapsed:6.1f} s "
          f"(target <= 60 s); all-pairs rapidfuzz cdist, timed on {len(slice_):,} pairs and extrapolated: "
          f"{baseline:.0f} s, so {baseline / elapsed:.1f}x")
    print(f"  {len(leaked):,} flagged, {caught} of the {len(leaked_from)} planted leaks among them (the other flags "
          f"are near copies of those questions planted by the dedup data)")


if __name__ == "__main__":
    main()
