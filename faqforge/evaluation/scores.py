"""Scoring four arms of answers against the human-written references.

The arms: the base and the tuned student, each closed book (the question
alone) and with retrieval (the top passages in the prompt, the layout the
student was trained with). For each score: each arm's mean with a bootstrap
95% interval, and for every pair of arms that matters the paired difference
with its interval and the win / tie / loss rates. Scores: the factual score
(faqforge.evaluation.factual: how much of the reference's content the answer states; the
ranking score, since it does not reward brevity), ROUGE F1, precision and
recall, and the judge's verdict. The judge is checked in the same run on
controls (the reference itself, a known-right answer, and another question's
reference, a known-wrong one); its rows are marked not informative when it
cannot tell them apart.
"""

import random

from faqforge.core.chat_format import citations, strip_citations
from faqforge.core.sections import EvaluateJudge, choices
from faqforge.evaluation.factual import factual_scores, supported

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


ARMS = choices(EvaluateJudge, "arms")  # base_closed, tuned_closed, base_rag, tuned_rag


ARM_NAMES = {"base_closed": "base, closed book", "tuned_closed": "tuned, closed book",
             "base_rag": "base + retrieval (plain RAG)", "tuned_rag": "tuned + retrieval (RAFT)"}


# (better?, than): the comparisons the report and metrics/eval.json give.
COMPARISONS = (("tuned_rag", "tuned_closed"), ("tuned_rag", "base_rag"), ("tuned_rag", "base_closed"),
               ("base_rag", "base_closed"), ("tuned_closed", "base_closed"))


SCORES = ("factual", "content_recall", "rougeL", "rougeL_precision", "rougeL_recall", "judge_yes")


def rouge_scores(references, predictions):
    """Per-item ROUGE F1 (with stemming) for each type in ROUGE_TYPES, and
    ROUGE-L precision and recall."""
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    rows = []
    for ref, pred in zip(references, predictions):
        scores = scorer.score(ref, pred)
        row = {t: scores[t].fmeasure for t in ROUGE_TYPES}
        row.update(rougeL_precision=scores["rougeL"].precision, rougeL_recall=scores["rougeL"].recall)
        rows.append(row)
    return rows


def answer_scores(reference, answer, passages=None):
    """Every reference-based score of one answer (citations left out of the
    text compared); with the passages it was shown, whether it cites one and
    whether the cited passage holds the answer's facts."""
    text = strip_citations(answer)
    row = {**rouge_scores([reference], [text])[0], **factual_scores(reference, text), "words": len(text.split())}
    if passages is not None:
        cited = [n for n in citations(answer) if 1 <= n <= len(passages)]
        row["cites"] = int(bool(cited))
        row["citation_supported"] = (int(any(supported(text, passages[n - 1]["text"]) for n in cited))
                                     if cited and text else None)
    return row


def bootstrap_ci(differences, n_resamples=2000, seed=0, level=0.95):
    """Percentile bootstrap interval of the mean of paired differences."""
    if not differences:
        return [0.0, 0.0]
    rng = random.Random(seed)
    n = len(differences)
    means = sorted(sum(rng.choices(differences, k=n)) / n for _ in range(n_resamples))
    lo = means[int((1 - level) / 2 * n_resamples)]
    hi = means[min(n_resamples - 1, int((1 + level) / 2 * n_resamples))]
    return [lo, hi]


