"""What the split stage does with data/review.jsonl (faqforge.dataset.decisions): people's
decisions applied to the pairs before they are split.

- reject: the pair and its paraphrases leave, with the reviewer's reason.
- edit: the pair asks/answers the edited text (its paraphrases take an edited
  answer too); the pipeline's original is kept in `original`.
- add: a person's own pair (`human: true`) joins; a generated pair that
  near-duplicates it leaves in its favour.
- rescue: a pair curate or dedup dropped comes back. A pair decontaminate
  dropped never does, nor one dropped for personal data.
- Every pair whose text came from a person (edited, added, rescued) is checked
  against the eval set like the pipeline's own, and leaves if it leaks it.
- `review.require`: only approved pairs (and added, rescued ones) train.
A decision whose pair exists nowhere any more (its document changed) is
reported as orphaned, never silently ignored.
"""

from faqforge.core.records import dropped, pair_prompt, pair_response, prompt_field, response_field
from faqforge.dataset.decisions import REVIEW_FILE
from faqforge.refinement.decontaminate import contamination
from faqforge.refinement.dedup import duplicate_decisions

NEVER_RESCUED = {"decontaminate": "it is too close to the eval set", "personal data": "it holds personal data"}


def rescue_refusal(pair):
    """Why a dropped pair may not be rescued into training, or None."""
    if pair.get("dropped_by") == "decontaminate":
        return NEVER_RESCUED["decontaminate"]
    if pair.get("reason") == "personal data":
        return NEVER_RESCUED["personal data"]
    return None


def _edited(pair, state, own):
    """`pair` with the review's edit applied (`own`: the decision is the pair's own, not its original's)."""
    question, answer = (state["question"] if own else None), state["answer"]
    if not (question or answer):
        return pair
    edited = {**pair, "original": {"question": pair_prompt(pair), "answer": pair_response(pair)}, "edited": True}
    if question:
        edited[prompt_field(pair)] = question
    if answer:
        edited[response_field(pair)] = answer
        edited["answer_by_person"] = True  # trained as written, never swapped for a passage's sentences
    return edited


def apply_review(pairs, state, pools, evalset, decontaminate, dedup, require=False):
    """(pairs, removed, summary): the reviewed pairs, the records removed (each with its
    reason) and what the review did. `state` is decisions.review_state of the decisions,
    `pools` the records curate, dedup and decontaminate dropped, `evalset` a function giving
    the eval set (read only when a person's text needs checking), `decontaminate` and `dedup`
    their params sections."""
    ids = {p["id"] for p in pairs}
    dropped_by_id = {p["id"]: p for p in pools}
    kept, removed, summary = [], [], {"approved": 0, "rejected": {}, "edited": 0, "added": 0, "rescued": 0,
                                      "refused": [], "orphaned": [], "not_reviewed": 0}
    for pair in pairs:
        base = pair.get("variant_of") or pair["id"]
        s = state.get(pair["id"]) or state.get(base)
        if s and s["status"] == "rejected":
            removed.append(dropped(pair, "split", "rejected in review", f"{s['reason']} ({s['reviewer']})"))
            continue
        if s:
            pair = _edited(pair, s, own=pair["id"] in state or pair["id"] == base)
        if require and not (s and s["status"] == "approved"):
            removed.append(dropped(pair, "split", "not reviewed", "review.require is on and nobody approved it"))
            continue
        kept.append({**pair, "reviewed": s["status"] if s else None})
    human = []
    for pair_id, s in state.items():
        if pair_id in ids:
            continue
        if s["added"]:
            human.append({"id": pair_id, "chunk_id": None, "doc": s["doc"] or REVIEW_FILE, "question": s["question"],
                          "answer": s["answer"], "human": True, "answer_by_person": True,
                          "reviewed": s["status"]})
        elif s["rescued"] and pair_id in dropped_by_id:
            pool = dropped_by_id[pair_id]
            why = rescue_refusal(pool)
            if why:
                summary["refused"].append({"pair_id": pair_id, "why": f"not rescued: {why}"})
                continue
            rescued = {k: v for k, v in pool.items() if k not in ("dropped_by", "reason", "why", "duplicate_of",
                                                                  "score")}
            human.append({**_edited(rescued, s, own=True), "rescued_from": pool["dropped_by"], "reviewed": "approved"})
        elif s["status"] == "rejected" and pair_id in dropped_by_id:
            continue  # a dropped pair also rejected: nothing to do
        else:
            summary["orphaned"].append({"pair_id": pair_id, "action": s["history"][-1]["action"],
                                        "reviewer": s["reviewer"], "time": s["time"]})
    people = [p for p in kept if p.get("edited")] + human
    if people:
        clean, leaked = contamination(people, evalset(), decontaminate)
        leaked_ids = {p["id"] for p in leaked}
        removed += [dropped(p, "split", "eval leak after review", p["why"]) for p in leaked]
        kept = [p for p in kept if p["id"] not in leaked_ids]
        human = [p for p in human if p["id"] not in leaked_ids]
    kept, removed = _prefer_people(kept, human, removed, dedup)
    summary["approved"] = sum(1 for s in state.values() if s["status"] == "approved")
    for s in state.values():
        if s["status"] == "rejected":
            summary["rejected"][s["reason"]] = summary["rejected"].get(s["reason"], 0) + 1
    summary["edited"] = sum(1 for s in state.values() if not s["added"] and (s["question"] or s["answer"]))
    summary["added"] = sum(1 for p in kept if p.get("human") and not p.get("rescued_from"))
    summary["rescued"] = sum(1 for p in kept if p.get("rescued_from"))
    summary["not_reviewed"] = sum(1 for p in kept if not p.get("reviewed"))
    summary["reviewed"] = len(state)
    return kept, removed, summary


def _prefer_people(kept, human, removed, dedup):
    """Generated pairs that near-duplicate a person's pair leave in its favour."""
    people = [p for p in human if p.get("human") and not p.get("rescued_from")]
    pairs = kept + human
    if not people:
        return pairs, removed
    written = {p["id"] for p in people}
    texts = [pair_prompt(p) for p in pairs]
    order = [(0 if p["id"] in written else 1, i) for i, p in enumerate(pairs)]
    decisions = duplicate_decisions(texts, order, dedup.scorer, dedup.threshold)
    gone = {}
    for j, (i, score, _, why) in decisions.items():
        if pairs[i]["id"] in written and pairs[j]["id"] not in written:
            gone[j] = dropped(pairs[j], "split", "duplicate of a person's pair", f"{why} (duplicate of "
                              f"{pairs[i]['id']}, written by a person)", duplicate_of=pairs[i]["id"], score=score)
    return [p for j, p in enumerate(pairs) if j not in gone], removed + list(gone.values())
