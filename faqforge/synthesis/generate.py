"""Self-instruct: the teacher writes question/answer pairs from each chunk.

Records are Q&A pairs or instruction triples (`generate.format`, see
faqforge.core.records). A JSON schema sent as response_format keeps servers with
guided decoding on the format; `parse_pairs` reads what the others write.
"""

import json
import re

from faqforge.core.io import PipelineError
from faqforge.core.records import FIELDS, OPTIONAL, QUOTE, dropped, inside_quotes, normalise, pair_prompt, record_fields
from faqforge.teacher.few_shot import few_shot

_OBJECT = re.compile(r"\{[^{}]*\}", re.S)
_STRING = r'"((?:[^"\\]|\\.)*)"'
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_QUESTION_LABEL = r"\n\s*(?:\d+[.)]\s*)?Q(?:uestion)?\s*[:.]"   # "Q:", "2. Question." ...
_QA_LINES = re.compile(rf"(?:^|\n)\s*(?:\d+[.)]\s*)?Q(?:uestion)?\s*[:.]\s*(.+?)\s*\n\s*A(?:nswer)?\s*[:.]\s*(.+?)"
                       rf"(?={_QUESTION_LABEL}|\Z)", re.S | re.I)


def questions_for(n_tokens, tokens_per_question, min_questions, max_questions):
    """How many questions to ask of a chunk: proportional to its length, bounded."""
    return max(min_questions, min(max_questions, round(n_tokens / tokens_per_question)))


def questions_wanted(chunk, params):
    """How many questions generate asks of `chunk` with the generate params."""
    return questions_for(chunk["n_tokens"], params.tokens_per_question, params.min_questions,
                         params.max_questions)


def generation_request(chunk, params):
    """(messages, options) of the teacher request for one chunk (Teacher.map's form)."""
    n = questions_wanted(chunk, params)
    return generation_messages(chunk, params, n), {
        "response_format": response_format(n, params) if params.json_schema else None,
        "max_tokens": params.max_tokens}


def field_order(params):
    """The order the teacher writes a record's fields in. Answer first makes a
    small teacher copy a sentence of the chunk and then ask for it, which keeps
    answers grounded; a strong teacher does well either way. A quote (answer_style
    quoted) comes right before the answer it supports."""
    fields = record_fields(params)
    if params.format != "qa":
        return fields
    if params.answer_first:
        return tuple(name for name in (QUOTE, "answer", "question") if name in fields)
    return tuple(name for name in ("question", QUOTE, "answer") if name in fields)


def pairs_schema(total_questions, params):
    """The JSON schema of a reply holding exactly `total_questions` records,
    sent as response_format so that servers with guided decoding (vLLM,
    llama.cpp, the local backend) can only write valid JSON."""
    limits = params.max_chars
    properties = {}
    for name in field_order(params):
        properties[name] = {"type": "string", "maxLength": int(limits.get(name, 400))}
        if name in ("question", "instruction") and params.format == "qa":
            properties[name]["pattern"] = "^[^?]*[?]$"
    return {"type": "array", "minItems": total_questions, "maxItems": total_questions,
            "items": {"type": "object", "properties": properties, "required": list(properties),
                      "additionalProperties": False}}


def response_format(total_questions, params):
    return {"type": "json_schema",
            "json_schema": {"name": "faq_pairs", "strict": True, "schema": pairs_schema(total_questions, params)}}


def generation_messages(chunk, params, total_questions):
    """The chat asking for `total_questions` records about one chunk.

    The worked examples from params come first as earlier user/assistant turns
    (few-shot): small teachers follow the format that way, and copy the example
    far less than when it sits inside the instruction. The chunk text only ever
    goes in the last user message, between delimiters.
    """
    fields = {"language": params.language, "domain": params.domain}
    order = field_order(params)
    examples = []
    for k, example in enumerate(params.examples):
        for record in example.pairs:
            missing = [name for name in order if name not in record and name not in OPTIONAL]
            if missing:
                raise PipelineError(f"prompts.yaml: generate.examples[{k}] has a pair without {', '.join(missing)}; "
                                    f"with generate.format {params.format} every pair needs {', '.join(order)}.")
        records = [{name: record.get(name, "") for name in order} for record in example.pairs]
        examples.append(({**fields, "total_questions": len(records), "text": example.text},
                         json.dumps(records, ensure_ascii=False)))
    messages = few_shot(params.system_prompt.format(**fields), params.user_prompt, examples,
                        {**fields, "total_questions": total_questions, "text": inside_quotes(chunk["text"])})
    if QUOTE in order:
        for message in messages[1::2]:
            message["content"] += "\n\n" + params.quote_instruction.strip()
    return messages


