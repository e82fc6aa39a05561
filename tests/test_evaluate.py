import json
import math

import pytest

from faqforge.core.io import PipelineError
from faqforge.evaluation.eval_report import render_chart, render_report
from faqforge.evaluation.scores import (
    ARM_NAMES,
    ARMS,
    BOT,
    CEILING,
    COMPARISONS,
    MODEL_ARMS,
    answer_scores,
    bootstrap_ci,
    compare,
    eval_metrics,
    judge_controls,
    retrieval_metrics,
    rouge_l,
)
from faqforge.models.cache import cached_entries
from tests.support.sections import changed, section


def test_rouge_l_hand_computed_with_stemming():
    # reference 4 tokens, prediction 3 tokens, longest common subsequence 3: P=1, R=3/4, F=6/7
    assert rouge_l("run dvc push now", "run dvc push") == pytest.approx(6 / 7)
    assert rouge_l("pushes", "push") == 1.0


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


ARM_SCORES = ("f1", "precision", "recall", "reference_recall", "rougeL", "words")


def arm_scores(value, **extra):
    return {**{k: value for k in ARM_SCORES}, "refused": False, **extra}


def all_arms(values, **extra):
    """A prediction with one score per arm, in ARMS order (the same value for every score)."""
    return {"scores": {arm: arm_scores(v) for arm, v in zip(ARMS, values)}, **extra}


def test_eval_metrics_give_every_arm_every_comparison_and_the_verdict_against_the_best_no_model_arm():
    # arms: base_closed, tuned_closed, base_rag, tuned_rag, evidence, top_passage, best_sentence, oracle_sentence
    predictions = [all_arms([0.0, 0.1, 0.4, 0.8, 0.7, 0.5, 0.3, 0.9]), all_arms([0.2, 0.1, 0.4, 0.6, 0.8, 0.5, 0.2, 0.9]),
                   all_arms([0.1, 0.1, 0.1, 0.7, 0.6, 0.5, 0.4, 1.0])]
    metrics = eval_metrics(predictions, n_resamples=50)
    assert metrics["n_questions"] == 3 and list(metrics["arms"]) == list(ARMS)
    assert metrics["arms"]["tuned_rag"]["f1"]["mean"] == pytest.approx(0.7)
    assert metrics["arms"]["base_closed"]["f1"]["ci95"][0] <= 0.1 <= metrics["arms"]["base_closed"]["f1"]["ci95"][1]
    assert set(metrics["comparisons"]) == {f"{a}_vs_{b}" for a, b in COMPARISONS}
    assert not any(CEILING in name for name in metrics["comparisons"])     # the ceiling is no competitor
    vs_closed = metrics["comparisons"]["tuned_rag_vs_tuned_closed"]["f1"]
    assert vs_closed["delta"] == pytest.approx(0.6) and vs_closed["delta_ci95"][0] > 0
    assert vs_closed["win_rate"] == 1
    verdict = metrics["verdict"]
    assert verdict["than"] == "top_passage" and verdict["delta"] == pytest.approx(0.2)    # 0.5 beats 0.3
    assert verdict["result"] == "beats"
    assert "judge" not in metrics  # no controls judged, no judge section


def test_the_verdict_says_ties_with_when_the_interval_holds_zero_and_loses_to_when_below():
    tied = [all_arms([0, 0, 0, 0, 0.5, 0.4, 0, 1]), all_arms([0, 0, 0, 0, 0.3, 0.4, 0, 1]),
            all_arms([0, 0, 0, 0, 0.5, 0.5, 0, 1])]
    assert eval_metrics(tied, n_resamples=200)["verdict"]["result"] == "ties with"
    lost = [all_arms([0, 0, 0, 0, 0.1, 0.4, 0.6, 1]) for _ in range(5)]
    verdict = eval_metrics(lost, n_resamples=200)["verdict"]
    assert verdict["than"] == "best_sentence" and verdict["result"] == "loses to"
    assert "**loses to** the best answer that needs no model" in render_report(
        [{**p, "index": i, "question": "q?", "reference": "r", "answers": {a: "a" for a in ARMS}}
         for i, p in enumerate(lost)], eval_metrics(lost, n_resamples=200))