def mean_ci(values, n_resamples=2000, seed=0):
    """{"mean", "ci95"} of per-item values (None where there are none)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": sum(values) / len(values), "ci95": bootstrap_ci(values, n_resamples, seed), "n": len(values)}


def compare(base, tuned, n_resamples=2000, seed=0):
    """Summary of paired per-item scores: means, delta, its CI, win/tie/loss rates
    (None where there is nothing to compare)."""
    n = len(base)
    if not n:
        return None
    diffs = [t - b for b, t in zip(base, tuned)]
    return {
        "base": sum(base) / n,
        "tuned": sum(tuned) / n,
        "delta": sum(diffs) / n,
        "delta_ci95": bootstrap_ci(diffs, n_resamples, seed),
        "win_rate": sum(d > 0 for d in diffs) / n,
        "tie_rate": sum(d == 0 for d in diffs) / n,
        "loss_rate": sum(d < 0 for d in diffs) / n,
    }


def judge_controls(predictions, min_accuracy=0.75):
    """How well the judge tells a known-right answer (the reference itself) from
    a known-wrong one (another question's reference): its accuracy on both,
    the YES rates, and whether its verdicts on the arms are informative."""
    right = [p["controls"]["right"].get("judge_yes") for p in predictions if "controls" in p]
    wrong = [p["controls"]["wrong"].get("judge_yes") for p in predictions if "controls" in p]
    right, wrong = [v for v in right if v is not None], [v for v in wrong if v is not None]
    total = len(right) + len(wrong)
    if not total:
        return {"judged": 0, "accuracy": None, "informative": False}
    accuracy = (sum(right) + sum(1 - v for v in wrong)) / total
    return {"judged": total, "unreadable": 2 * len(predictions) - total, "accuracy": accuracy,
            "right_yes_rate": sum(right) / len(right) if right else None,
            "wrong_yes_rate": sum(wrong) / len(wrong) if wrong else None,
            "min_accuracy": min_accuracy, "informative": accuracy >= min_accuracy}


def eval_metrics(predictions, n_resamples=2000, seed=0, arms=ARMS, min_control_accuracy=0.75):
    """metrics/eval.json content from prediction records holding per-arm scores:
    each arm's means with intervals, and each comparison's paired differences."""
    arms = [a for a in arms if predictions and a in predictions[0]["scores"]]
    metrics = {"n_questions": len(predictions), "arms": {}, "comparisons": {}}
    keys = ("factual", "content_recall", "key_recall", "rouge1", "rouge2", "rougeL", "rougeL_precision",
            "rougeL_recall", "words", "judge_yes", "judge_p_yes", "cites", "citation_supported")
    for arm in arms:
        values = {k: [p["scores"][arm].get(k) for p in predictions] for k in keys}
        metrics["arms"][arm] = {k: mean_ci(v, n_resamples, seed) for k, v in values.items()
                                if any(x is not None for x in v)}
    for better, than in COMPARISONS:
        if better in arms and than in arms:
            metrics["comparisons"][f"{better}_vs_{than}"] = {
                k: compare(*_paired(predictions, than, better, k), n_resamples, seed) for k in SCORES
                if _paired(predictions, than, better, k)[0]}
    if any("controls" in p for p in predictions):
        metrics["judge"] = judge_controls(predictions, min_control_accuracy)
    return metrics


def _paired(predictions, a, b, key):
    both = [(p["scores"][a].get(key), p["scores"][b].get(key)) for p in predictions]
    both = [(x, y) for x, y in both if x is not None and y is not None]
    return [x for x, _ in both], [y for _, y in both]


def retrieval_metrics(eval_hits, references, val_hits=None, val_chunks=None):
    """Retrieval quality: for the eval set, the share of questions whose
    reference the retrieved passages support, and the mean factual score of
    the passages themselves (the ceiling of a reader); for the validation
    pairs, recall@k of each one's own chunk."""
    support = [factual_scores(ref, " ".join(h["text"] for h in hits)) for ref, hits in zip(references, eval_hits)]
    metrics = {"k": max((len(h) for h in eval_hits), default=0),
               "eval_supported": sum(s["factual"] >= 0.5 for s in support) / len(support) if support else None,
               "eval_passage_factual": sum(s["factual"] for s in support) / len(support) if support else None}
    if val_hits:
        found = [any(h["chunk_id"] == chunk for h in hits) for hits, chunk in zip(val_hits, val_chunks)]
        metrics["val_own_chunk_recall_at_k"] = sum(found) / len(found)
        metrics["val_pairs"] = len(found)
    return metrics


def score_predictions(evalset, hits, replies):
    """One prediction record per eval item: every arm's answer and scores, whether
    the retrieved passages support the reference, and which passages were shown."""
    predictions = []
    for i, (item, shown) in enumerate(zip(evalset, hits)):
        answers = {arm: replies[arm][i]["text"] for arm in ARMS}
        scores = {arm: answer_scores(item["answer"], answers[arm], shown if arm.endswith("_rag") else None)
                  for arm in ARMS}
        predictions.append({"index": i, "question": item["question"], "reference": item["answer"],
                            "answers": answers, "scores": scores,
                            "retrieval_hit": supported(item["answer"], " ".join(h["text"] for h in shown)),
                            "passages": [{key: h.get(key) for key in ("passage_id", "doc", "section", "pages",
                                                                       "score")} for h in shown]})
    return predictions
