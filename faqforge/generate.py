"""Self-instruct: the teacher writes question/answer pairs from each chunk."""

import json
import re

_OBJECT = re.compile(r"\{[^{}]*\}", re.S)
_QA_LINES = re.compile(r"(?:^|\n)\s*(?:\d+[.)]\s*)?Q(?:uestion)?\s*[:.]\s*(.+?)\s*\n\s*A(?:nswer)?\s*[:.]\s*(.+?)(?=\n\s*(?:\d+[.)]\s*)?Q(?:uestion)?\s*[:.]|\Z)",
                       re.S | re.I)


def questions_for(n_tokens, tokens_per_question, min_questions, max_questions):
    """How many questions to ask of a chunk: proportional to its length, bounded."""
    return max(min_questions, min(max_questions, round(n_tokens / tokens_per_question)))


def generation_messages(chunk, params, total_questions):
    """The chat messages asking for `total_questions` pairs about one chunk.
    The chunk text only ever goes in the user message, between delimiters."""
    fields = {"total_questions": total_questions, "language": params["language"],
              "domain": params["domain"]}
    return [
        {"role": "system", "content": params["system_prompt"].format(**fields).strip()},
        {"role": "user", "content": params["user_prompt"].format(**fields, text=chunk["text"]).strip()},
    ]


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
    prose or code fences or cut off mid-array (the complete objects are kept),
    and falls back to "Q: ... A: ..." lines. Returns [] when nothing parses.
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
    pairs = []
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


def pairs_from_reply(chunk, reply, max_pairs):
    """QA records for one chunk, with provenance; at most `max_pairs`."""
    pairs = parse_pairs(reply)[:max_pairs]
    return [{"id": f"{chunk['chunk_id']}-{k}", "chunk_id": chunk["chunk_id"], "doc": chunk["doc"],
             "question": p["question"], "answer": p["answer"]} for k, p in enumerate(pairs)]
