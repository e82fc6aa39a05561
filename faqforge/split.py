"""Deterministic train/val split by group, source mixing, and chat `messages` records."""

import hashlib
import math
from pathlib import PurePosixPath

from faqforge.io import PipelineError
from faqforge.records import dropped, pair_prompt, pair_response

DOCS = "data/docs"
TOP_SOURCE = "docs"  # the source of documents directly in data/docs/


def split_key(pair, by):
    """What must stay together: the paraphrase/duplicate group, or the document."""
    if by == "doc":
        return pair["doc"]
    return pair.get("group") or pair.get("cluster") or pair["id"]


def in_validation(key, val_fraction, seed):
    """A stable coin flip per key: the same key always lands on the same side."""
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def question_messages(question, system_prompt):
    """The chat a user question becomes: the same for training, evaluation and chat."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return system + [{"role": "user", "content": question}]


def to_messages(pair, system_prompt):
    messages = question_messages(pair_prompt(pair), system_prompt) + [
        {"role": "assistant", "content": pair_response(pair)}]
    record = {"messages": messages, "id": pair["id"], "group": pair.get("group")}
    if "copy_of" in pair:
        record["copy_of"] = pair["copy_of"]
    return record


def source_of(doc):
    """A document's source: its sub-folder of data/docs/ (the first one), or
    "docs" for a file directly in data/docs/."""
    path = PurePosixPath(doc)
    parts = path.relative_to(DOCS).parts if path.is_relative_to(DOCS) else path.parts
    return parts[0] if len(parts) > 1 else TOP_SOURCE


def mix_settings(mix, sources):
    """split.mix as {source: (weight, max_pairs)}: a number is a weight; a
    mapping may give `weight` and `max_pairs`. Unknown sources are errors."""
    settings = {}
    for source, value in (mix or {}).items():
        if source not in sources:
            raise PipelineError(f"params.yaml: split.mix: no source {source!r}; the sources (sub-folders of "
                                f"data/docs/, and {TOP_SOURCE!r} for files directly in it) are: "
                                f"{', '.join(sorted(sources))}")
        value = value if isinstance(value, dict) else {"weight": value}
        weight, cap = value.get("weight", 1), value.get("max_pairs")
        if not isinstance(weight, (int, float)) or weight < 0 or (cap is not None and (not isinstance(cap, int)
                                                                                      or cap < 0)):
            raise PipelineError(f"params.yaml: split.mix.{source}: weight must be a number >= 0 and max_pairs "
                                f"an integer >= 0 or null, got {value!r}")
        settings[source] = (float(weight), cap)
    return settings


def _rank(seed, key):
    return int.from_bytes(hashlib.sha256(f"mix:{seed}:{key}".encode("utf-8")).digest()[:8], "big") / 2**64


def mix_sources(train, mix, seed, by="group"):
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
        ranked = sorted(groups, key=lambda key: _rank(seed, key))
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


def split_pairs(pairs, val_fraction, seed, by="group"):
    """(train, val) lists of pairs. With at least two keys, val is never empty
    and train is never empty: the smallest-hash key moves if needed."""
    keys = sorted({split_key(p, by) for p in pairs})
    val_keys = {k for k in keys if in_validation(k, val_fraction, seed)}
    if len(keys) >= 2 and val_fraction > 0:
        ranked = sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).digest())
        if not val_keys:
            val_keys = {ranked[0]}
        elif len(val_keys) == len(keys):
            val_keys.discard(ranked[-1])
    train = [p for p in pairs if split_key(p, by) not in val_keys]
    val = [p for p in pairs if split_key(p, by) in val_keys]
    return train, val
