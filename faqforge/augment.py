"""Paraphrase augmentation: several phrasings of each question, same answer.

Each variant carries `variant_of` (the original pair's id) and shares its
`group`, so the split keeps a pair and its paraphrases on the same side.
"""

import re

from faqforge.dedup import normalise
from faqforge.records import prompt_field, with_prompt

_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.)]|Q\d*[:.])\s*")


def paraphrase_messages(pair, params):
    """The chat asking for k rephrasings of one question, after the worked
    examples from params as earlier turns."""
    messages = [{"role": "system", "content": params["system_prompt"].strip()}]
    for example in params["examples"]:
        messages += [
            {"role": "user", "content": params["user_prompt"].format(
                k=len(example["paraphrases"]), question=example["question"]).strip()},
            {"role": "assistant", "content": "\n".join(example["paraphrases"])},
        ]
    messages.append({"role": "user", "content": params["user_prompt"].format(
        k=params["paraphrases"], question=pair[prompt_field(pair)]).strip()})
    return messages


def example_questions(params):
    """Every question in the worked examples: a paraphrase equal to one is a copy."""
    return [q for example in params["examples"] for q in [example["question"], *example["paraphrases"]]]


def parse_paraphrases(reply, k):
    """Up to k question lines from a reply, numbering and quotes stripped."""
    found = []
    for line in (reply or "").splitlines():
        line = _NUMBERING.sub("", line).strip().strip('"').strip()
        if line.endswith("?") and len(line) > 8:
            found.append(line)
    return found[:k]


def variants_of(pair, reply, k, copied_examples=()):
    """(variants, dropped) for one pair: exact copies of the original, of an
    earlier variant or of a worked example are dropped with a reason."""
    seen = {normalise(pair[prompt_field(pair)])}
    examples = {normalise(q) for q in copied_examples}
    variants, dropped = [], []
    for n, question in enumerate(parse_paraphrases(reply, k)):
        record = {**with_prompt(pair, question), "id": f"{pair['id']}-p{n}",
                  "variant_of": pair["id"], "group": pair["group"]}
        key = normalise(question)
        if key in examples:
            dropped.append({**record, "dropped_by": "augment", "why": "copies a worked example from the prompt"})
        elif key in seen:
            dropped.append({**record, "dropped_by": "augment", "why": "exact copy after normalisation"})
        else:
            seen.add(key)
            variants.append(record)
    return variants, dropped
