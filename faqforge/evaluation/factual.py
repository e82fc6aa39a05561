"""Reference recall: how much of a reference answer's content an answer holds.

It asks which of the reference's facts the answer contains: its key terms
(numbers, `code spans`, file names, dotted or underscored parameter names such
as finetune.lora_r, commands' flags) count twice, its other content words once,
each found when the answer holds it (words compared stemmed, after folding
case, accents and punctuation). It is a recall: padding an answer cannot lower
it, so a copied passage that holds the reference scores as high as the
reference itself, and a wrong answer in the reference's words scores high too.
That makes it the right test of whether retrieved passages hold an answer
(retrieval misses against reading misses, citations) and the wrong headline:
the evaluation ranks by token F1 (faqforge.evaluation.token_f1).
"""

import re

from faqforge.core.records import normalise
from faqforge.core.terms import content_stems, content_terms

KEY_WEIGHT = 2.0
_CODE = re.compile(r"`([^`]+)`")
_FILE = re.compile(r"(?<![\w/])[\w./-]*\w\.(?:py|ya?ml|json|jsonl|md|rst|txt|pdf|html?|csv|toml|cfg|ini|lock|sh)\b")
_IDENT = re.compile(r"(?<![\w-])(?:--?[a-z][\w-]*|[A-Za-z_]\w*(?:[._]\w+)+|[A-Z]{2,}\w*)")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*%?")
def key_terms(text):
    """The reference's key terms, normalised: code spans, file names,
    identifiers (dotted, underscored, ALL-CAPS, --flags) and numbers."""
    found = _CODE.findall(text) + _FILE.findall(text) + _IDENT.findall(_CODE.sub(" ", text)) + _NUMBER.findall(text)
    terms = {normalise(t) for t in found}
    return {t for t in terms if t}


def _contains(haystack, needle):
    return f" {needle} " in f" {haystack} "


def factual_scores(reference, answer):
    """{"factual": reference recall, the weighted share of the reference's key terms and content words
    found in the answer, "content_recall": the plain share of its content words,
    "key_recall": the share of its key terms (None without any)}."""
    keys = key_terms(reference)
    answer_text = normalise(answer)
    answer_stems = content_terms(answer)
    key_found = [_contains(answer_text, k) for k in keys]
    # Content words that are part of a key term are counted with the key term.
    key_stems = set(content_stems(" ".join(keys)))
    words = content_terms(reference)
    plain = words - key_stems
    words_found = [w in answer_stems for w in plain]
    weight = KEY_WEIGHT * len(keys) + len(plain)
    factual = (KEY_WEIGHT * sum(key_found) + sum(words_found)) / weight if weight else 0.0
    content = sum(w in answer_stems for w in words) / len(words) if words else 0.0
    return {"factual": factual, "content_recall": content,
            "key_recall": sum(key_found) / len(keys) if keys else None}


def supported(statement, passage_text, threshold=0.5):
    """Whether a passage holds the content of a statement: at least `threshold`
    of its factual score (used for citations and for retrieval's coverage)."""
    return factual_scores(statement, passage_text)["factual"] >= threshold
