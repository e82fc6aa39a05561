"""Self-curation: rule filters, a grounding score and the teacher as judge.

A pair is kept when it passes every rule, enough of its answer is grounded in
its chunk, and (when the judge is on) the teacher says YES with a high enough
score. Every rejected pair is kept in the drop file with its reason.
"""

import re

from faqforge.core.records import (
    QUOTE,
    TEXT_FIELDS,
    WORD,
    dropped,
    grounding_score,
    inside_quotes,
    normalise,
    pair_prompt,
    pair_response,
    quote_in_text,
)
from faqforge.teacher.errors import teacher_error_record
from faqforge.teacher.few_shot import few_shot
from faqforge.teacher.verdict import parse_verdict


def repeated_run(text, n):
    """The first run of `n` words that occurs twice in `text` (a small teacher
    looping: "The file is named x. The file is named x."), or None; n = 0 is off."""
    if not n:
        return None
    words = WORD.findall(text.lower())
    seen = set()
    for i in range(len(words) - n + 1):
        run = tuple(words[i:i + n])
        if run in seen:
            return " ".join(run)
        seen.add(run)
    return None


def rule_violation(pair, rules):
    """The first rule (the curate.rules part) a pair breaks as (reason code, details), or None."""
    q, a = pair_prompt(pair), pair_response(pair)
    if not q.strip() or not a.strip():
        return "empty question or answer", None
    for code, text, low, high in (("question", q, rules.min_question_chars, rules.max_question_chars),
                                  ("answer", a, rules.min_answer_chars, rules.max_answer_chars)):
        if len(text) < low:
            return f"{code} too short", f"{len(text)} characters, fewer than {low}"
        if len(text) > high:
            return f"{code} too long", f"{len(text)} characters, more than {high}"
    if rules.require_question_mark and "instruction" not in pair and not q.rstrip().endswith("?"):
        return "question does not end with a question mark", None
    if normalise(q) in normalise(a):
        return "answer repeats the question", None
    for name, text in (("question", q), ("answer", a)):
        run = repeated_run(text, rules.repeated_words)
        if run:
            return f"{name} repeats itself", f"'{run}' occurs more than once"
    for pattern in rules.reject_patterns:
        for name, text in (("question", q), ("answer", a)):
            if re.search(pattern, text, re.I):
                return f"{name} refers to a text the user cannot see", f"matches {pattern!r}"
    return None


def quote_violation(pair, chunk_text):
    """(reason code, details) when a quoted pair's quote is not its chunk's (answer_style
    quoted), else None: the quote must occur in the chunk word for word, so this needs no judge."""
    if QUOTE not in pair or quote_in_text(pair[QUOTE], chunk_text):
        return None
    shown = " ".join(pair[QUOTE].split())
    return "quote not in its chunk", f"'{shown[:80]}{'...' if len(shown) > 80 else ''}' does not occur there"


def judge_messages(pair, chunk_text, params):
    """The chat asking the teacher to judge one pair against its chunk, after
    the worked examples from params as earlier turns."""
    examples = [({"text": x.text, "question": x.question, "answer": x.answer}, x.reply) for x in params.examples]
    return few_shot(params.system_prompt, params.user_prompt, examples,
                    {"text": inside_quotes(chunk_text), "question": pair_prompt(pair), "answer": pair_response(pair)})


def judge_keeps(verdict, params):
    """Whether the judge's verdict keeps the pair; unparsable verdicts follow params.
    With `min_p_yes` set and logprobs available, P(YES) alone decides: it is a far
    steadier signal than the words a small judge writes."""
    if params.min_p_yes is not None and verdict.get("p_yes") is not None:
        return verdict["p_yes"] >= params.min_p_yes
    if verdict["result"] is None:
        return params.on_unparsed == "keep"
    if verdict["result"] != "YES":
        return False
    return verdict["score"] is None or verdict["score"] >= params.min_score


def check_pair(pair, chunk_text, hygiene, params):
    """Hygiene, then the rules, the quote check and the grounding score, on one
    pair against its chunk's text. Returns (pair, pii_rows, dropped record or
    None); a pair that passes carries its `grounding`."""
    fields, rows, drop = hygiene.check({k: pair[k] for k in TEXT_FIELDS if k in pair},
                                       {"id": pair["id"], "chunk_id": pair["chunk_id"], "doc": pair["doc"]})
    pair.update(fields)
    if drop is None:
        pair["grounding"] = round(grounding_score(pair_response(pair), chunk_text), 3)
        broken = rule_violation(pair, params.rules) or quote_violation(pair, chunk_text)
        if broken:
            drop = {"reason": broken[0], "why": broken[1]}
        elif pair["grounding"] < params.min_grounding:
            drop = {"reason": "low grounding", "why": f"grounding {pair['grounding']} < min_grounding "
                                                      f"{params.min_grounding}"}
    return pair, rows, dropped(pair, "curate", **drop) if drop else None


def judge_request(pair, chunk_text, params):
    """(messages, options) of the judge's request for one pair (Teacher.map's form)."""
    return judge_messages(pair, chunk_text, params), {"max_tokens": params.max_tokens,
                                                      "top_logprobs": params.top_logprobs}


def judged_out(pair, reply, params):
    """None when the judge's reply keeps the pair (its verdict stored under
    `judge`), else the dropped record with the reason."""
    if reply.get("error"):
        return teacher_error_record(pair, "curate", reply)
    verdict = pair["judge"] = parse_verdict(reply["text"], reply.get("logprobs"))
    if judge_keeps(verdict, params):
        return None
    kind = {"YES": "judge score below min_score", "NO": "judge NO"}.get(verdict["result"], "judge unparsed")
    if verdict["p_yes"] is not None and params.min_p_yes is not None:
        kind = "judge p_yes or score too low"
    return dropped(pair, "curate", kind, f"{kind} (verdict {verdict['result']}, score "
                                         f"{verdict['score']}, p_yes {verdict['p_yes']})")
