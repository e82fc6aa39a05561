"""Base vs fine-tuned student on the human-written eval set.

    dvc repro evaluate          # or: python stages/evaluate.py

Both answer with the same chat template, system prompt and decoding; the base
answers come from the same model with the adapter disabled. With
evaluate.served.base_url set, both answer from an OpenAI-compatible server by
name instead (e.g. vLLM serving the adapter as `chatbot`). Scores: ROUGE, and
the teacher as judge of each answer against the reference (cached in
cache/llm/evaluate/ like every teacher call). Writes data/eval/predictions.jsonl,
metrics/eval.json, plots/eval_per_question.json and reports/eval.md.
"""

from faqforge.evaluate import (eval_metrics, judge_messages, judge_scores, local_answers, render_report,
                               rouge_scores, served_answers)
from faqforge.io import load_params, read_evalset, write_json, write_jsonl, write_text
from faqforge.llm import Teacher
from faqforge.split import question_messages
from faqforge.stage import run

EVALSET = "data/eval/evalset.json"


def main():
    params = load_params(sections=["evaluate", "split", "teacher"])
    p, system_prompt = params["evaluate"], params["split"]["system_prompt"]
    evalset = read_evalset(EVALSET)
    chats = [question_messages(item["question"], system_prompt) for item in evalset]
    if p["served"]["base_url"]:
        base, tuned = served_answers(chats, p, params["teacher"])
    else:
        base, tuned = local_answers(chats, p)
    references = [item["answer"] for item in evalset]
    base_scores = rouge_scores(references, [r["text"] for r in base])
    tuned_scores = rouge_scores(references, [r["text"] for r in tuned])
    predictions = [{"index": i, "question": item["question"], "reference": item["answer"],
                    "base": b["text"], "tuned": t["text"], "scores": {"base": bs, "tuned": ts}}
                   for i, (item, b, t, bs, ts) in enumerate(zip(evalset, base, tuned, base_scores, tuned_scores))]
    teacher = Teacher(params["teacher"], cache_dir="cache/llm/evaluate")
    if p["judge"]["enabled"]:
        judge(teacher, predictions, p["judge"])
    write_jsonl("data/eval/predictions.jsonl", predictions)
    metrics = eval_metrics(predictions, p["bootstrap_resamples"], p["seed"])
    if "judge" in metrics:
        metrics["judge"]["model"] = teacher.model_id
    served = p["served"]
    metrics["models"] = ({k: f"{served[k + '_model']} at {served['base_url']}" for k in ("base", "tuned")}
                         if served["base_url"] else {"base": "models/base", "tuned": "models/base + models/adapter"})
    metrics["teacher"] = teacher.stats
    write_json("metrics/eval.json", metrics)
    write_text("reports/eval.md", render_report(predictions, metrics))
    write_json("plots/eval_per_question.json",
               [{"index": x["index"], "rougeL_base": x["scores"]["base"]["rougeL"],
                 "rougeL_tuned": x["scores"]["tuned"]["rougeL"]} for x in predictions])
    r = metrics["rougeL"]
    print(f"evaluate: {len(evalset)} questions, ROUGE-L base {r['base']:.3f} -> tuned {r['tuned']:.3f} "
          f"(delta {r['delta']:+.3f}, 95% CI {r['delta_ci95'][0]:+.3f}..{r['delta_ci95'][1]:+.3f}); "
          "see reports/eval.md")


def judge(teacher, predictions, params):
    """The teacher grades every base and tuned answer against the reference;
    the verdicts join each prediction's scores, the reasons go beside them."""
    chats = [judge_messages(x["question"], x["reference"], x[side], params)
             for x in predictions for side in ("base", "tuned")]
    replies = teacher.chat(chats, desc="judging answers", top_logprobs=params["top_logprobs"],
                           max_tokens=params["max_tokens"], temperature=0.0)
    for k, reply in enumerate(replies):
        x, side = predictions[k // 2], ("base", "tuned")[k % 2]
        scores, reason = judge_scores(reply.get("text"), reply.get("logprobs"))
        x["scores"][side].update(scores)
        x.setdefault("judge", {})[side] = reason if not reply.get("error") else f"teacher error {reply['error']}"


if __name__ == "__main__":
    run(main)
