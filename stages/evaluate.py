"""Four arms on the human-written eval set: base and tuned, closed book and with retrieval.

    dvc repro evaluate          # or: python stages/evaluate.py

Every arm answers with the same chat template, system prompt and greedy decoding; the
retrieval arms see the top split.raft.passages passages of data/index/ in the training
layout. The students answer in-process (cached by content in cache/llm/evaluate/) or, with
evaluate.served.base_url, from an OpenAI-compatible server by name. Scores: the factual
score, ROUGE, citations, and the teacher as judge, checked on known-right and known-wrong
controls. Writes data/eval/predictions.jsonl, metrics/eval.json, plots/eval_per_question.json,
reports/eval.md and reports/eval.png.
"""

from faqforge.core.config import load_params
from faqforge.core.io import read_evalset, read_jsonl, write_json, write_jsonl, write_text
from faqforge.core.stage import run
from faqforge.documents.retrieval import Retriever
from faqforge.evaluation.answers import arm_chats, local_answers, served_answers, student_names
from faqforge.evaluation.eval_report import render_chart, render_report
from faqforge.evaluation.judge import judge_answers
from faqforge.evaluation.scores import ARMS, eval_metrics, retrieval_metrics, score_predictions
from faqforge.teacher.client import Teacher

EVALSET, CACHE, CHART = "data/eval/evalset.json", "cache/llm/evaluate", "reports/eval.png"


def main():
    params = load_params(sections=["evaluate", "split", "student", "teacher"])
    p, k = params["evaluate"], params["split"]["raft"]["passages"]
    evalset = read_evalset(EVALSET)
    retriever = Retriever()
    hits = retriever.search([item["question"] for item in evalset], k)
    chats = arm_chats([item["question"] for item in evalset], hits, params["split"]["system_prompt"])
    if p["served"]["base_url"]:
        replies, students = served_answers(chats, p, params["teacher"]), None
    else:  # cached by content beside the judge's verdicts: a rerun that changes no input generates nothing
        replies, students = local_answers(chats, p, cache_dir=CACHE, dtype=params["student"]["dtype"])
    predictions = score_predictions(evalset, hits, replies)
    teacher = Teacher(params["teacher"], cache_dir=CACHE)
    if p["judge"]["enabled"]:
        judge_answers(teacher, predictions, p["judge"])
    write_jsonl("data/eval/predictions.jsonl", predictions)
    metrics = eval_metrics(predictions, p["bootstrap_resamples"], p["seed"],
                           min_control_accuracy=p["judge"]["min_control_accuracy"])
    val = [r for r in read_jsonl("data/val.jsonl") if r.get("chunk_id") and r.get("kind") != "refusal"]
    val_hits = retriever.search([r["question"] for r in val], k) if val else None
    metrics["retrieval"] = {**retrieval_metrics(hits, [item["answer"] for item in evalset], val_hits,
                                                [r["chunk_id"] for r in val]), "k": k}
    if "judge" in metrics:
        metrics["judge"]["model"] = teacher.model_id
    metrics["models"] = student_names(p["served"])
    metrics.update({"students": students} if students else {}, teacher=teacher.stats)
    write_json("metrics/eval.json", metrics)
    render_chart(metrics, CHART)
    write_text("reports/eval.md", render_report(predictions, metrics, chart=CHART.split("/")[-1]))
    write_json("plots/eval_per_question.json",
               [{"index": x["index"], **{arm: x["scores"][arm]["factual"] for arm in ARMS}} for x in predictions])
    print("evaluate: factual " + ", ".join(f"{arm} {metrics['arms'][arm]['factual']['mean']:.3f}" for arm in ARMS)
          + f" ({len(evalset)} questions); see reports/eval.md")


if __name__ == "__main__":
    run(main)