def test_refusals_are_counted_apart_on_answerable_and_unanswerable_questions():
    predictions = [
        all_arms([0] * 8, answerable=False),
        all_arms([0] * 8, answerable=False),
        all_arms([0.5] * 8, answerable=True),
        all_arms([0.5] * 8, answerable=True),
    ]
    for p, refused in zip(predictions, (True, False, True, False)):
        p["scores"]["tuned_rag"]["refused"] = refused
    metrics = eval_metrics(predictions, n_resamples=20)
    bot = metrics["arms"]["tuned_rag"]
    assert metrics["n_unanswerable"] == 2
    assert (bot["refusal_rate"], bot["false_refusal_rate"], bot["answered"]) == (0.5, 0.5, 1)
    assert bot["f1_answered"] == 0.5 and metrics["arms"]["top_passage"]["refusal_rate"] == 0


def test_answer_scores_strip_citations_and_check_the_cited_passage_against_the_reference():
    passages = [{"text": "Run dvc push to upload the outputs to the remote."},
                {"text": "The adapter rank is finetune.lora_r, 16 by default."}]
    reference = "The rank is set by finetune.lora_r and is 16."
    good = answer_scores(reference, "finetune.lora_r sets it: 16. [2]", passages)
    assert good["cites"] == 1 and good["cites_right"] == 1 and good["cited_holds_answer"] == 1
    assert good["reference_recall"] > 0.5 and good["f1"] > 0.3
    assert good["f1"] == answer_scores(reference, "finetune.lora_r sets it: 16.")["f1"]  # [2] is not compared
    # a copied wrong sentence: the cited passage holds the answer, but it does not support the reference
    copied = answer_scores(reference, "Run dvc push to upload the outputs to the remote. [1]", passages)
    assert copied["cited_holds_answer"] == 1 and copied["cites_right"] == 0
    assert answer_scores("x", "No citation here.", passages)["cites"] == 0
    assert answer_scores("x", "Out of range [7].", passages)["cites_right"] is None
    assert "cites" not in answer_scores("x", "closed book [1]")
    unanswerable = answer_scores("The documents do not cover this.", "The documents do not answer this question.",
                                 passages, answerable=False)
    assert unanswerable["f1"] == 1 and "cites" not in unanswerable and "reference_recall" not in unanswerable


def test_judge_scores_read_verdict_score_and_p_yes():
    from faqforge.evaluation.judge import judge_scores
    assert judge_scores("Reason: it omits the flag.\n**Verdict:** no\nScore: 2")[0] == \
        {"judge_yes": 0, "judge_score": 2, "judge_p_yes": None}
    assert judge_scores("I am not sure what to say.")[0]["judge_yes"] is None
    logprobs = [{"token": "Verdict: ", "logprob": 0.0, "top": {}},
                {"token": "NO", "logprob": math.log(0.3), "top": {"YES": math.log(0.6), "NO": math.log(0.3)}}]
    # P(YES) = 0.6 / 0.9 decides over the written NO, as in curation.
    scores, _ = judge_scores("Verdict: NO", logprobs)
    assert scores["judge_yes"] == 1 and scores["judge_p_yes"] == pytest.approx(2 / 3, abs=1e-4)


def test_judge_controls_decide_whether_the_judge_is_informative():
    def with_controls(right, wrong):
        return {**all_arms([0] * 7), "controls": {"right": {"judge_yes": right}, "wrong": {"judge_yes": wrong}}}
    sharp = [with_controls(1, 0)] * 7 + [with_controls(1, 1)]
    controls = judge_controls(sharp, min_accuracy=0.75)
    assert controls["accuracy"] == pytest.approx(15 / 16) and controls["informative"]
    assert (controls["right_yes_rate"], controls["wrong_yes_rate"]) == (1, 1 / 8)
    says_yes = [with_controls(1, 1)] * 6 + [with_controls(None, 1)]
    controls = judge_controls(says_yes, min_accuracy=0.75)
    assert controls["accuracy"] == pytest.approx(6 / 13) and not controls["informative"]
    assert controls["unreadable"] == 1
    assert eval_metrics(says_yes, n_resamples=10)["judge"]["informative"] is False


def test_retrieval_metrics_hand_computed_on_the_answerable_questions():
    hits = [[{"text": "dvc push uploads outputs", "chunk_id": "a"}], [{"text": "nothing related", "chunk_id": "b"}],
            [{"text": "dvc push", "chunk_id": "d"}]]
    metrics = retrieval_metrics(hits, ["dvc push uploads outputs", "The rank is 16.", None], hits, ["a", "c", "e"])
    assert metrics["questions"] == 2
    assert metrics["eval_supported"] == 0.5 and metrics["eval_passage_recall"] == pytest.approx(0.5)
    assert metrics["val_own_chunk_recall_at_k"] == pytest.approx(1 / 3) and metrics["val_pairs"] == 3


