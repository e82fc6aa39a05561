"""Deterministic train/val split by group, into chat `messages` records."""

import hashlib

from faqforge.records import pair_prompt, pair_response


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
    return {"messages": messages, "id": pair["id"], "group": pair.get("group")}


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
