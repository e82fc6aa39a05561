"""Self-instruct: the teacher writes question/answer pairs from each chunk."""

import json
import re

from faqforge.dedup import normalise

_OBJECT = re.compile(r"\{[^{}]*\}", re.S)
# "question": "...", "answer": "..." even inside a cut-off array or next to extra keys
_STRING = r'"((?:[^"\\]|\\.)*)"'
_KEY_VALUES = re.compile(r'"question"\s*:\s*' + _STRING + r'\s*,\s*"answer"\s*:\s*' + _STRING)
_QA_LINES = re.compile(r"(?:^|\n)\s*(?:\d+[.)]\s*)?Q(?:uestion)?\s*[:.]\s*(.+?)\s*\n\s*A(?:nswer)?\s*[:.]\s*(.+?)(?=\n\s*(?:\d+[.)]\s*)?Q(?:uestion)?\s*[:.]|\Z)",
                       re.S | re.I)


def questions_for(n_tokens, tokens_per_question, min_questions, max_questions):
    """How many questions to ask of a chunk: proportional to its length, bounded."""
    return max(min_questions, min(max_questions, round(n_tokens / tokens_per_question)))


def generation_messages(chunk, params, total_questions):
    """The chat asking for `total_questions` pairs about one chunk.

    The worked examples from params come first as earlier user/assistant turns
    (few-shot): small teachers follow the format that way, and copy the example
    far less than when it sits inside the instruction. The chunk text only ever
    goes in the last user message, between delimiters.
    """
    fields = {"language": params["language"], "domain": params["domain"]}
    messages = [{"role": "system", "content": params["system_prompt"].format(**fields).strip()}]
    for example in params["examples"]:
        messages += [
            {"role": "user", "content": params["user_prompt"].format(
                **fields, total_questions=len(example["pairs"]), text=example["text"]).strip()},
            {"role": "assistant", "content": json.dumps(example["pairs"], ensure_ascii=False)},
        ]
    messages.append({"role": "user", "content": params["user_prompt"].format(
        **fields, total_questions=total_questions, text=chunk["text"]).strip()})
    return messages


def _unescape(text):
    """A JSON string body as text; a malformed escape is kept as written."""
    try:
        return json.loads(f'"{text}"')
    except json.JSONDecodeError:
        return text


def _pair(obj):
    if not isinstance(obj, dict):
        return None
    q, a = obj.get("question"), obj.get("answer")
    if isinstance(q, str) and isinstance(a, str) and q.strip() and a.strip():
        return {"question": q.strip(), "answer": a.strip()}
    return None


def parse_pairs(reply):
    """Question/answer pairs from a teacher reply.

    Accepts a JSON array of {"question", "answer"} objects, also when wrapped in
    prose or code fences, cut off mid-array (the complete pairs are kept) or
    padded with extra keys, and falls back to "Q: ... A: ..." lines.
    Returns [] when nothing parses.
    """
    start, end = reply.find("["), reply.rfind("]")
    if 0 <= start < end:
        try:
            items = json.loads(reply[start:end + 1])
            pairs = [p for p in map(_pair, items if isinstance(items, list) else []) if p]
            if pairs:
                return pairs
        except json.JSONDecodeError:
            pass
    pairs = [p for p in (_pair({"question": _unescape(q), "answer": _unescape(a)})
                         for q, a in _KEY_VALUES.findall(reply)) if p]
    if pairs:
        return pairs
    for match in _OBJECT.finditer(reply):
        try:
            pair = _pair(json.loads(match.group(0)))
        except json.JSONDecodeError:
            continue
        if pair:
            pairs.append(pair)
    if pairs:
        return pairs
    return [{"question": q.strip(), "answer": a.strip()} for q, a in _QA_LINES.findall(reply)]


def pairs_from_reply(chunk, reply, max_pairs, example_questions=()):
    """(pairs, copies) for one chunk: QA records with provenance, at most
    `max_pairs`, and the ones that copy a worked example's question."""
    examples = {normalise(q) for q in example_questions}
    pairs, copies = [], []
    for k, p in enumerate(parse_pairs(reply)[:max_pairs]):
        record = {"id": f"{chunk['chunk_id']}-{k}", "chunk_id": chunk["chunk_id"], "doc": chunk["doc"],
                  "question": p["question"], "answer": p["answer"]}
        if normalise(p["question"]) in examples:
            copies.append({**record, "dropped_by": "generate", "why": "copies a worked example from the prompt"})
        else:
            pairs.append(record)
    return pairs, copies
