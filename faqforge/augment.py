"""Paraphrase augmentation: several phrasings of each question, same answer.

Each variant carries `variant_of` (the original pair's id) and shares its
`group`, so the split keeps a pair and its paraphrases on the same side.
"""

import re

from faqforge.dedup import normalise

_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.)]|Q\d*[:.])\s*")


def paraphrase_messages(pair, params):
    fields = {"k": params["paraphrases"], "question": pair["question"]}
    return [{"role": "system", "content": params["system_prompt"].format(**fields).strip()},
            {"role": "user", "content": params["user_prompt"].format(**fields).strip()}]


def parse_paraphrases(reply, k):
    """Up to k question lines from a reply, numbering and quotes stripped."""
    found = []
    for line in (reply or "").splitlines():
        line = _NUMBERING.sub("", line).strip().strip('"').strip()
        if line.endswith("?") and len(line) > 8:
            found.append(line)
    return found[:k]


def variants_of(pair, reply, k):
    """(variants, dropped) for one pair: exact copies of the original or of an
    earlier variant are dropped with a reason."""
    seen = {normalise(pair["question"])}
    variants, dropped = [], []
    for n, question in enumerate(parse_paraphrases(reply, k)):
        record = {**pair, "id": f"{pair['id']}-p{n}", "question": question,
                  "variant_of": pair["id"], "group": pair["group"]}
        key = normalise(question)
        if key in seen:
            dropped.append({**record, "dropped_by": "augment", "why": "exact copy after normalisation"})
        else:
            seen.add(key)
            variants.append(record)
    return variants, dropped
