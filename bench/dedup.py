"""Dedup and decontamination at scale.

    .venv/bin/python bench/dedup.py [n_pairs]

100,000 generated pairs (tests/synthetic.py: questions of 6-18 words, answers of
12-45, 10% planted near-duplicates) go through `near_duplicate_clusters`
(token_set_ratio >= 90 on the question). Baseline, measured in the same run:
exhaustive pairwise thefuzz on a 3,000-pair sample; the exhaustive run on 100k
pairs is out of reach, so its time is extrapolated from the sample (pairs grow
with n^2) and printed as such. Then decontamination of the 100k pairs against
1,000 eval items. Targets: dedup <= 300 s, decontamination <= 60 s on 2 cores.
"""

import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from synthetic import pairs as synthetic_pairs  # noqa: E402
from thefuzz import fuzz  # noqa: E402

from faqforge.decontaminate import contamination  # noqa: E402
from faqforge.dedup import near_duplicate_clusters  # noqa: E402


def exhaustive_seconds(questions):
    start = time.monotonic()
    for i in range(len(questions)):
        for j in range(i + 1, len(questions)):
            fuzz.token_set_ratio(questions[i], questions[j])
    return time.monotonic() - start


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    data = synthetic_pairs(n, 0.1, seed=1)
    sample = [p["question"] for p in data[:3000]]
    baseline = exhaustive_seconds(sample)
    sample_fast = time.monotonic()
    near_duplicate_clusters(data[:3000], "question", "token_set_ratio", 90)
    sample_fast = time.monotonic() - sample_fast
    extrapolated = baseline * (n / len(sample)) ** 2

    tracemalloc.start()
    start = time.monotonic()
    kept, dropped = near_duplicate_clusters(data, "question", "token_set_ratio", 90)
    elapsed = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    planted = sum("planted_from" in p for p in data)
    print(f"exhaustive thefuzz on 3,000 pairs (baseline): {baseline:7.1f} s; faqforge on the same: "
          f"{sample_fast:.2f} s ({baseline / sample_fast:.0f}x)")
    print(f"dedup of {n:,} pairs: {elapsed:7.1f} s (target <= 300 s); exhaustive thefuzz extrapolated: "
          f"{extrapolated / 3600:.1f} h, so {extrapolated / elapsed:.0f}x; peak traced memory {peak:.0f} MiB")
    print(f"  {len(dropped):,} dropped as duplicates ({planted:,} near copies were planted; some planted edits "
          f"score below 90, and random questions can collide)")

    evalset = [{"question": p["question"], "answer": p["answer"]} for p in synthetic_pairs(1000, 0, seed=2)]
    start = time.monotonic()
    clean, leaked = contamination(data, evalset, 13, 85, "token_set_ratio")
    elapsed = time.monotonic() - start
    print(f"decontamination of {n:,} pairs against {len(evalset):,} eval items: {elapsed:6.1f} s "
          f"(target <= 60 s); {len(leaked)} flagged")


if __name__ == "__main__":
    main()