def report_predictions(deltas):
    answers = {arm: f"{arm} | answer" for arm in ARMS}
    return [{"index": i, "question": f"q{i}?", "reference": f"ref {i}", "answers": answers, "retrieval_hit": i % 2 == 0,
             "answerable": True, "scores": {arm: arm_scores(0.5 + (d if arm == BOT else 0)) for arm in ARMS}}
            for i, d in enumerate(deltas)]


def test_report_opens_with_the_verdict_states_every_arm_and_ranks_by_token_f1(tmp_path):
    predictions = report_predictions([0.4, -0.3, 0.0, 0.2])
    predictions[1]["scores"][CEILING]["f1"] = 0.9
    metrics = eval_metrics(predictions, n_resamples=50)
    metrics["retrieval"] = {"k": 3, "questions": 4, "eval_supported": 0.5, "eval_passage_recall": 0.4, "val_pairs": 4,
                            "val_own_chunk_recall_at_k": 0.75}
    report = render_report(predictions, metrics, k=2, chart="eval.png")
    first = report.split("\n")[2]
    assert first.startswith("**Verdict:** on token F1, the bot: evidence first (a quote of the passages, or a refusal) "
                            "(0.575) **does not beat** the best answer that needs no model, the top passage as it is "
                            "(no model) (0.500)")
    assert "no difference can be claimed" in first and "The ceiling" in first
    assert "own chunk is among the top 3 for 75% (recall@3)" in report
    table = report.split("| arm | F1 |")[1].split("\n\n")[0]
    for arm in ARMS:
        assert f"| {ARM_NAMES[arm]} | " in table
    rows = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]]
    assert rows[0] == ARM_NAMES[BOT] and rows[-1] == ARM_NAMES[CEILING]   # ranked by F1, the ceiling last
    assert "![token F1 per arm with its 95% interval](eval.png)" in report
    helped, hurt = report.split("## Where the bot gained most over the top passage")[1].split("## Where the bot lost most")
    assert helped.index("| 0 | q0?") < helped.index("| 3 | q3?") and "| 1 |" not in helped
    assert hurt.index("| 1 | q1?") < hurt.index("| 2 | q2?")
    assert [sum(line.startswith("| ") and line[2].isdigit() for line in part.splitlines())
            for part in (helped, hurt)] == [2, 2]           # k rows each, whatever the retrieval k
    assert "tuned_rag \\| answer" in report  # a | inside a cell does not break the table
    assert "No answer of this run is graded yet" in report
    chart = tmp_path / "eval.png"
    render_chart(metrics, chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 2000


def test_without_closed_book_the_students_answer_with_passages_only_and_the_report_says_so(tmp_path):
    from faqforge.evaluation.answers import arm_chats
    hits = [[{"text": "dvc push uploads the outputs.", "doc": "data/docs/guide.md", "section": "Remote"}]]
    default = arm_chats(["How do I upload?"], hits, "Be brief.", closed_book=False)   # evaluate.closed_book: false
    assert list(default) == ["base_rag", "tuned_rag"]
    assert all("dvc push uploads the outputs." in chats[0][-1]["content"] for chats in default.values())
    both = arm_chats(["How do I upload?"], hits, "Be brief.", closed_book=True)
    assert list(both) == list(MODEL_ARMS) and "dvc push" not in both["base_closed"][0][-1]["content"]
    closed = [a for a in ARMS if a.endswith("_closed")]
    predictions = report_predictions([0.4, -0.3, 0.0, 0.2])
    for p in predictions:
        p["answers"], p["scores"] = ({a: v for a, v in p[key].items() if a not in closed} for key in ("answers", "scores"))
    metrics = eval_metrics(predictions, n_resamples=20)
    assert set(metrics["arms"]) == set(ARMS) - set(closed)
    assert metrics["verdict"]["arm"] == BOT and not any("closed" in c for c in metrics["comparisons"])
    report = render_report(predictions, metrics)
    assert "closed book" not in report and "with retrieval (the top" in report
    every_arm = report_predictions([0.1, 0.2])
    assert "each closed book (the question alone)" in render_report(every_arm, eval_metrics(every_arm, n_resamples=20))


def test_report_marks_an_uninformative_judge():
    predictions = report_predictions([0.1, 0.2])
    for p in predictions:
        for arm in MODEL_ARMS:
            p["scores"][arm]["judge_yes"] = 1
        p["controls"] = {"right": {"judge_yes": 1}, "wrong": {"judge_yes": 1}}
    metrics = eval_metrics(predictions, n_resamples=20)
    metrics["judge"]["model"] = "embedded:tiny"
    report = render_report(predictions, metrics)
    assert "| 1.000 (not informative) |" in report
    assert "The judge (embedded:tiny) was also shown" in report and "**not informative**" in report


def served_evaluation(base_url, **changes):
    """The evaluate section asking a server at `base_url` (key in TEST_KEY), 32 tokens greedy."""
    return section("evaluate", max_new_tokens=32, temperature=0.0, seed=0,
                   served={"base_url": base_url, "api_key_env": "TEST_KEY"}, **changes)


def test_served_models_answer_by_name_over_http(openai_server, monkeypatch):
    from faqforge.evaluation.answers import served_answers
    from tests.support.openai_server import teacher_reply
    monkeypatch.setenv("TEST_KEY", "secret")
    chats = [[{"role": "system", "content": "Be brief."},
              {"role": "user", "content": f"How do I configure option number {i} of the pipeline?"}] for i in range(3)]
    params = served_evaluation(openai_server.base_url)
    replies = served_answers({"base_closed": chats, "tuned_rag": chats}, params)
    assert [r["text"] for r in replies["tuned_rag"]] == [teacher_reply(c) for c in chats] == \
        [r["text"] for r in replies["base_closed"]]
    asked = [(r["body"]["model"], r["body"]["temperature"], r["body"]["max_tokens"], r["auth"])
             for r in openai_server.requests]
    assert sorted(asked) == [("base", 0.0, 32, "Bearer secret")] * 3 + [("chatbot", 0.0, 32, "Bearer secret")] * 3
    assert all("stop" not in r["body"] for r in openai_server.requests)
    served_answers({"tuned_rag": chats[:1]}, served_evaluation(openai_server.base_url, stop=["\nQuestion:"]))
    assert openai_server.requests[-1]["body"]["stop"] == ["\nQuestion:"]   # evaluate.stop reaches the server


def test_a_failed_request_to_the_served_model_stops_the_evaluation():
    from faqforge.evaluation.answers import served_answers
    from tests.support.openai_server import OpenAIServer
    with OpenAIServer(faults=["404"]) as server:
        params = section("evaluate", served={"base_url": server.base_url, "api_key_env": "TEST_KEY", "max_retries": 0})
        with pytest.raises(PipelineError, match=r"evaluate.served: 1 of 2 requests .* for model 'base' failed"):
            served_answers({"base_closed": [[{"role": "user", "content": "q?"}]] * 2}, params)


def test_judge_prompt_has_the_examples_as_turns_and_the_answer_last():
    from faqforge.evaluation.judge import judge_messages
    params = section("evaluate").judge
    messages = judge_messages("How do I run it?", "Use make run.", "Run make run.", params)
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * len(params.examples) + ["user"]
    assert "Verdict: NO" in messages[-2]["content"] or "Verdict: YES" in messages[-2]["content"]
    assert messages[-1]["content"] == "Question: How do I run it?\nReference answer: Use make run.\n" \
                                      "Answer to grade: Run make run."




JUDGED = [("How do I upload the outputs?", "Run dvc push after dvc remote add."),
          ("Which rank does the adapter use?", "finetune.lora_r sets it, 16 by default."),
          ("Where do documents go?", "Put them in data/docs/ and run dvc repro."),
          ("How long may a chunk be?", "ingest.chunk_words caps it at 300 words.")]


def judged_predictions(server, tmp_path):
    from faqforge.evaluation.judge import judge_answers
    from faqforge.teacher.client import Teacher
    from tests.support.sections import teacher_at
    predictions = [{"index": i, "question": q, "reference": r,
                    "answers": {"base_closed": "I do not know.", "tuned_closed": "Use the settings file.",
                                "base_rag": r.split(",")[0], "tuned_rag": r},
                    "scores": {}} for i, (q, r) in enumerate(JUDGED)]
    for p in predictions:
        p["scores"] = {arm: answer_scores(p["reference"], answer) for arm, answer in p["answers"].items()}
    judge = section("evaluate", judge={"arms": list(MODEL_ARMS)}).judge
    judge_answers(Teacher(teacher_at(server), cache_dir=tmp_path / "cache"), predictions, judge)
    assert len(server.answered()) == len(JUDGED) * (len(MODEL_ARMS) + 2)  # every arm, and two controls a question
    assert all(r["body"]["logprobs"] and r["body"]["max_tokens"] == judge.max_tokens for r in server.answered())
    return predictions


def test_a_sharp_judge_over_http_passes_the_controls_and_separates_the_arms(tmp_path):
    from tests.support.openai_server import OpenAIServer
    with OpenAIServer(sharp_judge=True) as server:
        predictions = judged_predictions(server, tmp_path)
    assert [p["controls"]["right"]["judge_yes"] for p in predictions] == [1] * 4
    assert [p["controls"]["wrong"]["judge_yes"] for p in predictions] == [0] * 4
    assert all(p["scores"]["tuned_rag"]["judge_p_yes"] > 0.8 for p in predictions)  # read from the logprobs
    metrics = eval_metrics(predictions, n_resamples=20)
    assert metrics["judge"]["accuracy"] == 1 and metrics["judge"]["informative"]
    assert metrics["arms"]["tuned_rag"]["judge_yes"]["mean"] == 1 and metrics["arms"]["base_closed"]["judge_yes"]["mean"] == 0
    assert "It separates them" in render_report(predictions, metrics)


def test_a_judge_that_says_yes_to_everything_is_marked_not_informative(tmp_path, openai_server):
    predictions = judged_predictions(openai_server, tmp_path)
    metrics = eval_metrics(predictions, n_resamples=20)
    assert metrics["judge"]["wrong_yes_rate"] == 1 and metrics["judge"]["accuracy"] == 0.5
    assert not metrics["judge"]["informative"]
    assert "**not informative**" in render_report(predictions, metrics)


def test_the_judge_grades_only_the_arms_asked_for_and_names_a_wrong_one(tmp_path, openai_server):
    from faqforge.evaluation.judge import judge_answers
    from faqforge.teacher.client import Teacher
    from tests.support.sections import teacher_at
    judge = section("evaluate", judge={"arms": ["tuned_rag"]}).judge
    predictions = [{"question": q, "reference": r, "answers": {arm: r for arm in MODEL_ARMS},
                    "scores": {arm: {} for arm in MODEL_ARMS}} for q, r in JUDGED]
    judge_answers(Teacher(teacher_at(openai_server), cache_dir=tmp_path), predictions, judge)
    assert len(openai_server.answered()) == len(JUDGED) * 3          # one arm and the two controls
    assert all("judge_yes" in p["scores"]["tuned_rag"] and not p["scores"]["base_rag"] for p in predictions)
    with pytest.raises(PipelineError, match=r"evaluate.judge.arms.0: input should be 'base_closed', "):
        section("evaluate", judge={"arms": ["tuned"]})


def test_student_answers_are_cached_by_content(tmp_path, tiny_model, monkeypatch):
    import shutil

    import faqforge.evaluation.answers as evaluate
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    shutil.copytree(tiny_model, base)
    shutil.copytree(tiny_model, tuned)
    chats = {arm: [[{"role": "user", "content": q}] for q in ("How do I push?", "Hi")] for arm in MODEL_ARMS}
    params = section("evaluate", max_new_tokens=4, temperature=0.0, batch_size=2, seed=0)
    first, stats = evaluate.local_answers(chats, params, str(base), str(tuned), cache_dir=tmp_path / "cache")
    # base and tuned are copies of one checkpoint and every arm asks the same two prompts: two requests,
    # answered once and found in the cache by the three arms after the first
    assert (stats["answers"], stats["generated"], stats["cache_hits"]) == (8, 2, 6) and stats["generated_tokens"] > 0
    texts = {arm: [r["text"] for r in replies] for arm, replies in first.items()}
    assert all(texts[arm] == texts["base_closed"] for arm in MODEL_ARMS)
    entries = list(cached_entries(tmp_path / "cache"))
    assert len({json.dumps(e["request"], sort_keys=True) for e in entries}) == len(entries) == 2
    assert all(e["request"]["model"].startswith("student:") for e in entries)

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")
    monkeypatch.setattr("faqforge.models.local.load_model", no_model)
    again, stats = evaluate.local_answers(chats, params, str(base), str(tuned), cache_dir=tmp_path / "cache")
    assert stats == {"answers": 8, "generated": 0, "generated_tokens": 0, "cache_hits": 8}
    assert {arm: [r["text"] for r in replies] for arm, replies in again.items()} == texts
    monkeypatch.undo()
    (tuned / "generation_config.json").write_text('{"do_sample": false, "note": "another checkpoint"}')
    _, stats = evaluate.local_answers(chats, params, str(base), str(tuned), cache_dir=tmp_path / "cache")
    assert stats["generated"] == 2 and stats["cache_hits"] == 6     # the tuned arms: a new fingerprint
    _, stats = evaluate.local_answers(chats, changed(params, max_new_tokens=5), str(base), str(tuned),
                                      cache_dir=tmp_path / "cache")
    assert stats["generated"] == 4                                   # other decoding: both models again
