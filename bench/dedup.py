"""Dedup and decontamination against the alternatives a user would pick, in one run.

    .venv/bin/python -m bench.dedup [n_pairs [sample]]      # default 100,000 and 20,000

Dedup (token_sort_ratio >= 90 on the normalised question, the default params):
1. On a 20,000-pair sample of generated pairs (tests/synthetic.py: questions of
   6-18 words, answers of 12-45, 10% planted near copies), three ways:
   rapidfuzz `cdist` over all pairs (what the project's own code did for small
   inputs, and what a user writes by hand: same scorer, same decisions
   expected), datasketch MinHash LSH (what NeMo Curator and distilabel use:
   character 3-gram shingles, Jaccard 0.7, 128 permutations), and faqforge's
   search. Time, pairs found, and recall of the planted near copies.
2. faqforge and MinHash LSH on all n pairs; cdist's time there is extrapolated
   from the sample (pairs grow with n^2) and printed as such.
3. The word index (used above 400M pairs) against the exhaustive search on
   questions made from data/docs with planted short-token edits (numbers,
   versions, two-letter words): pairs each finds.

Decontamination against the human-written eval set (data/eval/evalset.json):
recall on planted leaks of each kind, false positives on questions made from
the documents and on longer questions that contain an eval question; then the
time for n pairs against 1,000 eval items.
"""

import json
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np
from datasketch import MinHash, MinHashLSH
from rapidfuzz import fuzz, process

from faqforge.core.config import load_config
from faqforge.core.records import normalise
from faqforge.refinement.decontaminate import contamination
from faqforge.refinement.dedup import near_duplicate_clusters, near_duplicate_neighbours
from faqforge.refinement.fuzzy import similar_pairs
from tests.support.synthetic import document_questions, near_copy, short_token_edit
from tests.support.synthetic import pairs as synthetic_pairs

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
CONFIG = load_config(ROOT / "params.yaml", ["dedup", "decontaminate"])
DEDUP, DECON = CONFIG["dedup"], CONFIG["decontaminate"]


def timed(fn, *args, **kwargs):
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return time.monotonic() - start, result


def cdist_pairs(questions, threshold, block=2000):
    """Every pair through rapidfuzz's cdist (token_sort_ratio on the normalised questions)."""
    texts = [normalise(q) for q in questions]
    found = set()
    for start in range(0, len(texts), block):
        scores = process.cdist(texts[start:start + block], texts, scorer=fuzz.token_sort_ratio,
                               score_cutoff=threshold, dtype=np.uint8, workers=-1)
        for r, j in zip(*np.nonzero(scores)):
            if start + r < j:
                found.add((start + int(r), int(j)))
    return found


def minhash_pairs(questions, threshold=0.7, num_perm=128):
    """Candidate pairs of datasketch's MinHash LSH over character 3-gram shingles."""
    shingles = [{t[k:k + 3].encode() for k in range(max(len(t) - 2, 1))} for t in map(normalise, questions)]
    hashes = MinHash.bulk(shingles, num_perm=num_perm)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    with lsh.insertion_session() as session:
        for i, h in enumerate(hashes):
            session.insert(i, h, check_duplication=False)
    return {(min(i, j), max(i, j)) for i, h in enumerate(hashes) for j in lsh.query(h) if j != i}


def faqforge_pairs(questions):
    groups, neighbours = near_duplicate_neighbours(questions, DEDUP.scorer, DEDUP.threshold)
    found = set()
    for g, members in enumerate(groups):
        found |= {(min(a, b), max(a, b)) for a in members for b in members if a != b}
        found |= {(min(a, b), max(a, b)) for h, _ in neighbours[g] for a in members for b in groups[h]}
    return found


def planted(data):
    index = {p["id"]: i for i, p in enumerate(data)}
    return {(min(i, index[p["planted_from"]]), max(i, index[p["planted_from"]]))
            for i, p in enumerate(data) if "planted_from" in p}


