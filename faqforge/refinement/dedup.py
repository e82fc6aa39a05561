"""Near-duplicate removal that never merges distinct questions through a third.

Questions are compared in `records.normalise`'s form. Exact duplicates after
normalisation and near duplicates (`faqforge.refinement.fuzzy.similar_pairs`: score >=
`threshold`) are grouped around centres: pairs are taken best first by
`dedup.prefer`; a pair not yet claimed is kept and claims every unclaimed pair
that is itself a duplicate of it. A pair is therefore dropped only when it is a
duplicate of the pair that is kept in its place, never because it resembles
some other pair that resembles the kept one (single linkage would chain "How do
I install it?" to every "How do I install it on/with/behind ...?").
With `answer_threshold` a pair also needs an answer scoring at least that
against the kept pair's answer, so one question asked of two different facts
keeps both.
"""

from faqforge.core.io import iter_jsonl
from faqforge.core.records import dropped, normalise, pair_prompt, pair_response
from faqforge.refinement.fuzzy import compared, rapidfuzz_scorer, similar_pairs

# How to choose the pair a cluster keeps: each criterion maps a pair to a number,
# higher is better; a pair without the value ranks below every pair with it.
PREFER = {
    "judge_score": lambda p: (p.get("judge") or {}).get("score"),
    "p_yes": lambda p: (p.get("judge") or {}).get("p_yes"),
    "grounding": lambda p: p.get("grounding"),
    "longest_answer": lambda p: len(pair_response(p)),
    "shortest_answer": lambda p: -len(pair_response(p)),
}


def representative_order(pair, index, prefer):
    """Sort key, best first: the `prefer` criteria in order, then the earliest pair."""
    key = []
    for criterion in prefer:
        if criterion == "earliest":
            break
        value = PREFER[criterion](pair)
        key += [value is None, -(value or 0)]
    return (*key, index)


def near_duplicate_neighbours(texts, scorer, threshold, exhaustive_up_to=None):
    """(members, neighbours): `members[g]` lists the indices of the texts whose
    normalised form is the g-th distinct one (in order of first appearance);
    `neighbours[g]` lists (h, score) for the other groups scoring at least
    `threshold` with it. Identical texts are searched once."""
    groups = {}
    for i, text in enumerate(texts):
        groups.setdefault(normalise(text), []).append(i)
    distinct = list(groups)
    neighbours = [[] for _ in distinct]
    for a, b, score in similar_pairs(distinct, scorer=scorer, threshold=threshold,
                                     exhaustive_up_to=exhaustive_up_to):
        neighbours[a].append((b, score))
        neighbours[b].append((a, score))
    return list(groups.values()), neighbours


def duplicate_decisions(texts, order_keys, scorer, threshold, answers=None, answer_threshold=None,
                        exhaustive_up_to=None):
    """Which items go: {index: (kept, score, reason, why)} for every dropped item, where
    `kept` is the item it duplicates, kept in its place, `reason` "exact duplicate" or
    "near duplicate" and `why` the scores. Items are taken in
    order of `order_keys` (smallest first); an unclaimed item is kept and claims
    the unclaimed items that duplicate it (and, with `answer_threshold`, whose
    `answers` score that much against its answer). Needs only the texts and
    sort keys, never whole records."""
    if answer_threshold is not None:
        answer_text = compared(answers, scorer)
        answer_score = rapidfuzz_scorer(scorer)
    members, neighbours = near_duplicate_neighbours(texts, scorer, threshold, exhaustive_up_to)
    group_of = [0] * len(texts)
    for g, items in enumerate(members):
        for i in items:
            group_of[i] = g
    decisions, claimed = {}, set()
    for i in sorted(range(len(texts)), key=lambda i: order_keys[i]):
        if i in claimed:
            continue
        claimed.add(i)
        g = group_of[i]
        candidates = [(j, 100, "exact duplicate", "exact duplicate after normalisation") for j in members[g]]
        candidates += [(j, score, "near duplicate", f"{scorer} {score} >= {threshold}") for h, score in neighbours[g]
                       for j in members[h]]
        for j, score, reason, why in candidates:
            if j in claimed:
                continue
            if answer_threshold is not None:
                a_score = round(answer_score(answer_text[i], answer_text[j]), 1)
                if a_score < answer_threshold:
                    continue
                why += f"; answers {a_score} >= {answer_threshold}"
            claimed.add(j)
            decisions[j] = (i, score, reason, why)
    return decisions


def _dropped(pair, decision, ids):
    kept, score, reason, why = decision
    return dropped(pair, "dedup", reason, f"{why} (duplicate of {ids[kept]}, kept)",
                   cluster=ids[kept], duplicate_of=ids[kept], score=score)


def near_duplicate_clusters(pairs, rule):
    """Returns (kept, dropped), both in input order, under `rule` (the dedup
    section). Every pair gains `cluster` (the id of the kept pair it is grouped
    with); a dropped pair also gains `duplicate_of`, `score`, `why`."""
    decisions = duplicate_decisions([pair_prompt(p) for p in pairs],
                                    [representative_order(p, i, rule.prefer) for i, p in enumerate(pairs)],
                                    rule.scorer, rule.threshold, [pair_response(p) for p in pairs],
                                    rule.answer_threshold)
    ids = [p["id"] for p in pairs]
    kept = [{**p, "cluster": p["id"]} for i, p in enumerate(pairs) if i not in decisions]
    return kept, [_dropped(p, decisions[i], ids) for i, p in enumerate(pairs) if i in decisions]


def dedup_stream(source, rule):
    """near_duplicate_clusters over a JSON Lines file in bounded memory: one pass
    keeps only each pair's id, question, sort key (and answer with
    `rule.answer_threshold`). Returns (kept, dropped, counts): two generators that
    stream the file again, in input order, and the stage's own counts."""
    answer_threshold = rule.answer_threshold
    texts, answers, order_keys, ids = [], [], [], []
    for i, pair in enumerate(iter_jsonl(source)):
        texts.append(pair_prompt(pair))
        answers.append(pair_response(pair) if answer_threshold is not None else None)
        order_keys.append(representative_order(pair, i, rule.prefer))
        ids.append(pair["id"])
    decisions = duplicate_decisions(texts, order_keys, rule.scorer, rule.threshold, answers, answer_threshold)
    del texts, answers, order_keys
    kept = ({**p, "cluster": p["id"]} for i, p in enumerate(iter_jsonl(source)) if i not in decisions)
    dropped = (_dropped(p, decisions[i], ids) for i, p in enumerate(iter_jsonl(source)) if i in decisions)
    exact = sum(reason == "exact duplicate" for _, _, reason, _ in decisions.values())
    return kept, dropped, {"pairs_in": len(ids), "exact_duplicates": exact, "near_duplicates": len(decisions) - exact,
                           "clusters_with_duplicates": len({kept for kept, *_ in decisions.values()})}
