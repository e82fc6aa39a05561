"""Base vs fine-tuned student on the human-written eval set.

    dvc repro evaluate          # or: python stages/evaluate.py

Both answer with the same chat template, system prompt and decoding; the base
answers come from the same model with the adapter disabled. Scores: ROUGE, and
the teacher as judge of each answer against the reference (cached in
cache/llm/evaluate/ like every teacher call). Writes data/eval/predictions.jsonl,
metrics/eval.json, plots/eval_per_question.json and reports/eval.md.
"""

from faqforge.evaluate import eval_metrics, judge_messages, judge_scores, render_report, rouge_scores
from faqforge.io import load_params, read_evalset, write_json, write_jsonl, write_text
from faqforge.generation import generate_chat
from faqforge.llm import Teacher
from faqforge.models import load_model
from faqforge.split import question_messages
from faqforge.stage import run

EVALSET = "data/eval/evalset.json"


def main():
    from peft import PeftModel
    params = load_params(sections=["evaluate", "split", "teacher"])
    p, system_prompt = params["evaluate"], params["split"]["system_prompt"]
    evalset = read_evalset(EVALSET)
    model, tokenizer = load_model("models/base")
    model = PeftModel.from_pretrained(model, "models/adapter")
    model.eval()
    chats = [question_messages(item["question"], system_prompt) for item in evalset]
    settings = {"max_new_tokens": p["max_new_tokens"], "temperature": p["temperature"],
                "batch_size": p["batch_size"], "seed": p["seed"]}
    tuned = generate_chat(model, tokenizer, chats, desc="tuned answers", **settings)
    with model.disable_adapter():
        base = generate_chat(model, tokenizer, chats, desc="base answers", **settings)
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
