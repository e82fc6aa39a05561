"""Scoring base vs tuned answers against the human-written references.

For each metric: the mean for base and tuned, the paired difference with a
bootstrap 95% confidence interval, and the tuned-vs-base win rate.
"""

import random

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge_scores(references, predictions):
    """Per-item ROUGE F1 (with stemming) for each type in ROUGE_TYPES."""
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    rows = []
    for ref, pred in zip(references, predictions):
        scores = scorer.score(ref, pred)
        rows.append({t: scores[t].fmeasure for t in ROUGE_TYPES})
    return rows


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


def compare(base, tuned, n_resamples=2000, seed=0):
    """Summary of paired per-item scores: means, delta, its CI, win/tie/loss rates."""
    n = len(base)
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


def eval_metrics(predictions, n_resamples=2000, seed=0):
    """metrics/eval.json content from prediction records holding per-item scores."""
    metrics = {"n_questions": len(predictions)}
    for t in ROUGE_TYPES:
        metrics[t] = compare([p["scores"]["base"][t] for p in predictions],
                             [p["scores"]["tuned"][t] for p in predictions], n_resamples, seed)
    return metrics
