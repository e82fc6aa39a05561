import pytest

from faqforge.evaluate import bootstrap_ci, compare, eval_metrics, rouge_scores


def test_rouge_hand_computed():
    # reference 4 tokens, prediction 3 tokens, 3 shared unigrams: P=1, R=3/4, F=6/7
    rows = rouge_scores(["run dvc push now"], ["run dvc push"])
    assert rows[0]["rouge1"] == pytest.approx(6 / 7)
    # bigrams: ref 3, pred 2, shared 2: P=1, R=2/3, F=0.8
    assert rows[0]["rouge2"] == pytest.approx(0.8)
    assert rows[0]["rougeL"] == pytest.approx(6 / 7)


def test_rouge_uses_stemming():
    assert rouge_scores(["pushes"], ["push"])[0]["rouge1"] == 1.0


def test_compare_hand_computed():
    result = compare([0.0, 0.5, 1.0, 0.5], [0.5, 0.5, 0.5, 1.0], n_resamples=200)
    assert result["base"] == 0.5 and result["tuned"] == 0.625
    assert result["delta"] == pytest.approx(0.125)
    assert (result["win_rate"], result["tie_rate"], result["loss_rate"]) == (0.5, 0.25, 0.25)


def test_bootstrap_reproducible_and_covers_true_difference():
    import random
    rng = random.Random(1)
    diffs = [0.1 + rng.gauss(0, 0.05) for _ in range(200)]
    ci = bootstrap_ci(diffs, seed=3)
    assert ci == bootstrap_ci(diffs, seed=3)
    assert ci[0] < 0.1 < ci[1] and ci[1] - ci[0] < 0.05


def test_eval_metrics_nesting():
    predictions = [{"scores": {"base": {"rouge1": 0, "rouge2": 0, "rougeL": 0},
                               "tuned": {"rouge1": 1, "rouge2": 1, "rougeL": 1}}}] * 3
    metrics = eval_metrics(predictions, n_resamples=50)
    assert metrics["n_questions"] == 3
    assert metrics["rougeL"]["delta"] == 1 and metrics["rougeL"]["delta_ci95"] == [1, 1]
