"""Deterministic train/val split by group, the source mix, and chat `messages`
records (the RAFT records that show retrieved passages: faqforge.dataset.raft).
"""

import math
from pathlib import PurePosixPath

from faqforge.core.chat_format import question_messages
from faqforge.core.io import PipelineError
from faqforge.core.records import dropped, pair_prompt, pair_response, stable_unit
from faqforge.dataset.decisions import REVIEW_FILE

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
