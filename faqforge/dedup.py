"""Near-duplicate removal with thefuzz's scoring semantics, at scale.

Exact duplicates (after normalisation) go first and are not searched again.
Near duplicates come from `faqforge.fuzzy.similar_pairs` (thefuzz's decisions
without scoring every pair). Duplicates form clusters (union-find) and one
representative per cluster is kept, chosen by `dedup.prefer`.
"""

import re
import unicodedata

from faqforge.fuzzy import ALL_PAIRS_UP_TO, check_scorer, processed, similar_pairs
from faqforge.io import PipelineError, iter_jsonl, write_jsonl
from faqforge.records import dropped, pair_prompt, pair_response

DEFAULT_PREFER = ("judge_score", "p_yes", "longest_answer", "earliest")


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


def near_duplicate_edges(texts, scorer, threshold, all_pairs_up_to=ALL_PAIRS_UP_TO):
    """(i, j, score) with i < j and score >= `threshold`, enough to connect every
    duplicate: a text identical to an earlier one after the scorer's
    pre-processing is linked to that one only (score 100) and left out of the
    search, since it would score exactly as its twin does."""
    check_scorer(scorer, "dedup.scorer")
    first, edges = {}, []
    for i, text in enumerate(processed(texts, scorer)):
        if text in first:
            edges.append((first[text], i, 100))
        else:
            first[text] = i
    unique = list(first.values())
    found = similar_pairs([texts[i] for i in unique], scorer=scorer, threshold=threshold,
                          all_pairs_up_to=all_pairs_up_to)
    return sorted(edges + [(unique[a], unique[b], score) for a, b, score in found])


# How to choose the pair a cluster keeps: each criterion maps a pair to a number,
# higher is better; a pair without the value ranks below every pair with it.
PREFER = {
    "judge_score": lambda p: (p.get("judge") or {}).get("score"),
    "p_yes": lambda p: (p.get("judge") or {}).get("p_yes"),
    "grounding": lambda p: p.get("grounding"),
    "longest_answer": lambda p: len(pair_response(p)),
    "shortest_answer": lambda p: -len(pair_response(p)),
}


def check_prefer(prefer):
    unknown = [c for c in prefer if c not in PREFER and c != "earliest"]
    if unknown:
        raise PipelineError(f"params.yaml: dedup.prefer: unknown criterion {unknown[0]!r}; choose from "
                         f"{', '.join([*PREFER, 'earliest'])}")


def representative_order(pair, index, prefer=DEFAULT_PREFER):
    """Sort key, best first: the `prefer` criteria in order, then the earliest pair."""
    key = []
    for criterion in prefer:
        if criterion == "earliest":
            break
        value = PREFER[criterion](pair)
        key += [value is None, -(value or 0)]
    return (*key, index)


def duplicate_decisions(texts, order_keys, scorer="token_set_ratio", threshold=90):
    """Which items go: {index: (head, partner, score, why)} for every dropped
    item, where `head` is the kept representative of its cluster (the smallest
    of `order_keys`) and `partner` the item it was matched with. Needs only the
    dedup texts and sort keys, never whole records."""
    parent = list(range(len(texts)))
    evidence = {}
    exact = {}
    for i, text in enumerate(texts):
        key = normalise(text)
        if key in exact:
            parent[_find(parent, i)] = _find(parent, exact[key])
            evidence[i] = (exact[key], 100, "exact duplicate after normalisation")
        else:
            exact[key] = i
    del exact
    for i, j, score in near_duplicate_edges(texts, scorer, threshold):
        parent[_find(parent, j)] = _find(parent, i)
        if j not in evidence:
            evidence[j] = (i, score, f"{scorer} {score} >= {threshold}")
    clusters = {}
    for i in range(len(texts)):
        clusters.setdefault(_find(parent, i), []).append(i)
    decisions = {}
    for members in clusters.values():
        if len(members) == 1:
            continue
        members.sort(key=lambda i: order_keys[i])
        head, inside = members[0], set(members)
        for i in members[1:]:
            partner, score, why = evidence.get(i, (head, None, "same cluster"))
            if partner == i or partner not in inside:
                partner = head
            decisions[i] = (head, partner, score, why)
    return decisions


def _dropped(pair, decision, ids):
    head, partner, score, why = decision
    reason = "exact duplicate" if why.startswith("exact") else "near duplicate"
    return dropped(pair, "dedup", reason, f"{why} (matched {ids[partner]}; kept {ids[head]})",
                   cluster=ids[head], duplicate_of=ids[head], score=score)


def near_duplicate_clusters(pairs, field="question", scorer="token_set_ratio", threshold=90,
                            prefer=DEFAULT_PREFER):
    """Returns (kept, dropped), both in input order. Every pair gains `cluster`
    (the id of its cluster's representative, chosen by `prefer`); a dropped pair
    also gains `duplicate_of`, `score`, `why`."""
    check_prefer(prefer)
    decisions = duplicate_decisions([dedup_key(p, field) for p in pairs],
                                    [representative_order(p, i, prefer) for i, p in enumerate(pairs)],
                                    scorer, threshold)
    ids = [p["id"] for p in pairs]
    kept = [{**p, "cluster": p["id"]} for i, p in enumerate(pairs) if i not in decisions]
    return kept, [_dropped(p, decisions[i], ids) for i, p in enumerate(pairs) if i in decisions]


def dedup_file(source, kept_path, dropped_path, field="question", scorer="token_set_ratio", threshold=90,
               prefer=DEFAULT_PREFER):
    """near_duplicate_clusters over a JSON Lines file in bounded memory: one pass
    keeps only each pair's id, dedup text and sort key; two more stream the
    records out. Returns the stage's counts."""
    check_prefer(prefer)
    texts, order_keys, ids = [], [], []
    for i, pair in enumerate(iter_jsonl(source)):
        texts.append(dedup_key(pair, field))
        order_keys.append(representative_order(pair, i, prefer))
        ids.append(pair["id"])
    decisions = duplicate_decisions(texts, order_keys, scorer, threshold)
    del texts, order_keys
    kept = write_jsonl(kept_path, ({**p, "cluster": p["id"]} for i, p in enumerate(iter_jsonl(source))
                                   if i not in decisions))
    write_jsonl(dropped_path, (_dropped(p, decisions[i], ids) for i, p in enumerate(iter_jsonl(source))
                               if i in decisions))
    exact = sum(why.startswith("exact") for _, _, _, why in decisions.values())
    return {"pairs_in": len(ids), "kept": kept, "dropped": len(decisions), "exact_duplicates": exact,
            "near_duplicates": len(decisions) - exact,
            "clusters_with_duplicates": len({head for head, *_ in decisions.values()})}
