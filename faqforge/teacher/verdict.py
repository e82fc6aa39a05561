"""Reading a judge's reply: the verdict, score and reason it wrote, and P(YES)
from its token log-probabilities. Shared by curate (judging pairs) and evaluate
(judging answers)."""

import math
import re


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
    first YES/NO after "verdict", else the first YES/NO), from its top logprobs.
    The token right after a "Verdict:" label counts even when the judge wrote
    another word there, if YES or NO is among its top tokens: so a verdict-first
    judge gets a probability for every answer."""
    written = ""
    candidates = []
    for token in logprobs:
        labelled = bool(re.search(r"verdict\W*$", written, re.I))
        if _verdict_word(token["token"]) or (labelled and token["token"].strip() and _mass(token)):
            candidates.append(("verdict" in written.lower(), token))
        written += token["token"]
    if not candidates:
        return None
    after_label = [t for labelled, t in candidates if labelled]
    mass = _mass((after_label or [t for _, t in candidates])[0])
    return round(mass["YES"] / (mass["YES"] + mass["NO"]), 4) if mass else None


def _mass(token):
    """{"YES": p, "NO": p} summed over a token and its top alternatives, or None
    when neither word is among them."""
    mass = {"YES": 0.0, "NO": 0.0}
    for text, logprob in {**token["top"], token["token"]: token["logprob"]}.items():
        word = _verdict_word(text)
        if word:
            mass[word] += math.exp(logprob)
    return mass if mass["YES"] + mass["NO"] else None
