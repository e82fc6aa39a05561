import math

import pytest

from faqforge.evaluate import bootstrap_ci, compare, eval_metrics, rouge_scores
from faqforge.io import PipelineError


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


def test_judge_scores_read_verdict_score_and_p_yes():
    from faqforge.evaluate import judge_scores
    assert judge_scores("Reason: it omits the flag.\n**Verdict:** no\nScore: 2")[0] == \
        {"judge_yes": 0, "judge_score": 2, "judge_p_yes": None}
    assert judge_scores("I am not sure what to say.")[0]["judge_yes"] is None
    logprobs = [{"token": "Verdict: ", "logprob": 0.0, "top": {}},
                {"token": "NO", "logprob": math.log(0.3), "top": {"YES": math.log(0.6), "NO": math.log(0.3)}}]
    # P(YES) = 0.6 / 0.9 decides over the written NO, as in curation.
    scores, _ = judge_scores("Verdict: NO", logprobs)
    assert scores["judge_yes"] == 1 and scores["judge_p_yes"] == pytest.approx(2 / 3, abs=1e-4)


def test_judge_metrics_hand_computed():
    from faqforge.evaluate import judge_metrics
    rows = [(1, 1, 5, 5), (0, 1, 2, 4), (0, 0, None, 1), (None, 1, 3, 3)]  # base yes, tuned yes, base, tuned score
    predictions = [{"scores": {"base": {"judge_yes": by, "judge_score": bs},
                               "tuned": {"judge_yes": ty, "judge_score": ts}}} for by, ty, bs, ts in rows]
    metrics = judge_metrics(predictions, n_resamples=100)
    assert (metrics["judged"], metrics["unreadable"]) == (3, 1)  # the 4th has no base verdict
    assert metrics["base_yes_rate"] == pytest.approx(1 / 3) and metrics["tuned_yes_rate"] == pytest.approx(2 / 3)
    assert metrics["yes_rate_delta"] == pytest.approx(1 / 3)
    assert (metrics["win_rate"], metrics["tie_rate"], metrics["loss_rate"]) == pytest.approx((1 / 3, 2 / 3, 0))
    # Scores pair up where both sides have one: items 1, 2 and 4.
    assert metrics["score"]["base"] == pytest.approx(10 / 3) and metrics["score"]["tuned"] == 4
    assert metrics["score"]["delta"] == pytest.approx(2 / 3)


def test_eval_metrics_without_judge_and_compare_of_nothing():
    assert compare([], []) is None
    predictions = [{"scores": {"base": {"rouge1": 0, "rouge2": 0, "rougeL": 0},
                               "tuned": {"rouge1": 1, "rouge2": 1, "rougeL": 1}}}]
    assert "judge" not in eval_metrics(predictions, n_resamples=10)


def test_report_has_the_headline_and_the_biggest_changes_side_by_side():
    from faqforge.evaluate import render_report
    predictions = [{"index": i, "question": f"q{i}?", "reference": f"ref {i}", "base": f"base {i}",
                    "tuned": f"tuned | {i}", "scores": {"base": {"rouge1": 0.5, "rouge2": 0.5, "rougeL": 0.5},
                                                        "tuned": {"rouge1": r, "rouge2": r, "rougeL": r}}}
                   for i, r in enumerate([0.9, 0.1, 0.5, 0.7])]
    report = render_report(predictions, eval_metrics(predictions, n_resamples=50), k=2)
    assert "| ROUGE-L | 0.500 | 0.550 | +0.050 |" in report
    helped, hurt = report.split("## Where tuning helped most")[1].split("## Where tuning hurt most")
    assert helped.index("| 0 | q0?") < helped.index("| 3 | q3?") and "| 1 |" not in helped
    assert hurt.index("| 1 | q1?") < hurt.index("| 2 | q2?")
    assert "tuned \\| 0" in report  # a | inside a cell does not break the table


SERVED = {"base_url": None, "tuned_model": "chatbot", "base_model": "base", "api_key_env": "TEST_KEY"}
DECODING = {"max_new_tokens": 32, "temperature": 0.0, "seed": 0}


def test_served_models_answer_by_name_over_http(openai_server, monkeypatch):
    from openai_server import teacher_reply

    from faqforge.evaluate import served_answers
    monkeypatch.setenv("TEST_KEY", "secret")
    chats = [[{"role": "system", "content": "Be brief."},
              {"role": "user", "content": f"How do I configure option number {i} of the pipeline?"}] for i in range(3)]
    params = {**DECODING, "served": {**SERVED, "base_url": openai_server.base_url}}
    base, tuned = served_answers(chats, params, {"backend": "local", "model": "embedded:smollm2-135m-instruct"})
    assert [r["text"] for r in tuned] == [teacher_reply(c) for c in chats] == [r["text"] for r in base]
    asked = [(r["body"]["model"], r["body"]["temperature"], r["body"]["max_tokens"], r["auth"])
             for r in openai_server.requests]
    assert sorted(asked) == [("base", 0.0, 32, "Bearer secret")] * 3 + [("chatbot", 0.0, 32, "Bearer secret")] * 3


def test_a_failed_request_to_the_served_model_stops_the_evaluation():
    from openai_server import OpenAIServer

    from faqforge.evaluate import served_answers
    with OpenAIServer(faults=["404"]) as server:
        params = {**DECODING, "served": {**SERVED, "base_url": server.base_url}}
        with pytest.raises(PipelineError, match=r"evaluate.served: 1 of 2 requests .* for model 'base' failed"):
            served_answers([[{"role": "user", "content": "q?"}]] * 2, params,
                           {"backend": "local", "model": "x", "max_retries": 0})


def test_judge_prompt_has_the_examples_as_turns_and_the_answer_last():
    from faqforge.evaluate import judge_messages
    from faqforge.io import load_params
    params = load_params("params.yaml", ["evaluate"])["evaluate"]["judge"]
    messages = judge_messages("How do I run it?", "Use make run.", "Run make run.", params)
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * len(params["examples"]) + ["user"]
    assert "Verdict: NO" in messages[-2]["content"] or "Verdict: YES" in messages[-2]["content"]
    assert messages[-1]["content"] == "Question: How do I run it?\nReference answer: Use make run.\n" \
                                      "Answer to grade: Run make run."


def test_report_names_the_judge_and_what_it_could_read():
    from faqforge.evaluate import judge_metrics, render_report
    rows = [(1, 1), (0, 1), (None, 0), (1, 0)]
    predictions = [{"index": i, "question": "q?", "reference": "r", "base": "b", "tuned": "t",
                    "scores": {"base": {"rouge1": 0, "rouge2": 0, "rougeL": 0, "judge_yes": by, "judge_score": None},
                               "tuned": {"rouge1": 0, "rouge2": 0, "rougeL": 0, "judge_yes": ty, "judge_score": None}}}
                   for i, (by, ty) in enumerate(rows)]
    metrics = eval_metrics(predictions, n_resamples=20)
    assert metrics["judge"] == judge_metrics(predictions, 20)
    metrics["judge"]["model"] = "openai:big-judge"
    report = render_report(predictions, metrics)
    assert "| judge YES rate | 0.667 | 0.667 | +0.000 |" in report and "| judge score (1-5) | - |" in report
    assert "The judge (openai:big-judge) wrote a readable verdict on both answers for 3 of 4 questions" in report
