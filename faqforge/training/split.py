"""Deterministic train/val split by group, source mixing, and chat `messages` records.

With `split.context: raft` each record's user turn also holds retrieved
passages (retrieval-augmented fine-tuning, RAFT): the passage of the pair's own
chunk that holds its answer (the oracle, kept with probability `oracle_p`) and
hard distractors, the best passages of other documents for the question, in
the order the retriever ranks them for the question (`order: retrieved`, as at
answer time) or shuffled (`order: shuffled`, as in the RAFT recipe); the answer
cites the oracle's number (and with a quoted pair, generate.answer_style
quoted, starts with the quote: `"..." [2] answer`). With
`split.raft.target: evidence` the answer is instead the oracle's own sentences
that support the pair's answer, copied verbatim (`evidence`). A share of extra
records shows distractors only and answers that the documents do not say.
"""

import math
import random
import re
from pathlib import PurePosixPath

from faqforge.core.chat_format import REFUSAL, cite, question_messages
from faqforge.core.io import PipelineError
from faqforge.core.records import (
    QUOTE,
    content_words,
    dropped,
    grounding_score,
    pair_prompt,
    pair_response,
    quote_in_text,
    stable_unit,
)
from faqforge.core.review import REVIEW_FILE

DOCS = "data/docs"
TOP_SOURCE = "docs"  # the source of documents directly in data/docs/


def split_key(pair, by):
    """What must stay together: the paraphrase/duplicate group, or the document."""
    if by == "doc":
        return pair["doc"]
    return pair.get("group") or pair.get("cluster") or pair["id"]


def in_validation(key, val_fraction, seed):
    """A stable coin flip per key: the same key always lands on the same side."""
    return stable_unit(seed, key) < val_fraction


def to_messages(pair, system_prompt, passages=None, answer=None):
    """A training record: the pair's chat, closed book or with `passages`, answering
    `answer` (default: the pair's own answer)."""
    messages = question_messages(pair_prompt(pair), system_prompt, passages) + [
        {"role": "assistant", "content": pair_response(pair) if answer is None else answer}]
    record = {"messages": messages, "id": pair["id"], "group": pair.get("group")}
    if "copy_of" in pair:
        record["copy_of"] = pair["copy_of"]
    return record


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


def source_of(doc):
    """A document's source: its sub-folder of data/docs/ (the first one), or
    "docs" for a file directly in data/docs/; "review" for the pairs people
    wrote in the review without naming a document (their doc: data/review.jsonl)."""
    if doc == REVIEW_FILE:
        return "review"
    path = PurePosixPath(doc)
    parts = path.relative_to(DOCS).parts if path.is_relative_to(DOCS) else path.parts
    return parts[0] if len(parts) > 1 else TOP_SOURCE


def mix_settings(mix, sources):
    """split.mix (the section's value) as {source: (weight, max_pairs)}: a number
    is a weight, a SourceMix gives both. A source the data does not have is an error."""
    settings = {}
    for source, value in mix.items():
        if source not in sources:
            raise PipelineError(f"params.yaml: split.mix: no source {source!r}; the sources (sub-folders of "
                                f"data/docs/, and {TOP_SOURCE!r} for files directly in it) are: "
                                f"{', '.join(sorted(sources))}")
        settings[source] = ((float(value), None) if isinstance(value, (int, float))
                            else (float(value.weight), value.max_pairs))
    return settings


def mix_sources(train, mix, seed, by):
    """Re-weight the training pairs by source: (mixed, dropped, table).

    A weight w repeats every group of the source floor(w) times and, ranked by
    a stable hash, the first (w - floor(w)) share of its groups once more (0.5
    keeps half, 2 doubles, 1.5 doubles half); `max_pairs` then caps the
    source, dropping the lowest-ranked groups. Groups move whole, copies get
    ids `<id>~<k>` and `copy_of`. `table`: {source: {pairs_before, weight,
    max_pairs, pairs_after}} for the report."""
    by_source = {}
    for pair in train:
        by_source.setdefault(source_of(pair["doc"]), []).append(pair)
    settings = mix_settings(mix, by_source)
    mixed, removed, table = [], [], {}
    for source, pairs in sorted(by_source.items()):
        weight, cap = settings.get(source, (1.0, None))
        groups = {}
        for pair in pairs:
            groups.setdefault(split_key(pair, by), []).append(pair)
        ranked = sorted(groups, key=lambda key: stable_unit("mix", seed, key))
        whole, extra = int(math.floor(weight)), weight - math.floor(weight)
        chosen = []  # (group key, copy number)
        for copy in range(whole):
            chosen += [(key, copy) for key in ranked]
        chosen += [(key, whole) for key in ranked[:round(extra * len(ranked))]]
        out = []
        for key, copy in chosen:
            group_pairs = groups[key]
            if cap is not None and len(out) + len(group_pairs) > cap:
                break
            out += [p if copy == 0 else {**p, "id": f"{p['id']}~{copy + 1}", "copy_of": p["id"]}
                    for p in group_pairs]
        kept_originals = {p["id"] for p in out if "copy_of" not in p}
        removed += [dropped(p, "split", "mix: down-weighted",
                            f"source {source!r} has split.mix weight {weight:g}"
                            + (f", max_pairs {cap}" if cap is not None else "") + f": {len(pairs)} pairs -> {len(out)}")
                    for p in pairs if p["id"] not in kept_originals]
        mixed += out
        table[source] = {"pairs_before": len(pairs), "weight": weight, "max_pairs": cap, "pairs_after": len(out)}
    return mixed, removed, table


def split_pairs(pairs, val_fraction, seed, by):
    """(train, val) lists of pairs. With at least two keys, val is never empty
    and train is never empty: the smallest-hash key moves if needed."""
    keys = sorted({split_key(p, by) for p in pairs})
    val_keys = {k for k in keys if in_validation(k, val_fraction, seed)}
    if len(keys) >= 2 and val_fraction > 0:
        ranked = sorted(keys, key=lambda k: stable_unit(seed, k))
        if not val_keys:
            val_keys = {ranked[0]}
        elif len(val_keys) == len(keys):
            val_keys.discard(ranked[-1])
    train = [p for p in pairs if split_key(p, by) not in val_keys]
    val = [p for p in pairs if split_key(p, by) in val_keys]
    return train, val
