"""Does the bot answer better than its search results? Every arm on the human-written eval set.

    dvc repro evaluate          # or: python stages/evaluate.py

The bot answers evidence first (a quote of the retrieved passages, or a refusal: as serve and
chat do); base and tuned students answer with the top split.raft.passages passages (the training
layout) and, with evaluate.closed_book, without them, in-process (cached in cache/llm/evaluate/) or from the server
evaluate.served.base_url names; beside them, arms that need no model (the top passage; the
sentence sharing most words with the question) and a ceiling. Scores: token F1 (ranking and
verdict), refusals, citations, reference recall, the judge, people's grades
(data/eval/grades.jsonl). Writes data/eval/predictions.jsonl, metrics/eval.json,
plots/eval_per_question.json and reports/eval.md with its chart.
"""

from faqforge.core.config import load_config
from faqforge.core.grades import GRADES_FILE
from faqforge.core.io import read_evalset, read_jsonl, write_json, write_jsonl, write_text
from faqforge.core.stage import run
from faqforge.documents.retrieval import Retriever
from faqforge.evaluation.answers import arm_chats, local_answers, served_answers, student_names
from faqforge.evaluation.eval_report import render_chart, render_report, verdict_line
from faqforge.evaluation.graded import apply_grades
from faqforge.evaluation.judge import judge_answers
from faqforge.evaluation.scores import ARMS, eval_metrics, index_figures, score_predictions
from faqforge.evaluation.search_arms import search_answers
from faqforge.teacher.client import Teacher

EVALSET, CACHE, CHART = "data/eval/evalset.json", "cache/llm/evaluate", "reports/eval.png"
RETRIEVER_METRICS = "metrics/retriever.json"   # the retriever stage's validation, shown in the report


def main():
    config = load_config(sections=["evaluate", "split", "student", "teacher"])
    p, k = config["evaluate"], config["split"].raft.passages
    evalset = read_evalset(EVALSET)
    retriever = Retriever()
    hits = retriever.search([item["question"] for item in evalset], k)
    chats = arm_chats([item["question"] for item in evalset], hits, config["split"].system_prompt, p.closed_book)
    if p.served.base_url:
        replies, students = served_answers(chats, p), None
    else:  # cached by content beside the judge's verdicts: a rerun that changes no input generates nothing
        replies, students = local_answers(chats, p, cache_dir=CACHE, dtype=config["student"].dtype)
    replies.update(search_answers(evalset, hits, retriever.abstain_below))   # the bot's evidence, no-model arms
    predictions = score_predictions(evalset, hits, replies)
    teacher = Teacher(config["teacher"], cache_dir=CACHE)
    if p.judge.enabled:
        judge_answers(teacher, predictions, p.judge)
    grades = apply_grades(predictions, GRADES_FILE)
    write_jsonl("data/eval/predictions.jsonl", predictions)
    metrics = {**eval_metrics(predictions, p.bootstrap_resamples, p.seed,
                              min_control_accuracy=p.judge.min_control_accuracy), "grades": grades}
    metrics["retrieval"] = index_figures(retriever, evalset, hits, read_jsonl("data/val.jsonl"), k, RETRIEVER_METRICS)
    metrics.get("judge", {})["model"] = teacher.model_id
    metrics.update({"students": students} if students else {}, models=student_names(p.served), teacher=teacher.stats)
    write_json("metrics/eval.json", metrics)
    render_chart(metrics, CHART)
    write_text("reports/eval.md", render_report(predictions, metrics, chart=CHART.split("/")[-1]))
    write_json("plots/eval_per_question.json", [{"index": x["index"], **{arm: x["scores"][arm]["f1"] for arm in ARMS
                                                                         if arm in x["scores"]}} for x in predictions])
    print(f"evaluate: {len(evalset)} questions; {verdict_line(metrics).replace('**', '')} See reports/eval.md")


if __name__ == "__main__":
    run(main)
