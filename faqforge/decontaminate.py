"""Remove training pairs that leak the human-written eval set.

A pair is contaminated when its question or answer shares an n-gram of `n`
words (normalised text; 13 as in the GPT-3 paper) with an eval question or
answer, or when its question is a fuzzy match of an eval question.
"""

import numpy as np
from rapidfuzz import fuzz, process, utils

from faqforge.dedup import normalise
from faqforge.records import pair_prompt, pair_response


def ngrams(text, n):
    words = normalise(text).split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def eval_ngram_index(evalset, n):
    """n-gram -> index of the first eval item containing it."""
    index = {}
    for k, item in enumerate(evalset):
        for gram in ngrams(item["question"], n) | ngrams(item["answer"], n):
            index.setdefault(gram, k)
    return index


def contamination(pairs, evalset, n=13, question_threshold=85, scorer="token_set_ratio"):
    """Returns (clean, dropped); each drop names the eval item and the evidence."""
    index = eval_ngram_index(evalset, n)
    eval_questions = [utils.default_process(item["question"]) for item in evalset]
    questions = [utils.default_process(pair_prompt(p)) for p in pairs]
    scores = process.cdist(questions, eval_questions, scorer=getattr(fuzz, scorer),
                           score_cutoff=question_threshold, dtype=np.uint8) if pairs else None
    clean, dropped = [], []
    for i, pair in enumerate(pairs):
        evidence = None
        for field, text in (("question", pair_prompt(pair)), ("answer", pair_response(pair))):
            shared = next((g for g in sorted(ngrams(text, n)) if g in index), None)
            if shared is not None:
                k = index[shared]
                evidence = {"eval_index": k, "eval_question": evalset[k]["question"],
                            "why": f"{field} shares the {n}-gram {shared!r} with eval item {k}"}
                break
        if evidence is None and scores is not None and scores[i].any():
            k = int(np.argmax(scores[i]))
            evidence = {"eval_index": k, "eval_question": evalset[k]["question"],
                        "why": f"question {scorer} {int(scores[i][k])} >= {question_threshold} "
                               f"with eval item {k}"}
        if evidence is None:
            clean.append(pair)
        else:
            dropped.append({**pair, **evidence, "dropped_by": "decontaminate"})
    return clean, dropped
