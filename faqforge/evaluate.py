"""Scoring base vs tuned answers against the human-written references.

For each metric: the mean for base and tuned, the paired difference with a
bootstrap 95% confidence interval, and the tuned-vs-base win rate. Metrics are
ROUGE-1/2/L and the LLM judge: the teacher compares each answer with the
reference and writes a reason, a YES/NO verdict and a 1-5 score.
"""

import random
import tempfile

from faqforge.curate import parse_verdict
from faqforge.generation import generate_chat
from faqforge.io import PipelineError
from faqforge.llm import Teacher
from faqforge.models import load_model

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
    """Summary of paired per-item scores: means, delta, its CI, win/tie/loss rates
    (None where there is nothing to compare)."""
    n = len(base)
    if not n:
        return None
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


def local_answers(chats, params, base="models/base", adapter="models/adapter"):
    """(base, tuned) replies from the student in-process: the same model
    answers twice, with the adapter disabled and enabled, in batches."""
    model, tokenizer = load_model(base, adapter=adapter)
    settings = {"max_new_tokens": params["max_new_tokens"], "temperature": params["temperature"],
                "batch_size": params["batch_size"], "seed": params["seed"]}
    tuned = generate_chat(model, tokenizer, chats, desc="tuned answers", **settings)
    with model.disable_adapter():
        base_replies = generate_chat(model, tokenizer, chats, desc="base answers", **settings)
    return base_replies, tuned


def served_answers(chats, params, teacher_params):
    """(base, tuned) replies from the models an OpenAI-compatible server serves
    under `served.base_model` and `served.tuned_model`, with the same decoding
    as in-process. Not cached: a server can serve a new adapter under the same
    name. Any failed request stops the evaluation rather than score a gap."""
    served = params["served"]
    replies = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in (served["base_model"], served["tuned_model"]):
            client = Teacher({**teacher_params, "backend": "openai", "model": name, "base_url": served["base_url"],
                              "api_key_env": served["api_key_env"], "temperature": params["temperature"],
                              "max_tokens": params["max_new_tokens"], "seed": params["seed"],
                              "usd_per_1m_prompt_tokens": 0, "usd_per_1m_completion_tokens": 0,
                              "budget_usd": None}, cache_dir=f"{scratch}/{len(replies)}")
            answers = client.chat(chats, desc=f"{name} answers")
            failed = [r for r in answers if r.get("error")]
            if failed:
                raise PipelineError(f"params.yaml: evaluate.served: {len(failed)} of {len(chats)} requests to "
                                    f"{served['base_url']} for model {name!r} failed ({failed[0]['error']}: "
                                    f"{failed[0].get('message')}); check the server and the model names it "
                                    "serves (GET /v1/models).")
            replies.append(answers)
    return replies


def judge_messages(question, reference, answer, params):
    """The chat asking the teacher to grade one answer against the reference,
    after the worked examples from params as earlier turns."""
    messages = [{"role": "system", "content": params["system_prompt"].strip()}]
    for example in params.get("examples") or []:
        messages += [{"role": "user", "content": params["user_prompt"].format(
                          question=example["question"], reference=example["reference"],
                          answer=example["answer"]).strip()},
                     {"role": "assistant", "content": example["reply"].strip()}]
    messages.append({"role": "user", "content": params["user_prompt"].format(
        question=question, reference=reference, answer=answer).strip()})
    return messages


def judge_scores(reply, logprobs=None):
    """Per-item judge scores from one reply: `judge_yes` (1/0; P(YES) >= 0.5
    decides when the reply has logprobs, else the written verdict),
    `judge_score` (1-5) and `judge_p_yes`; None where the reply says nothing."""
    verdict = parse_verdict(reply, logprobs)
    if verdict["p_yes"] is not None:
        yes = int(verdict["p_yes"] >= 0.5)
    else:
        yes = None if verdict["result"] is None else int(verdict["result"] == "YES")
    return {"judge_yes": yes, "judge_score": verdict["score"], "judge_p_yes": verdict["p_yes"]}, verdict["reason"]


def paired(predictions, key):
    """(base, tuned) values of `key` over the items where both have one."""
    both = [(p["scores"]["base"].get(key), p["scores"]["tuned"].get(key)) for p in predictions]
    both = [(b, t) for b, t in both if b is not None and t is not None]
    return [b for b, _ in both], [t for _, t in both]


