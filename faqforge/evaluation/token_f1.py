"""Token F1 of an answer against a reference, SQuAD-style, and refusals.

The headline score of the evaluation. Both texts are folded as the SQuAD
evaluation script folds them (case, punctuation, the articles a/an/the,
whitespace); from the answer, the bot's scaffolding is removed first: `[n]`
citation markers, RAFT's `##begin_quote##`/`##end_quote##` markers and a
`Sources:` block. Precision is the share of the answer's tokens found in the
reference, recall the share of the reference's tokens found in the answer
(both as multisets), F1 their harmonic mean. A copied 40-word passage that
holds a 6-word reference has recall 1 and precision about 0.15.

Refusals are scored as SQuAD 2.0 scores "no answer": on a question the
documents answer, a refusal scores 0; on one they do not answer
(`"answerable": false` in the eval set), a refusal scores 1 and anything else 0.

A lexical score cannot see negation: "No, it must stay out of data/docs" and
"Yes, it must stay in data/docs" share most tokens. People's grades
(data/eval/grades.jsonl) are the check on it.
"""

import re
import unicodedata
from collections import Counter

from faqforge.core.chat_format import strip_citations

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_QUOTE_MARKERS = re.compile(r"##(?:begin|end)_quote##")
# The block chat and serve put under an answer: "Sources:" (or "Sources (shown to ...):"), then "[n] ..." lines.
_SOURCES = re.compile(r"(?:\A|\n)[ \t]*Sources(?: \([^)\n]*\))?:[ \t]*\n\s*\[\d+\].*\Z", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
# The first sentence of a refusal: the documents/passages do not answer (cover, say...) it,
# or the model does not know. Matched after folding case and apostrophes.
_REFUSAL = re.compile(
    r"\b(?:documents?|passages?|sources?|context|texts?)\s+(?:provided\s+)?(?:do|does|did)\s*(?:not|n't)\s+"
    r"(?:answer|cover|contain|say|mention|include|provide|address|describe|discuss|state|explain|specify)\b"
    r"|\bnot\s+(?:covered|answered|mentioned|described)\s+(?:in|by)\s+(?:the\s+)?(?:documents?|passages?|sources?)\b"
    r"|\bno\s+(?:information|answer|mention)\s+(?:about|on|of|for|to|in)\b"
    r"|\bi\s+(?:do\s*(?:not|n't)|don't)\s+know\b"
    r"|\bi\s+(?:cannot|can't|can\s+not|am\s+unable\s+to)\s+(?:answer|find|tell)\b")


def answer_text(answer):
    """What of an answer is compared with the reference: no `Sources:` block,
    no citation markers, no quote markers."""
    text = _SOURCES.sub("", answer)
    return strip_citations(_QUOTE_MARKERS.sub(" ", text))


def is_refusal(answer):
    """Whether an answer declines: its first sentence says the documents do not
    answer the question (or the model does not know). An answer that goes on
    after such a sentence still declined first, and counts as a refusal. An
    answer that opens with a quotation (the bot's evidence, `"..." [n]`) quotes
    the documents: a quoted sentence about unanswered questions is no refusal."""
    if answer.lstrip().startswith(('"', "\u201c", "##begin_quote##")):
        return False
    text = answer_text(answer).replace("\u2019", "'").casefold()
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0] if text.strip() else ""
    return bool(_REFUSAL.search(first))


def squad_tokens(text):
    """SQuAD's normal form as tokens: lower case, punctuation (any script's)
    removed, the articles a/an/the removed, split on whitespace."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith(("P", "S")) else ch for ch in text)
    return _ARTICLES.sub(" ", text).split()


def token_scores(reference, answer, answerable=True):
    """{"f1", "precision", "recall", "refused"} of one answer. A refusal scores
    0 on an answerable question; on an unanswerable one, refusing scores 1 and
    answering 0."""
    refused = is_refusal(answer)
    if not answerable:
        value = 1.0 if refused else 0.0
        return {"f1": value, "precision": value, "recall": value, "refused": refused}
    if refused:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0, "refused": True}
    got, want = squad_tokens(answer_text(answer)), squad_tokens(reference)
    common = sum((Counter(got) & Counter(want)).values())
    if not common:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0, "refused": False}
    precision, recall = common / len(got), common / len(want)
    return {"f1": 2 * precision * recall / (precision + recall), "precision": precision, "recall": recall,
            "refused": False}
