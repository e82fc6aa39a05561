"""Remove training pairs that leak the human-written eval set.

A pair is contaminated when its question or answer shares an n-gram of `n`
words (normalised text; 13 as in the GPT-3 paper) with an eval question or
answer, or when its question is a fuzzy match of an eval question.
"""

from faqforge.dedup import normalise
from faqforge.fuzzy import check_scorer, similar_pairs
from faqforge.records import dropped, pair_prompt, pair_response


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
    check_scorer(scorer, "decontaminate.scorer")
    index = eval_ngram_index(evalset, n)
    best = {}  # pair index -> (score, eval index): its closest eval question
    for i, k, score in similar_pairs([pair_prompt(p) for p in pairs], [item["question"] for item in evalset],
                                     scorer, question_threshold):
        best[i] = max(best.get(i, (score, -k)), (score, -k))  # highest score, then the first item
    clean, leaked = [], []
    for i, pair in enumerate(pairs):
        evidence = None
        for field, text in (("question", pair_prompt(pair)), ("answer", pair_response(pair))):
            shared = next((g for g in sorted(ngrams(text, n)) if g in index), None)
            if shared is not None:
                k = index[shared]
                evidence = {"eval_index": k, "eval_question": evalset[k]["question"],
                            "reason": "eval leak: shared n-gram",
                            "why": f"{field} shares the {n}-gram {shared!r} with eval item {k}"}
                break
        if evidence is None and i in best:
            score, k = best[i][0], -best[i][1]
            evidence = {"eval_index": k, "eval_question": evalset[k]["question"],
                        "reason": "eval leak: fuzzy question",
                        "why": f"question {scorer} {score} >= {question_threshold} with eval item {k}"}
        if evidence is None:
            clean.append(pair)
        else:
            leaked.append(dropped(pair, "decontaminate", evidence.pop("reason"), evidence.pop("why"), **evidence))
    return clean, leaked