def judge_metrics(predictions, n_resamples=2000, seed=0):
    """The judge's verdicts: YES rates of base and tuned with the paired
    difference and its CI, and the same for the 1-5 score; items whose verdict
    could not be read on either side are counted, not guessed."""
    base, tuned = paired(predictions, "judge_yes")
    yes = compare(base, tuned, n_resamples, seed)
    metrics = {"judged": len(base), "unreadable": len(predictions) - len(base)}
    if yes:
        metrics.update(base_yes_rate=yes["base"], tuned_yes_rate=yes["tuned"], yes_rate_delta=yes["delta"],
                       yes_rate_delta_ci95=yes["delta_ci95"], win_rate=yes["win_rate"], tie_rate=yes["tie_rate"],
                       loss_rate=yes["loss_rate"])
    metrics["score"] = compare(*paired(predictions, "judge_score"), n_resamples, seed)
    return metrics


def eval_metrics(predictions, n_resamples=2000, seed=0):
    """metrics/eval.json content from prediction records holding per-item scores."""
    metrics = {"n_questions": len(predictions)}
    for t in ROUGE_TYPES:
        metrics[t] = compare([p["scores"]["base"][t] for p in predictions],
                             [p["scores"]["tuned"][t] for p in predictions], n_resamples, seed)
    if any("judge_yes" in p["scores"]["base"] for p in predictions):
        metrics["judge"] = judge_metrics(predictions, n_resamples, seed)
    return metrics


def _cell(text, limit=300):
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _row(name, m):
    if not m:
        return f"| {name} | - | - | - | - | - |"
    lo, hi = m["delta_ci95"]
    return (f"| {name} | {m['base']:.3f} | {m['tuned']:.3f} | {m['delta']:+.3f} | {lo:+.3f} .. {hi:+.3f} | "
            f"{m['win_rate']:.0%} / {m['tie_rate']:.0%} / {m['loss_rate']:.0%} |")


def render_report(predictions, metrics, k=5):
    """reports/eval.md: the headline table, then the questions where tuning
    helped most and hurt most (by ROUGE-L), base and tuned side by side."""
    models = metrics.get("models", {"base": "the base student", "tuned": "the base with the adapter"})
    lines = ["# Evaluation: base vs fine-tuned student", "",
             f"{metrics['n_questions']} questions of data/eval/evalset.json, answered by {models['base']} and by "
             f"{models['tuned']}, with the same chat template, system prompt and decoding. Differences are tuned minus base, paired by question, with a bootstrap 95% interval; "
             "win / tie / loss count the questions where tuned scored higher / the same / lower.", "",
             "| metric | base | tuned | delta | 95% CI | win / tie / loss |", "|---|---|---|---|---|---|"]
    lines += [_row(f"ROUGE-{t[5:]}", metrics[t]) for t in ROUGE_TYPES]
    judge = metrics.get("judge")
    if judge:
        yes = judge.get("base_yes_rate") is not None and {
            "base": judge["base_yes_rate"], "tuned": judge["tuned_yes_rate"], "delta": judge["yes_rate_delta"],
            "delta_ci95": judge["yes_rate_delta_ci95"], "win_rate": judge["win_rate"],
            "tie_rate": judge["tie_rate"], "loss_rate": judge["loss_rate"]}
        lines += [_row("judge YES rate", yes), _row("judge score (1-5)", judge["score"]), "",
                  f"The judge ({judge.get('model', 'the teacher')}) wrote a readable verdict on both answers for "
                  f"{judge['judged']} of {metrics['n_questions']} questions ({judge['unreadable']} left out). "
                  "A judge is only as good as its model: act on these rows with a strong teacher."]
    delta = sorted(predictions, key=lambda p: p["scores"]["tuned"]["rougeL"] - p["scores"]["base"]["rougeL"])
    for title, chosen in (("Where tuning helped most", delta[::-1][:k]), ("Where tuning hurt most", delta[:k])):
        lines += ["", f"## {title}", "", "| # | question | reference | base | tuned | ROUGE-L base -> tuned |",
                  "|---|---|---|---|---|---|"]
        for p in chosen:
            b, t = p["scores"]["base"]["rougeL"], p["scores"]["tuned"]["rougeL"]
            lines.append(f"| {p['index']} | {_cell(p['question'])} | {_cell(p['reference'])} | {_cell(p['base'])} | "
                         f"{_cell(p['tuned'])} | {b:.2f} -> {t:.2f} |")
    return "\n".join(lines) + "\n"
