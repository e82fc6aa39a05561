"""RAFT training records: each question shown with retrieved passages.

With `split.context: raft` each record's user turn holds retrieved passages
(retrieval-augmented fine-tuning, RAFT): the passage of the pair's own chunk
that holds its answer (the oracle, kept with probability `oracle_p`) and hard
distractors, the best passages of other documents for the question, in the
order the retriever ranks them for the question (`order: retrieved`, as at
answer time) or shuffled (`order: shuffled`, as in the RAFT recipe); the answer
cites the oracle's number (and with a quoted pair, generate.answer_style
quoted, starts with the quote: `"..." [2] answer`). With
`split.raft.target: evidence` the answer is instead the oracle's own sentences
that support the pair's answer, copied verbatim (`evidence`). A share of extra
records shows distractors only and answers that the documents do not say. A
person's pair, which has no chunk, gets the passage that best states its
answer as its oracle (`attach_chunks`).
"""

import math
import random
import re

from faqforge.core.chat_format import REFUSAL, cite
from faqforge.core.records import (
    QUOTE,
    content_words,
    grounding_score,
    pair_prompt,
    pair_response,
    quote_in_text,
    stable_unit,
)
from faqforge.dataset.split import to_messages

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def evidence(answer, passage_text, max_sentences=2):
    """The sentences of a passage that state the answer, verbatim and in passage
    order: the one sharing most of the answer's content words, then up to
    `max_sentences - 1` more that each add at least two words of it not yet
    covered. None when no sentence shares any."""
    wanted = content_words(answer)
    candidates = [s.strip() for s in _SENTENCE.split(passage_text) if s.strip()]
    chosen, covered = [], set()
    while len(chosen) < max_sentences:
        gains = [(len((content_words(c) & wanted) - covered), -len(c), i) for i, c in enumerate(candidates)
                 if i not in chosen]
        best = max(gains, default=(0, 0, None))
        if best[0] < (1 if not chosen else 2):
            break
        chosen.append(best[2])
        covered |= content_words(candidates[best[2]]) & wanted
    return " ".join(candidates[i] for i in sorted(chosen)) or None


def oracle_passage(pair, passages_of_chunk):
    """The passage of the pair's chunk that holds its quote (answer_style quoted),
    else most of its answer; None when the chunk has none in the index."""
    if not passages_of_chunk:
        return None
    answer = pair_response(pair)
    quoted = [p for p in passages_of_chunk if QUOTE in pair and quote_in_text(pair[QUOTE], p["text"])]
    return max(quoted or passages_of_chunk, key=lambda p: grounding_score(answer, p["text"]))


def raft_records(pairs, retriever, system_prompt, params, seed, draws=1):
    """RAFT records for `pairs` (params: the split.raft section): per pair
    `draws` records (the first as with one; each further one draws its
    distractors from the best 3k, their order and its oracle coin anew, and
    carries `draw`: 2, 3, ...) with `passages` passages: the oracle with
    probability `oracle_p`, else one more distractor (the answer then stays,
    without a citation, as in the RAFT recipe); distractors are the best
    passages for the question from other documents than the pair's. The answer is the pair's (`target:
    answer`) or the oracle's sentences that state it (`target: evidence`, the
    pair's answer where none does, or where a person wrote it: `answer_by_person`).
    For a `refusal_share` of the pairs, one more record shows distractors that do not hold the answer and answers
    REFUSAL. The passages are shown in the retriever's order for the question
    (`order: retrieved`) or shuffled (`order: shuffled`). Every record carries
    `kind` (oracle, no_oracle, refusal), the passage ids and the oracle's
    number."""
    k, target, order = params.passages, params.target, params.order
    by_chunk = {}
    for passage in retriever.passages:
        by_chunk.setdefault(passage["chunk_id"], []).append(passage)
    questions = [pair_prompt(p) for p in pairs]
    depth = min(len(retriever.passages), max(10 * k, 30))
    ranked = retriever.search(questions, depth) if pairs else []
    records = []
    for pair, hits in zip(pairs, ranked):
        rng = random.Random(f"raft:{seed}:{pair['id']}")
        arrange = _arranger(order, hits, k, rng)
        others = _distractors(pair, hits, retriever.passages, k, rng)
        oracle = oracle_passage(pair, by_chunk.get(pair.get("chunk_id"), []))
        # target evidence: the oracle's sentences that state the answer, unless a person wrote it
        by_person = pair.get("answer_by_person")
        stated = evidence(pair_response(pair), oracle["text"]) if oracle and target == "evidence" and not by_person \
            else None
        for draw in range(1, draws + 1):
            salt = "oracle" if draw == 1 else f"oracle{draw}"
            with_oracle = oracle is not None and stable_unit(salt, seed, pair["id"]) < params.oracle_p
            near = others[:3 * k]
            pool = others if draw == 1 else rng.sample(near, min(k, len(near)))
            shown = arrange(pool[:k - 1] + [oracle], oracle) if with_oracle else arrange(pool[:k])
            if with_oracle:
                n = shown.index(oracle) + 1
                quote = pair.get(QUOTE) if quote_in_text(pair.get(QUOTE) or "", oracle["text"]) else None
                answer = cite(stated, n) if stated else cite(pair_response(pair), n, quote)
            else:
                n, answer = None, stated
            record = to_messages(pair if draw == 1 else {**pair, "id": f"{pair['id']}~draw{draw}"}, system_prompt,
                                 shown, answer)
            record = _raft_fields(record, pair, shown, "oracle" if with_oracle else "no_oracle", n)
            records.append(record if draw == 1 else {**record, "draw": draw, "pair_id": pair["id"]})
        if stable_unit("refusal", seed, pair["id"]) < params.refusal_share:
            shown = _unrelated(pair, others, retriever.passages, k, rng)
            if not shown:  # every passage holds this answer: no refusal to teach
                continue
            shown = arrange(shown)
            refusal = to_messages({**pair, "id": f"{pair['id']}~refusal"}, system_prompt, shown, REFUSAL)
            records.append(_raft_fields(refusal, pair, shown, "refusal", None))
    return records


