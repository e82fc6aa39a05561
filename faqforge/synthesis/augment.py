"""Paraphrase augmentation: several phrasings of each question, and of its
answer when `augment.answers` is on.

Each variant carries `variant_of` (the original pair's id) and shares its
`group`, so the split keeps a pair and its paraphrases on the same side. A
rephrased answer is used only when it keeps every number, code span and
file-like token of the original; otherwise the variant keeps the original
answer and the rewrite is recorded as dropped.
"""

import re

from faqforge.core.records import dropped, normalise, pair_response, prompt_field, with_prompt, with_response
from faqforge.refinement.decontaminate import contamination
from faqforge.teacher.errors import teacher_error_record
from faqforge.teacher.few_shot import few_shot

_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.)]|[QA]\d*[:.])\s*")
# What a rephrased answer must keep: `code spans`, numbers, and tokens such as
# dvc.yaml, --force, max_tokens or data/docs.
_FACT = re.compile(r"`[^`]+`|\d+(?:[.,:]\d+)*|[\w-]*\w[./][\w./-]*\w|\w+_\w+|(?<![\w-])--?\w[\w-]*")


def paraphrase_messages(pair, params):
    """The chat asking for k rephrasings of one question, after the worked
    examples from params as earlier turns."""
    examples = [({"k": len(x.paraphrases), "question": x.question}, "\n".join(x.paraphrases))
                for x in params.examples]
    return few_shot(params.system_prompt, params.user_prompt, examples,
                    {"k": params.paraphrases, "question": pair[prompt_field(pair)]})


def answer_messages(pair, params):
    """The chat asking for k rephrasings of one answer, keeping its facts."""
    return few_shot(params.answer_system_prompt, params.answer_prompt, [],
                    {"k": params.paraphrases, "question": pair[prompt_field(pair)], "answer": pair_response(pair)})


def facts(text):
    """The tokens a rephrasing may not lose or change."""
    return set(_FACT.findall(text))


def parse_answers(reply, k):
    """Up to k answer lines from a reply, numbering and quotes stripped."""
    found = []
    for line in (reply or "").splitlines():
        line = _NUMBERING.sub("", line).strip().strip('"').strip()
        if len(line.split()) >= 3:
            found.append(line)
    return found[:k]


def example_questions(params):
    """Every question in the worked examples: a paraphrase equal to one is a copy."""
    return [q for example in params.examples for q in [example.question, *example.paraphrases]]


def parse_paraphrases(reply, k):
    """Up to k question lines from a reply, numbering and quotes stripped."""
    found = []
    for line in (reply or "").splitlines():
        line = _NUMBERING.sub("", line).strip().strip('"').strip()
        if line.endswith("?") and len(line) > 8:
            found.append(line)
    return found[:k]


def variants_of(pair, reply, k, copied_examples=(), answers_reply=None):
    """(variants, dropped) for one pair: exact copies of the original, of an
    earlier variant or of a worked example are dropped with a reason. With
    `answers_reply`, the n-th variant takes the n-th rephrased answer if it keeps
    the original's facts and is not a copy of it."""
    seen = {normalise(pair[prompt_field(pair)])}
    examples = {normalise(q) for q in copied_examples}
    answers = parse_answers(answers_reply, k) if answers_reply is not None else []
    original_facts = facts(pair_response(pair))
    variants, removed = [], []
    for n, question in enumerate(parse_paraphrases(reply, k)):
        record = {**with_prompt(pair, question), "id": f"{pair['id']}-p{n}",
                  "variant_of": pair["id"], "group": pair["group"]}
        key = normalise(question)
        if key in examples:
            removed.append(dropped(record, "augment", "copies a worked example from the prompt"))
            continue
        if key in seen:
            removed.append(dropped(record, "augment", "exact copy after normalisation"))
            continue
        seen.add(key)
        if n < len(answers):
            lost = sorted(original_facts - facts(answers[n]))
            if lost:
                removed.append(dropped({**with_response(record, answers[n]), "id": f"{record['id']}-answer"},
                                       "augment", "rephrased answer loses a fact",
                                       f"rephrased answer loses {', '.join(map(repr, lost[:3]))}; "
                                       "the variant keeps the original answer"))
            elif normalise(answers[n]) != normalise(pair_response(pair)):
                record = {**with_response(record, answers[n]), "answer_rephrased": True}
        variants.append(record)
    return variants, removed


def augment_pairs(teacher, pairs, params, pii, evalset, decontaminate):
    """The teacher's paraphrases of each pair's question (and with `answers` its
    answer) as new pairs, streamed: yields (pair, variants, dropped) for each pair
    of the iterable `pairs`, in order. A variant that copies the question, adds
    personal data the pair lacks (`pii.added_by`) or comes too close to the eval
    set (the `decontaminate` params) is dropped with its reason."""
    replies = teacher.map(pairs, lambda x: (paraphrase_messages(x, params), {"max_tokens": params.max_tokens}),
                          "augment")
    if params.answers:
        replies = teacher.map(replies, lambda x: (answer_messages(x[0], params),
                                                  {"max_tokens": params.answer_max_tokens}), "augment answers")
    else:
        replies = ((x, None) for x in replies)
    batch = []
    for (pair, reply), answer_reply in replies:
        batch.append((pair, *_variants(pair, reply, answer_reply, params, pii)))
        if len(batch) == DECONTAMINATE_BATCH:
            yield from _decontaminated(batch, evalset, decontaminate)
            batch = []
    yield from _decontaminated(batch, evalset, decontaminate)


DECONTAMINATE_BATCH = 512   # pairs whose variants are checked against the eval set together


def _variants(pair, reply, answer_reply, params, pii):
    if reply.get("error"):
        return [], [teacher_error_record(pair, "augment", reply)]
    removed = []
    if answer_reply is not None and answer_reply.get("error"):
        removed.append({**teacher_error_record(pair, "augment", answer_reply),
                        "why": f"answer rephrasing: teacher error {answer_reply['error']}"})
        answer_reply = None
    new, copies = variants_of(pair, reply["text"], params.paraphrases, example_questions(params),
                              answer_reply and answer_reply["text"])
    variants = []
    for variant in new:
        added = pii.added_by(pair, variant)
        if added:  # the teacher wrote personal data the pair does not have (redacted in the cache)
            copies.append(dropped(variant, "augment", "personal data",
                                  f"the rephrasing adds {', '.join(added)} (hygiene.pii: drop)"))
        else:
            variants.append(variant)
    return variants, removed + copies


def _decontaminated(batch, evalset, decontaminate):
    _, leaked = contamination([v for _, variants, _ in batch for v in variants], evalset, decontaminate)
    leaked = {x["id"]: {**x, "dropped_by": "augment"} for x in leaked}
    for pair, variants, removed in batch:
        yield (pair, [v for v in variants if v["id"] not in leaked],
               removed + [leaked[v["id"]] for v in variants if v["id"] in leaked])