def dedup_bench(n):
    data = synthetic_pairs(n, 0.1, seed=1)
    sample = data[:SAMPLE]
    questions = [p["question"] for p in sample]
    truth_planted = planted(sample)
    t_cdist, by_cdist = timed(cdist_pairs, questions, DEDUP["threshold"])
    t_minhash, by_minhash = timed(minhash_pairs, questions)
    t_ours, by_ours = timed(faqforge_pairs, questions)
    print(f"## dedup, {SAMPLE:,}-pair sample ({len(truth_planted):,} planted near copies)")
    print("| method | seconds | pairs found | planted copies found | same pairs as cdist |")
    print("| --- | --- | --- | --- | --- |")
    for name, t, found in (("rapidfuzz cdist, all pairs (baseline)", t_cdist, by_cdist),
                           ("datasketch MinHash LSH, 3-gram Jaccard 0.7", t_minhash, by_minhash),
                           ("faqforge (length-banded exhaustive search)", t_ours, by_ours)):
        print(f"| {name} | {t:.1f} | {len(found):,} | {len(found & truth_planted):,} "
              f"({len(found & truth_planted) / len(truth_planted):.1%}) | {found == by_cdist} |")
    print(f"faqforge vs cdist: {t_cdist / t_ours:.1f}x; vs MinHash LSH: {t_minhash / t_ours:.1f}x; "
          f"MinHash pairs scoring < {DEDUP['threshold']}: {len(by_minhash - by_cdist):,}, "
          f"pairs >= {DEDUP['threshold']} it misses: {len(by_cdist - by_minhash):,}")

    t_full, (kept, dropped) = timed(near_duplicate_clusters, data, DEDUP)
    t_minhash_full, by_minhash_full = timed(minhash_pairs, [p["question"] for p in data])
    all_planted = planted(data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    extrapolated = t_cdist * (n / SAMPLE) ** 2
    print(f"\n## dedup, {n:,} pairs")
    print(f"faqforge near_duplicate_clusters (search + centres): {t_full:.1f} s, {len(dropped):,} dropped "
          f"({len(all_planted):,} near copies planted); MinHash LSH candidates alone: {t_minhash_full:.1f} s, "
          f"{len(by_minhash_full & all_planted) / len(all_planted):.1%} of the planted copies; cdist extrapolated "
          f"(n^2): {extrapolated:.0f} s, so faqforge {extrapolated / t_full:.1f}x; peak RSS so far {peak:.0f} MiB")


def index_bench():
    print("\n## word index vs exhaustive search, questions made from data/docs")
    print("| questions (distinct) | exhaustive pairs | index pairs | missed | false | index s | exhaustive s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n, seed in ((1_200, 1), (5_000, 2)):
        texts = list(dict.fromkeys(document_questions(ROOT / "data/docs", n, seed=seed)))
        t_ex, exhaustive = timed(similar_pairs, texts, None, scorer=DEDUP.scorer, threshold=DEDUP.threshold,
                                exhaustive_up_to=10**12)
        t_ix, indexed = timed(similar_pairs, texts, None, scorer=DEDUP.scorer, threshold=DEDUP.threshold,
                                exhaustive_up_to=0)
        exhaustive, indexed = {(i, j) for i, j, _ in exhaustive}, {(i, j) for i, j, _ in indexed}
        print(f"| {n:,} ({len(texts):,}) | {len(exhaustive):,} | {len(indexed):,} | {len(exhaustive - indexed):,} "
              f"| {len(indexed - exhaustive):,} | {t_ix:.2f} | {t_ex:.2f} |")


def decontamination_bench(n):
    evalset = json.loads((ROOT / "data/eval/evalset.json").read_text())
    rng = random.Random(4)
    leaks = {"copied question": [], "case and punctuation": [], "one-word edit or typo": [],
             "short-token edit": [], "short answer copied (< 13 words)": [], "long answer copied (13+ words)": []}
    for k, e in enumerate(evalset):
        q, a = e["question"], e["answer"]
        leaks["copied question"].append((k, q, "Some other answer."))
        leaks["case and punctuation"].append((k, q.upper().rstrip("?") + " ??", "Some other answer."))
        leaks["one-word edit or typo"].append((k, near_copy(q, rng), "Some other answer."))
        edited = short_token_edit(q, rng)
        if edited:
            leaks["short-token edit"].append((k, edited, "Some other answer."))
        short = len(normalise(a).split()) < 13
        kind = "short answer copied (< 13 words)" if short else "long answer copied (13+ words)"
        leaks[kind].append((k, "What should I know here?", f"As the guide says: {a}"))
    print("\n## decontamination against the 44 eval items")
    print("| planted leak | caught |")
    print("| --- | --- |")
    for kind, items in leaks.items():
        pairs = [{"id": f"x{i}", "question": q, "answer": a} for i, (_, q, a) in enumerate(items)]
        _, dropped = contamination(pairs, evalset, DECON)
        print(f"| {kind} | {len(dropped)} of {len(pairs)} |")
    domain = [q for q in dict.fromkeys(document_questions(ROOT / "data/docs", 3000, seed=9, edit_share=0))]
    pairs = [{"id": f"d{i}", "question": q, "answer": "An answer from the documents."} for i, q in enumerate(domain)]
    _, flagged = contamination(pairs, evalset, DECON)
    print(f"\nfalse positives on {len(domain):,} questions made from data/docs: {len(flagged)} "
          f"({len(flagged) / len(domain):.1%})" + "".join(f"\n  - {d['question']!r} ~ {d['eval_question']!r}"
                                                       for d in flagged[:5]))
    extensions = {1: [" again", " twice", " today"], 2: [" on Windows", " in Docker", " for teams"],
                  3: [" behind a proxy", " for one source", " on a laptop"],
                  5: [" when the teacher is remote", " without a GPU or key", " in a shared team project"]}
    print("\n| longer question (eval question + N words) | removed, default | removed, token_set_ratio |")
    print("| --- | --- | --- |")
    for words, tails in extensions.items():
        pairs = [{"id": f"s{i}", "question": e["question"].rstrip("?") + tail + "?", "answer": "x"}
                 for i, (e, tail) in enumerate((e, t) for e in evalset for t in tails)]
        _, ours = contamination(pairs, evalset, DECON)
        _, token_set = contamination(pairs, evalset, DECON.model_copy(update={"scorer": "token_set_ratio"}))
        print(f"| +{words} | {len(ours) / len(pairs):.0%} | {len(token_set) / len(pairs):.0%} |")

    data = synthetic_pairs(n, 0.1, seed=1)
    big_eval = [{"question": near_copy(data[i]["question"], rng), "answer": "A fresh answer."}
                for i in rng.sample(range(n), 200)]
    big_eval += [{"question": p["question"], "answer": p["answer"]} for p in synthetic_pairs(800, 0, seed=2)]
    t, (clean, leaked) = timed(contamination, data, big_eval, **DECON)
    print(f"\ndecontamination of {n:,} pairs against {len(big_eval):,} eval items: {t:.1f} s, {len(leaked):,} flagged")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    dedup_bench(n)
    index_bench()
    decontamination_bench(n)


if __name__ == "__main__":
    main()
