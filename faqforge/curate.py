"""Self-curation: rule filters, a grounding score and the teacher as judge.

A pair is kept when it passes every rule, enough of its answer is grounded in
its chunk, and (when the judge is on) the teacher says YES with a high enough
score. Every rejected pair is kept in the drop file with its reason.
"""

import math
import re

from faqforge.records import inside_quotes, normalise, pair_prompt, pair_response

_WORD = re.compile(r"\w+", re.U)
STOPWORDS = frozenset("""a an and are as at be by can do does for from has have how i if in into is it its
of on or so that the their then there these this to was we what when where which who why will with you
your""".split())


def content_words(text):
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS}


def grounding_score(answer, source):
    """Fraction of the answer's content words that appear in the source chunk."""
    words = content_words(answer)
    if not words:
        return 0.0
    return len(words & content_words(source)) / len(words)


def repeated_run(text, n):
    """The first run of `n` words that occurs twice in `text` (a small teacher
    looping: "The file is named x. The file is named x."), or None; n = 0 is off."""
    if not n:
        return None
    words = _WORD.findall(text.lower())
    seen = set()
    for i in range(len(words) - n + 1):
        run = tuple(words[i:i + n])
        if run in seen:
            return " ".join(run)
        seen.add(run)
    return None


def rule_violation(pair, rules):
    """The first rule a pair breaks, as a reason string, or None."""
    q, a = pair_prompt(pair), pair_response(pair)
    if not q.strip() or not a.strip():
        return "empty question or answer"
    if len(q) < rules["min_question_chars"]:
        return f"question shorter than {rules['min_question_chars']} characters"
    if len(q) > rules["max_question_chars"]:
        return f"question longer than {rules['max_question_chars']} characters"
    if len(a) < rules["min_answer_chars"]:
        return f"answer shorter than {rules['min_answer_chars']} characters"
    if len(a) > rules["max_answer_chars"]:
        return f"answer longer than {rules['max_answer_chars']} characters"
    if rules["require_question_mark"] and "instruction" not in pair and not q.rstrip().endswith("?"):
        return "question does not end with a question mark"
    if normalise(q) in normalise(a):
        return "answer repeats the question"
    for name, text in (("question", q), ("answer", a)):
        run = repeated_run(text, rules.get("repeated_words", 0))
        if run:
            return f"{name} repeats itself ('{run}' occurs more than once)"
    for pattern in rules["reject_patterns"]:
        if re.search(pattern, q, re.I):
            return f"question refers to a text the user cannot see (matches {pattern!r})"
        if re.search(pattern, a, re.I):
            return f"answer refers to a text the user cannot see (matches {pattern!r})"
    return None


def judge_messages(pair, chunk_text, params):
    """The chat asking the teacher to judge one pair against its chunk, after
    the worked examples from params as earlier turns."""
    messages = [{"role": "system", "content": params["system_prompt"].strip()}]
    for example in params["examples"]:
        messages += [
            {"role": "user", "content": params["user_prompt"].format(
                text=example["text"], question=example["question"], answer=example["answer"]).strip()},
            {"role": "assistant", "content": example["reply"].strip()},
        ]
    messages.append({"role": "user", "content": params["user_prompt"].format(
        text=inside_quotes(chunk_text), question=pair_prompt(pair), answer=pair_response(pair)).strip()})
    return messages


def parse_verdict(reply, logprobs=None):
    """{"result": "YES"|"NO"|None, "score": 1..5|None, "reason": str, "p_yes": float|None}
    from a judge reply. Tolerates any casing, markdown and order; None where it
    says nothing. With the reply's token logprobs, `p_yes` is the probability
    the judge gave YES over NO where it wrote its verdict."""
    text = reply or ""
    result = None
    verdict = re.search(r"verdict\s*[:\-]?\s*\**\s*(yes|no)\b", text, re.I)
    if verdict is None:
        verdict = re.search(r"\b(yes|no)\b", text, re.I)
    if verdict:
        result = verdict.group(1).upper()
    score = None
    found = re.search(r"score\s*[:\-]?\s*\**\s*([1-5])\b", text, re.I)
    if found:
        score = int(found.group(1))
    reason = re.search(r"reason\s*[:\-]\s*(.+)", text, re.I)
    return {"result": result, "score": score,
            "reason": (reason.group(1) if reason else text).strip()[:500], "p_yes": p_yes(logprobs or [])}


def _verdict_word(token_text):
    """"YES"/"NO" when a token spells that word or its start (tokenizers split " YES"
    into " Y" + "ES"), else None."""
    text = token_text.strip().upper()
    for word in ("YES", "NO"):
        if text and word.startswith(text):
            return word
    return None


def p_yes(logprobs):
    """P(YES) / (P(YES) + P(NO)) at the reply token where the verdict starts (the
    first YES/NO after "verdict", else the first YES/NO), from its top logprobs."""
    written = ""
    candidates = []
    for token in logprobs:
        if _verdict_word(token["token"]):
            candidates.append(("verdict" in written.lower(), token))
        written += token["token"]
    if not candidates:
        return None
    after_label = [t for labelled, t in candidates if labelled]
    token = (after_label or [t for _, t in candidates])[0]
    mass = {"YES": 0.0, "NO": 0.0}
    for text, logprob in {**token["top"], token["token"]: token["logprob"]}.items():
        word = _verdict_word(text)
        if word:
            mass[word] += math.exp(logprob)
    total = mass["YES"] + mass["NO"]
    return round(mass["YES"] / total, 4) if total else None


def judge_keeps(verdict, params):
    """Whether the judge's verdict keeps the pair; unparsable verdicts follow params.
    With `min_p_yes` set and logprobs available, P(YES) alone decides: it is a far
    steadier signal than the words a small judge writes."""
    if params.get("min_p_yes") is not None and verdict.get("p_yes") is not None:
        return verdict["p_yes"] >= params["min_p_yes"]
    if verdict["result"] is None:
        return params["on_unparsed"] == "keep"
    if verdict["result"] != "YES":
        return False
    return verdict["score"] is None or verdict["score"] >= params["min_score"]
