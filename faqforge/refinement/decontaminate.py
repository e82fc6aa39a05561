"""Remove training pairs that leak the human-written eval set, and audit the result.

`contamination` is the rule the decontaminate stage applies. A pair leaks an
eval item when, in `records.normalise`'s form,
- its question or answer shares an n-gram of `ngram` words (13, as in the
  GPT-3 paper) with the item's question or answer;
- its answer contains the whole of an eval answer that is shorter than
  `ngram` words but at least `min_answer_words` long (FAQ answers often are);
- its question scores `question_threshold` against the eval question, or its
  answer `answer_threshold` against the eval answer (`scorer`, token_sort_ratio
  by default: a reworded or reordered copy scores high, a longer, different
  question that merely contains the eval question's words does not).

`audit` is a second, independent check for the data report: character
trigram sets of the plain lower-cased texts, compared exhaustively with
scipy's sparse products, so a bug in the rule above shows up there.
"""

import numpy as np
from scipy import sparse

from faqforge.core.records import dropped, normalise, pair_prompt, pair_response
from faqforge.refinement.fuzzy import similar_pairs

# The audit's thresholds: question trigram Jaccard, and the share of an eval
# answer's trigrams found in a training answer (for answers of 20+ characters).
AUDIT_QUESTION_JACCARD = 0.7
AUDIT_ANSWER_CONTAINMENT = 0.9
AUDIT_MIN_ANSWER_CHARS = 20


def ngrams(text, n):
    words = normalise(text).split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def leakable_answer(item):
    """The eval answer a training pair could leak: none for a question the documents
    do not answer, whose answer is the generic "not covered" (a training refusal is no leak)."""
    return item["answer"] if item.get("answerable", True) else ""


def eval_grams(evalset, ngram, min_answer_words):
    """(n-gram -> eval index over questions and answers, whole short answer -> eval index)."""
    long, short = {}, {}
    for k, item in enumerate(evalset):
        for gram in ngrams(item["question"], ngram) | ngrams(leakable_answer(item), ngram):
            long.setdefault(gram, k)
        words = normalise(leakable_answer(item)).split()
        if min_answer_words <= len(words) < ngram:
            short.setdefault(" ".join(words), k)
    return long, short


def _best(matches):
    """pair index -> (score, eval index): the highest score, then the first eval item."""
    best = {}
    for i, k, score in matches:
        if i not in best or (score, -k) > (best[i][0], -best[i][1]):
            best[i] = (score, k)
    return best


def contamination(pairs, evalset, rule):
    """Returns (clean, dropped); each drop names the eval item and the evidence.
    `rule`: the decontaminate section (faqforge.core.sections.Decontaminate)."""
    ngram, scorer = rule.ngram, rule.scorer
    question_threshold, answer_threshold = rule.question_threshold, rule.answer_threshold
    long, short = eval_grams(evalset, ngram, rule.min_answer_words)
    short_lengths = sorted({len(g.split()) for g in short})
    questions = [pair_prompt(p) for p in pairs]
    answers = [pair_response(p) for p in pairs]
    fuzzy_questions = _best(similar_pairs(questions, [e["question"] for e in evalset], scorer=scorer,
                                          threshold=question_threshold))
    fuzzy_answers = _best(similar_pairs(answers, [leakable_answer(e) for e in evalset], scorer=scorer,
                                        threshold=answer_threshold))
    clean, leaked = [], []
    for i, pair in enumerate(pairs):
        evidence = None
        for field, text in (("question", questions[i]), ("answer", answers[i])):
            gram = next((g for g in sorted(ngrams(text, ngram)) if g in long), None)
            if gram is not None:
                evidence = (long[gram], "eval leak: shared n-gram",
                            f"{field} shares the {ngram}-gram {gram!r} with eval item {long[gram]}")
                break
        if evidence is None and short:
            gram = next((g for n in short_lengths for g in sorted(ngrams(answers[i], n)) if g in short), None)
            if gram is not None:
                evidence = (short[gram], "eval leak: whole eval answer",
                            f"answer contains the whole answer of eval item {short[gram]}: {gram!r}")
        for field, best, threshold in (("question", fuzzy_questions, question_threshold),
                                       ("answer", fuzzy_answers, answer_threshold)):
            if evidence is None and i in best:
                score, k = best[i]
                evidence = (k, f"eval leak: fuzzy {field}",
                            f"{field} {scorer} {score} >= {threshold} with eval item {k}")
        if evidence is None:
            clean.append(pair)
        else:
            k, reason, why = evidence
            leaked.append(dropped(pair, "decontaminate", reason, why, eval_index=k,
                                  eval_question=evalset[k]["question"]))
    return clean, leaked


def trigram_matrix(texts, vocabulary):
    """Binary sparse matrix: row i marks the character trigrams of texts[i]
    (lower-cased, whitespace collapsed, punctuation kept); `vocabulary` grows."""
    rows, cols = [], []
    for i, text in enumerate(texts):
        text = " ".join(text.lower().split())
        grams = {vocabulary.setdefault(text[k:k + 3], len(vocabulary)) for k in range(max(len(text) - 2, 0))}
        rows += [i] * len(grams)
        cols += grams
    return rows, cols


def _binary(rows, cols, n_rows, n_cols):
    return sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_rows, n_cols))


def audit(pairs, evalset):
    """Pairs an independent check finds too close to the eval set: a question
    whose trigram Jaccard with an eval question is at least
    AUDIT_QUESTION_JACCARD, or an answer holding AUDIT_ANSWER_CONTAINMENT of an
    eval answer's trigrams. Every pair is compared with every eval item.
    Returns [{id, eval_index, why}]."""
    found = {}
    for field, get, eval_text in (("question", pair_prompt, lambda e: e["question"]),
                                  ("answer", pair_response, leakable_answer)):
        vocabulary = {}
        train = trigram_matrix([get(p) for p in pairs], vocabulary)
        evals = trigram_matrix([eval_text(e) for e in evalset], vocabulary)
        a = _binary(*train, len(pairs), len(vocabulary))
        b = _binary(*evals, len(evalset), len(vocabulary))
        shared = (a @ b.T).tocoo()
        size_a = np.asarray(a.sum(axis=1)).ravel()
        size_b = np.asarray(b.sum(axis=1)).ravel()
        for i, k, inter in zip(shared.row, shared.col, shared.data):
            if field == "question":
                value = inter / (size_a[i] + size_b[k] - inter)
                hit = value >= AUDIT_QUESTION_JACCARD
                what = f"question trigram Jaccard {value:.2f} with eval item {k}"
            else:
                value = inter / size_b[k]
                hit = value >= AUDIT_ANSWER_CONTAINMENT and len(eval_text(evalset[k])) >= AUDIT_MIN_ANSWER_CHARS
                what = f"answer holds {value:.0%} of eval item {k}'s answer trigrams"
            if hit and int(i) not in found:
                found[int(i)] = {"id": pairs[i]["id"], "eval_index": int(k), "why": what}
    return [found[i] for i in sorted(found)]
