"""Four arms on the human-written eval set: base and tuned, closed book and with retrieval.

    dvc repro evaluate          # or: python stages/evaluate.py

Every arm answers with the same chat template, system prompt and greedy
decoding; the retrieval arms see the top split.raft.passages passages of
data/index/ in the layout the student was trained with (faqforge.core.chat_format). The
base answers come from the same model with the adapter disabled (LoRA) or from
models/base (a full fine-tune). With evaluate.served.base_url set, the arms
answer from an OpenAI-compatible server by name instead (e.g. vLLM serving the
adapter as `chatbot`). In-process answers are cached by content (the
checkpoint's files, the prompt, the decoding) in cache/llm/evaluate/, beside
the judge's verdicts, so a rerun that changes none of them generates nothing.
Scores: the factual score, ROUGE, citations, and the teacher as judge, checked
on known-right and known-wrong controls. Writes data/eval/predictions.jsonl, metrics/eval.json,
plots/eval_per_question.json, reports/eval.md and its chart reports/eval.png.
"""

from faqforge.core.chat_format import question_messages
from faqforge.core.config import load_params
from faqforge.core.io import read_evalset, read_jsonl, write_json, write_jsonl, write_text
from faqforge.core.stage import run
from faqforge.documents.retrieval import Retriever
from faqforge.evaluation.answers import local_answers, served_answers
from faqforge.evaluation.eval_report import render_chart, render_report
from faqforge.evaluation.factual import supported
from faqforge.evaluation.judge import judge_answers
from faqforge.evaluation.scores import ARMS, answer_scores, eval_metrics, retrieval_metrics
from faqforge.teacher.client import Teacher

EVALSET = "data/eval/evalset.json"
CACHE = "cache/llm/evaluate"
CHART = "reports/eval.png"


def main():
    params = load_params(sections=["evaluate", "split", "teacher"])
    p, split = params["evaluate"], params["split"]
    system_prompt, k = split["system_prompt"], split["raft"]["passages"]
    evalset = read_evalset(EVALSET)
    questions = [item["question"] for item in evalset]
    references = [item["answer"] for item in evalset]
    retriever = Retriever()
    hits = retriever.search(questions, k)
    chats = {arm: [question_messages(q, system_prompt, h if arm.endswith("_rag") else None)
                   for q, h in zip(questions, hits)] for arm in ARMS}
    if p["served"]["base_url"]:
        replies, students = served_answers(chats, p, params["teacher"]), None
    else:  # cached by content beside the judge's verdicts: a rerun that changes no input generates nothing
        replies, students = local_answers(chats, p, cache_dir=CACHE)
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
    teacher = Teacher(params["teacher"], cache_dir=CACHE)
    if p["judge"]["enabled"]:
        judge_answers(teacher, predictions, p["judge"])
    write_jsonl("data/eval/predictions.jsonl", predictions)
    metrics = eval_metrics(predictions, p["bootstrap_resamples"], p["seed"],
                           min_control_accuracy=p["judge"]["min_control_accuracy"])
    val = [r for r in read_jsonl("data/val.jsonl") if r.get("chunk_id") and r.get("kind") != "refusal"]
    val_hits = retriever.search([r["question"] for r in val], k) if val else None
    metrics["retrieval"] = retrieval_metrics(hits, references, val_hits, [r["chunk_id"] for r in val])
    metrics["retrieval"]["k"] = k
    if "judge" in metrics:
        metrics["judge"]["model"] = teacher.model_id
    served = p["served"]
    metrics["models"] = ({side: f"{served[side + '_model']} at {served['base_url']}" for side in ("base", "tuned")}
                         if served["base_url"] else {"base": "models/base", "tuned": "models/adapter"})
    if students:
        metrics["students"] = students
    metrics["teacher"] = teacher.stats
    write_json("metrics/eval.json", metrics)
    render_chart(metrics, CHART)
    write_text("reports/eval.md", render_report(predictions, metrics, chart=CHART.split("/")[-1]))
    write_json("plots/eval_per_question.json",
               [{"index": x["index"], **{arm: x["scores"][arm]["factual"] for arm in ARMS}} for x in predictions])
    arms = metrics["arms"]
    print("evaluate: factual " + ", ".join(f"{arm} {arms[arm]['factual']['mean']:.3f}" for arm in ARMS)
          + f" ({len(evalset)} questions); see reports/eval.md")


if __name__ == "__main__":
    run(main)