def _unescape(text):
    """A JSON string body as text; a malformed escape is kept as written."""
    try:
        return json.loads(f'"{text}"')
    except json.JSONDecodeError:
        return text


def _record(obj, fields):
    if not isinstance(obj, dict):
        return None
    record = {}
    for name in fields:
        value = obj.get(name, "" if name in OPTIONAL else None)
        if not isinstance(value, str) or (not value.strip() and name not in OPTIONAL):
            return None
        record[name] = value.strip()
    return record


def _loads(text):
    """json.loads, forgiving trailing commas."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(_TRAILING_COMMA.sub(r"\1", text))


def _salvage_fields(reply, fields):
    """Records from `"field": "value"` runs in text that is not valid JSON (cut
    off, unbalanced): fields are collected in order, a repeated field starts the
    next record."""
    pattern = re.compile(r'"(' + "|".join(map(re.escape, fields)) + r')"\s*:\s*' + _STRING)
    records, current = [], {}
    for name, value in pattern.findall(reply):
        if name in current:
            records.append(current)
            current = {}
        current[name] = _unescape(value)
    records.append(current)
    return records


def parse_pairs(reply, fields=FIELDS["qa"]):
    """Records with `fields` from a teacher reply.

    Accepts a JSON array of objects, also when wrapped in prose or code fences,
    with trailing commas, as a single object instead of an array, cut off
    mid-array (the complete records are kept) or padded with extra keys, and
    falls back to "Q: ... A: ..." lines for question/answer pairs.
    Returns [] when nothing parses.
    """
    candidates = []
    for start_char, end_char in (("[", "]"), ("{", "}")):
        start, end = reply.find(start_char), reply.rfind(end_char)
        if not 0 <= start < end:
            continue
        try:
            items = _loads(reply[start:end + 1])
        except json.JSONDecodeError:
            continue
        if isinstance(items, dict):
            nested = [v for v in items.values() if isinstance(v, list)]
            items = nested[0] if len(nested) == 1 and _record(items, fields) is None else [items]
        candidates.append([r for r in (_record(item, fields) for item in items if isinstance(items, list)) if r])
    candidates.append([r for r in (_record(obj, fields) for obj in _salvage_fields(reply, fields)) if r])
    objects = []
    for match in _OBJECT.finditer(reply):
        try:
            objects.append(_record(_loads(match.group(0)), fields))
        except json.JSONDecodeError:
            continue
    candidates.append([r for r in objects if r])
    if tuple(fields) == FIELDS["qa"]:
        candidates.append([{"question": q.strip(), "answer": a.strip()} for q, a in _QA_LINES.findall(reply)])
    # The reading that finds the most records wins; on a tie, the strictest one.
    return max(candidates, key=len)


LEAK_WORDS = 6  # a run this long shared with the instructions (and not in the chunk) is a leak


def word_runs(text, n=LEAK_WORDS):
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def pairs_from_reply(chunk, reply, max_pairs, example_questions=(), fields=FIELDS["qa"], instructions=""):
    """(pairs, copies) for one chunk: records with provenance, at most
    `max_pairs`, and the ones dropped for copying the prompt: a worked
    example's question, or a run of LEAK_WORDS words from `instructions`
    (everything the teacher was told except the chunk) that the chunk does not
    contain, as a teacher obeying a document's "print your instructions" does."""
    examples = {normalise(q) for q in example_questions}
    told = word_runs(instructions) - word_runs(chunk["text"]) if instructions else set()
    pairs, copies = [], []
    for k, p in enumerate(parse_pairs(reply, fields)[:max_pairs]):
        record = {"id": f"{chunk['chunk_id']}-{k}", "chunk_id": chunk["chunk_id"], "doc": chunk["doc"],
                  **{name: p[name] for name in fields}}
        leaked = sorted(told & word_runs(" ".join(record[name] for name in fields)))
        if normalise(pair_prompt(record)) in examples:
            copies.append(dropped(record, "generate", "copies a worked example from the prompt"))
        elif leaked:
            copies.append(dropped(record, "generate", "repeats the teacher's instructions",
                                  f"repeats the teacher's instructions ('{leaked[0]}'), which the chunk does "
                                  f"not contain"))
        else:
            pairs.append(record)
    return pairs, copies
