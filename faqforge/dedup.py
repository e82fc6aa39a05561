"""Near-duplicate removal with thefuzz's scoring semantics, at scale.

Exact duplicates (after normalisation) go first. Candidates for near
duplicates come from rapidfuzz's vectorised `cdist`, in row blocks so memory
stays bounded, with the threshold as score cutoff; each candidate is confirmed
with thefuzz's scorer of the same name. Duplicates form clusters (union-find)
and one representative per cluster is kept.
"""

import re
import unicodedata

import numpy as np
from rapidfuzz import fuzz as rf_fuzz
from rapidfuzz import process, utils
from thefuzz import fuzz as thefuzz_fuzz

from faqforge.records import pair_prompt, pair_response

SCORERS = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio")


def normalise(text):
    """Lower case, NFKC, punctuation dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def dedup_key(pair, field):
    prompt = pair_prompt(pair)
    return prompt if field == "question" else prompt + " " + pair_response(pair)


def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def near_duplicate_edges(texts, scorer, threshold, block=2048, workers=-1):
    """(i, j, score) for i < j whose score is at least `threshold`."""
    if scorer not in SCORERS:
        raise ValueError(f"dedup.scorer must be one of {', '.join(SCORERS)}, got {scorer!r}")
    # thefuzz pre-processes (lower case, punctuation out) for the token scorers only.
    processed = texts if scorer in ("ratio", "partial_ratio") else [utils.default_process(t) for t in texts]
    confirm = getattr(thefuzz_fuzz, scorer)
    edges = []
    for start in range(0, len(processed), block):
        rows = processed[start:start + block]
        scores = process.cdist(rows, processed, scorer=getattr(rf_fuzz, scorer),
                               score_cutoff=threshold, dtype=np.uint8, workers=workers)
        for r, j in zip(*np.nonzero(scores)):
            i = start + int(r)
            if i < j:
                score = confirm(texts[i], texts[int(j)])
                if score >= threshold:
                    edges.append((i, int(j), score))
    return edges


def representative_order(pair, index):
    """Sort key: best first. Highest judge score, then longest answer, then earliest."""
    judge = pair.get("judge") or {}
    return (-(judge.get("score") or 0), -len(pair_response(pair)), index)


def near_duplicate_clusters(pairs, field="question", scorer="token_set_ratio", threshold=90):
    """Returns (kept, dropped). Every pair gains `cluster` (the id of its cluster's
    representative); a dropped pair also gains `duplicate_of`, `score`, `why`."""
    texts = [dedup_key(p, field) for p in pairs]
    parent = list(range(len(pairs)))
    evidence = {}
    exact = {}
    for i, text in enumerate(texts):
        key = normalise(text)
        if key in exact:
            parent[_find(parent, i)] = _find(parent, exact[key])
            evidence[i] = (exact[key], 100, "exact duplicate after normalisation")
        else:
            exact[key] = i
    for i, j, score in near_duplicate_edges(texts, scorer, threshold):
        parent[_find(parent, j)] = _find(parent, i)
        if j not in evidence:
            evidence[j] = (i, score, f"{scorer} {score} >= {threshold}")
    clusters = {}
    for i in range(len(pairs)):
        clusters.setdefault(_find(parent, i), []).append(i)
    kept, dropped = [], []
    for members in clusters.values():
        members.sort(key=lambda i: representative_order(pairs[i], i))
        head = pairs[members[0]]
        kept.append((members[0], {**head, "cluster": head["id"]}))
        for i in members[1:]:
            partner, score, why = evidence.get(i, (members[0], None, "same cluster"))
            if partner == i or partner not in members:
                partner = members[0]
            dropped.append({**pairs[i], "cluster": head["id"], "duplicate_of": head["id"],
                            "score": score, "dropped_by": "dedup",
                            "why": f"{why} (matched {pairs[partner]['id']}; kept {head['id']})"})
    kept.sort(key=lambda t: t[0])
    return [p for _, p in kept], dropped
