"""Base vs fine-tuned student on the human-written eval set.

    dvc repro evaluate          # or: python stages/evaluate.py

Both answer with the same chat template, system prompt and decoding; the base
answers come from the same model with the adapter disabled.
"""

from faqforge.evaluate import eval_metrics, rouge_scores
from faqforge.io import load_params, read_evalset, write_json, write_jsonl
from faqforge.generation import generate_chat
from faqforge.models import load_model
from faqforge.split import question_messages
from faqforge.stage import run

EVALSET = "data/eval/evalset.json"


def main():
    from peft import PeftModel
    params = load_params(sections=["evaluate", "split"])
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
    write_jsonl("data/eval/predictions.jsonl", predictions)
    metrics = eval_metrics(predictions, p["bootstrap_resamples"], p["seed"])
    write_json("metrics/eval.json", metrics)
    write_json("plots/eval_per_question.json",
               [{"index": x["index"], "rougeL_base": x["scores"]["base"]["rougeL"],
                 "rougeL_tuned": x["scores"]["tuned"]["rougeL"]} for x in predictions])
    r = metrics["rougeL"]
    print(f"evaluate: {len(evalset)} questions, ROUGE-L base {r['base']:.3f} -> tuned {r['tuned']:.3f} "
          f"(delta {r['delta']:+.3f}, 95% CI {r['delta_ci95'][0]:+.3f}..{r['delta_ci95'][1]:+.3f})")


if __name__ == "__main__":
    run(main)