def _arranger(order, hits, k, rng):
    """How a record's passages are ordered, `arrange(shown, oracle=None)`: as
    the retriever ranked them for the question (`hits`; passages it did not rank
    after, as drawn), or shuffled with `rng`. In the retriever's order an oracle
    it would not have shown in its top k takes a random place: at answer time
    that passage is not there at all, so its place teaches nothing, and put last
    it would teach the model that the last passage answers."""
    if order == "shuffled":
        def shuffled(shown, oracle=None):
            rng.shuffle(shown)
            return shown
        return shuffled
    rank = {p["passage_id"]: i for i, p in enumerate(hits)}

    def retrieved(shown, oracle=None):
        ordered = sorted(shown, key=lambda p: rank.get(p["passage_id"], len(rank)))
        if oracle is not None and rank.get(oracle["passage_id"], math.inf) >= k:
            ordered.remove(oracle)
            ordered.insert(rng.randrange(len(ordered) + 1), oracle)
        return ordered
    return retrieved


def _distractors(pair, ranked, pool, k, rng):
    """At least k passages of other documents than the pair's: the retrieved
    ones in rank order, topped up at random from the index when the question
    matches fewer (BM25 returns only passages sharing a word with it)."""
    return _passages_where(lambda p: p["doc"] != pair["doc"], ranked, pool, k, rng, keep_all=True)


def _unrelated(pair, ranked, pool, k, rng):
    """k passages of other documents that do not hold the pair's answer."""
    answer = pair_response(pair)
    return _passages_where(lambda p: p["doc"] != pair["doc"] and grounding_score(answer, p["text"]) < 0.5,
                           ranked, pool, k, rng)


def _passages_where(accept, ranked, pool, k, rng, keep_all=False):
    """The accepted passages of `ranked` (the first k, or all with keep_all),
    topped up to k with accepted passages drawn at random from `pool`."""
    chosen = [p for p in ranked if accept(p)]
    chosen = chosen if keep_all else chosen[:k]
    if len(chosen) < k:
        seen = {p["passage_id"] for p in chosen}
        rest = [p for p in pool if p["passage_id"] not in seen and accept(p)]
        chosen += rng.sample(rest, min(k - len(chosen), len(rest)))
    return chosen


def _raft_fields(record, pair, shown, kind, oracle_n):
    return {**record, "kind": kind, "chunk_id": pair.get("chunk_id"), "doc": pair.get("doc"),
            "question": pair_prompt(pair), "passages": [p["passage_id"] for p in shown], "oracle": oracle_n}


def attach_chunks(pairs, retriever, min_grounding=0.5):
    """A person's pair has no chunk: give it the indexed passage that best states its answer
    (among the top 5 for its question and answer, within its `doc` when one was given), so a
    RAFT record shows it as the oracle and the answer cites it; left without one when no
    passage states at least `min_grounding` of the answer."""
    lonely = [i for i, p in enumerate(pairs) if not p.get("chunk_id")]
    if not lonely:
        return pairs
    hits = retriever.search([f"{pair_prompt(pairs[i])} {pair_response(pairs[i])}" for i in lonely], 5)
    pairs = list(pairs)
    for i, found in zip(lonely, hits):
        found = [h for h in found if not pairs[i].get("doc") or h["doc"] == pairs[i]["doc"]]
        best = max(found, key=lambda h: grounding_score(pair_response(pairs[i]), h["text"]), default=None)
        if best and grounding_score(pair_response(pairs[i]), best["text"]) >= min_grounding:
            pairs[i] = {**pairs[i], "chunk_id": best["chunk_id"], "doc": best["doc"]}
    return pairs
