"""Scoring four arms of answers against the human-written references.

The arms: the base and the tuned student, each closed book (the question
alone) and with retrieval (the top passages in the prompt, the layout the
student was trained with). For each score: each arm's mean with a bootstrap
95% interval, and for every pair of arms that matters the paired difference
with its interval and the win / tie / loss rates. Scores: the factual score
(faqforge.factual: how much of the reference's content the answer states; the
ranking score, since it does not reward brevity), ROUGE F1, precision and
recall, and the judge's verdict. The judge is checked in the same run on
controls (the reference itself, a known-right answer, and another question's
reference, a known-wrong one); its rows are marked not informative when it
cannot tell them apart.
"""

import random
import tempfile

from faqforge.factual import factual_scores, supported
from faqforge.generation import generate_chat
from faqforge.io import PipelineError
from faqforge.llm import ResponseCache, Teacher, request_key
from faqforge.models import checkpoint_fingerprint, load_model
from faqforge.prompts import citations, strip_citations
from faqforge.verdict import parse_verdict

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
ARMS = ("base_closed", "tuned_closed", "base_rag", "tuned_rag")
ARM_NAMES = {"base_closed": "base, closed book", "tuned_closed": "tuned, closed book",
             "base_rag": "base + retrieval (plain RAG)", "tuned_rag": "tuned + retrieval (RAFT)"}
# (better?, than): the comparisons the report and metrics/eval.json give.
COMPARISONS = (("tuned_rag", "tuned_closed"), ("tuned_rag", "base_rag"), ("tuned_rag", "base_closed"),
               ("base_rag", "base_closed"), ("tuned_closed", "base_closed"))
SCORES = ("factual", "content_recall", "rougeL", "rougeL_precision", "rougeL_recall", "judge_yes")


def rouge_scores(references, predictions):
    """Per-item ROUGE F1 (with stemming) for each type in ROUGE_TYPES, and
    ROUGE-L precision and recall."""
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    rows = []
    for ref, pred in zip(references, predictions):
        scores = scorer.score(ref, pred)
        row = {t: scores[t].fmeasure for t in ROUGE_TYPES}
        row.update(rougeL_precision=scores["rougeL"].precision, rougeL_recall=scores["rougeL"].recall)
        rows.append(row)
    return rows


def answer_scores(reference, answer, passages=None):
    """Every reference-based score of one answer (citations left out of the
    text compared); with the passages it was shown, whether it cites one and
    whether the cited passage holds the answer's facts."""
    text = strip_citations(answer)
    row = {**rouge_scores([reference], [text])[0], **factual_scores(reference, text), "words": len(text.split())}
    if passages is not None:
        cited = [n for n in citations(answer) if 1 <= n <= len(passages)]
        row["cites"] = int(bool(cited))
        row["citation_supported"] = (int(any(supported(text, passages[n - 1]["text"]) for n in cited))
                                     if cited and text else None)
    return row


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


def mean_ci(values, n_resamples=2000, seed=0):
    """{"mean", "ci95"} of per-item values (None where there are none)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": sum(values) / len(values), "ci95": bootstrap_ci(values, n_resamples, seed), "n": len(values)}


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


def load_students(base="models/base", trained="models/adapter"):
    """{"base": model, "tuned": model}, tokenizer: one model with the adapter
    switched off and on (LoRA), or two models (a full fine-tune)."""
    from pathlib import Path
    if (Path(trained) / "adapter_config.json").exists():
        model, tokenizer = load_model(base, adapter=trained)
        return {"base": model, "tuned": model}, tokenizer
    tuned, tokenizer = load_model(trained)
    return {"base": load_model(base)[0], "tuned": tuned}, tokenizer


def local_answers(arm_chats, params, base="models/base", trained="models/adapter", cache_dir=None):
    """({arm: replies}, stats) from the students in-process, in batches; an arm
    name starting with base_ answers with the adapter disabled. With `cache_dir`
    each answer is kept under a hash of the checkpoint's files, the prompt and the
    decoding settings, so a rerun that changes none of them (a report change, a
    forced rerun) generates nothing and loads no model; `stats` counts answers,
    cache hits and the tokens generated."""
    import contextlib
    from pathlib import Path
    settings = {"max_new_tokens": params["max_new_tokens"], "temperature": params["temperature"],
                "seed": params["seed"]}
    adapter = (Path(trained) / "adapter_config.json").exists()
    fingerprints = {"base": checkpoint_fingerprint(base)}
    fingerprints["tuned"] = (fingerprints["base"] + "+" if adapter else "") + checkpoint_fingerprint(trained)
    cache = ResponseCache(cache_dir) if cache_dir else None
    replies, keys, missing = {}, {}, {}
    for arm, chats in arm_chats.items():
        model_id = f"student:{fingerprints[arm.split('_')[0]]}"
        keys[arm] = [request_key(model_id, chat, settings) for chat in chats]
        replies[arm] = [cache.get(key) if cache else None for key in keys[arm]]
        for reply in replies[arm]:
            if reply:
                reply.pop("request", None)
        missing[arm] = [i for i, reply in enumerate(replies[arm]) if reply is None]
    stats = {"answers": sum(len(c) for c in arm_chats.values()), "generated": sum(len(m) for m in missing.values()),
             "generated_tokens": 0}
    stats["cache_hits"] = stats["answers"] - stats["generated"]
    if not stats["generated"]:
        return replies, stats
    models, tokenizer = load_students(base, trained)
    for arm, todo in missing.items():
        if not todo:
            continue
        side = arm.split("_")[0]
        model = models[side]
        shared = side == "base" and models["base"] is models["tuned"]
        with model.disable_adapter() if shared else contextlib.nullcontext():
            answers = generate_chat(model, tokenizer, [arm_chats[arm][i] for i in todo], desc=f"{arm} answers",
                                    batch_size=params["batch_size"], **settings)
        for i, answer in zip(todo, answers):
            replies[arm][i] = answer
            stats["generated_tokens"] += answer["completion_tokens"]
            if cache:   # with the request it answers, as the teacher's entries, for auditing
                request = {"model": f"student:{fingerprints[side]}", "messages": arm_chats[arm][i],
                           "sampling": settings}
                cache.put(keys[arm][i], {**answer, "request": request})
    return replies, stats


def served_answers(arm_chats, params, teacher_params):
    """{arm: replies} from the models an OpenAI-compatible server serves
    under `served.base_model` and `served.tuned_model`, with the same decoding
    as in-process. Not cached: a server can serve a new adapter under the same
    name. Any failed request stops the evaluation rather than score a gap."""
    served = params["served"]
    replies = {}
    with tempfile.TemporaryDirectory() as scratch:
        for arm, chats in arm_chats.items():
            name = served[f"{arm.split('_')[0]}_model"]
            client = Teacher({**teacher_params, "backend": "openai", "model": name, "base_url": served["base_url"],
                              "api_key_env": served["api_key_env"], "temperature": params["temperature"],
                              "max_tokens": params["max_new_tokens"], "seed": params["seed"],
                              "usd_per_1m_prompt_tokens": 0, "usd_per_1m_completion_tokens": 0,
                              "budget_usd": None}, cache_dir=f"{scratch}/{arm}")
            answers = client.chat(chats, desc=f"{arm} answers ({name})")
            failed = [r for r in answers if r.get("error")]
            if failed:
                raise PipelineError(f"params.yaml: evaluate.served: {len(failed)} of {len(chats)} requests to "
                                    f"{served['base_url']} for model {name!r} failed ({failed[0]['error']}: "
                                    f"{failed[0].get('message')}); check the server and the model names it "
                                    "serves (GET /v1/models).")
            replies[arm] = answers
    return replies


def judge_messages(question, reference, answer, params):
    """The chat asking the teacher to grade one answer against the reference,
    after the worked examples from params as earlier turns."""
    messages = [{"role": "system", "content": params["system_prompt"].strip()}]
    for example in params["examples"]:
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


def judge_answers(teacher, predictions, params):
    """The teacher grades each arm's answer (params `arms`, default all) against
    the reference, and two controls per question: the reference itself (known right) and the next
    question's reference (known wrong). The verdicts join each prediction's
    scores, the reasons go beside them."""
    n = len(predictions)
    arms = params.get("arms") or ARMS
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise PipelineError(f"params.yaml: evaluate.judge.arms: {unknown[0]!r} is not an arm; choose from "
                            f"{', '.join(ARMS)}")
    jobs = [(x, arm, x["answers"][arm]) for x in predictions for arm in arms]
    jobs += [(x, control, answer) for i, x in enumerate(predictions)
             for control, answer in (("right", x["reference"]), ("wrong", predictions[(i + 1) % n]["reference"]))
             if n > 1]
    chats = [judge_messages(x["question"], x["reference"], answer, params) for x, _, answer in jobs]
    replies = teacher.chat(chats, desc="judging answers", top_logprobs=params["top_logprobs"],
                           max_tokens=params["max_tokens"], temperature=0.0)
    for (x, name, _), reply in zip(jobs, replies):
        scores, reason = judge_scores(reply.get("text"), reply.get("logprobs"))
        target = x["scores"] if name in ARMS else x.setdefault("controls", {})
        target.setdefault(name, {}).update(scores)
        x.setdefault("judge", {})[name] = reason if not reply.get("error") else f"teacher error {reply['error']}"


def judge_controls(predictions, min_accuracy=0.75):
    """How well the judge tells a known-right answer (the reference itself) from
    a known-wrong one (another question's reference): its accuracy on both,
    the YES rates, and whether its verdicts on the arms are informative."""
    right = [p["controls"]["right"].get("judge_yes") for p in predictions if "controls" in p]
    wrong = [p["controls"]["wrong"].get("judge_yes") for p in predictions if "controls" in p]
    right, wrong = [v for v in right if v is not None], [v for v in wrong if v is not None]
    total = len(right) + len(wrong)
    if not total:
        return {"judged": 0, "accuracy": None, "informative": False}
    accuracy = (sum(right) + sum(1 - v for v in wrong)) / total
    return {"judged": total, "unreadable": 2 * len(predictions) - total, "accuracy": accuracy,
            "right_yes_rate": sum(right) / len(right) if right else None,
            "wrong_yes_rate": sum(wrong) / len(wrong) if wrong else None,
            "min_accuracy": min_accuracy, "informative": accuracy >= min_accuracy}


def eval_metrics(predictions, n_resamples=2000, seed=0, arms=ARMS, min_control_accuracy=0.75):
    """metrics/eval.json content from prediction records holding per-arm scores:
    each arm's means with intervals, and each comparison's paired differences."""
    arms = [a for a in arms if predictions and a in predictions[0]["scores"]]
    metrics = {"n_questions": len(predictions), "arms": {}, "comparisons": {}}
    keys = ("factual", "content_recall", "key_recall", "rouge1", "rouge2", "rougeL", "rougeL_precision",
            "rougeL_recall", "words", "judge_yes", "judge_p_yes", "cites", "citation_supported")
    for arm in arms:
        values = {k: [p["scores"][arm].get(k) for p in predictions] for k in keys}
        metrics["arms"][arm] = {k: mean_ci(v, n_resamples, seed) for k, v in values.items()
                                if any(x is not None for x in v)}
    for better, than in COMPARISONS:
        if better in arms and than in arms:
            metrics["comparisons"][f"{better}_vs_{than}"] = {
                k: compare(*_paired(predictions, than, better, k), n_resamples, seed) for k in SCORES
                if _paired(predictions, than, better, k)[0]}
    if any("controls" in p for p in predictions):
        metrics["judge"] = judge_controls(predictions, min_control_accuracy)
    return metrics


def _paired(predictions, a, b, key):
    both = [(p["scores"][a].get(key), p["scores"][b].get(key)) for p in predictions]
    both = [(x, y) for x, y in both if x is not None and y is not None]
    return [x for x, _ in both], [y for _, y in both]


def retrieval_metrics(eval_hits, references, val_hits=None, val_chunks=None):
    """Retrieval quality: for the eval set, the share of questions whose
    reference the retrieved passages support, and the mean factual score of
    the passages themselves (the ceiling of a reader); for the validation
    pairs, recall@k of each one's own chunk."""
    support = [factual_scores(ref, " ".join(h["text"] for h in hits)) for ref, hits in zip(references, eval_hits)]
    metrics = {"k": max((len(h) for h in eval_hits), default=0),
               "eval_supported": sum(s["factual"] >= 0.5 for s in support) / len(support) if support else None,
               "eval_passage_factual": sum(s["factual"] for s in support) / len(support) if support else None}
    if val_hits:
        found = [any(h["chunk_id"] == chunk for h in hits) for hits, chunk in zip(val_hits, val_chunks)]
        metrics["val_own_chunk_recall_at_k"] = sum(found) / len(found)
        metrics["val_pairs"] = len(found)
    return metrics


def _cell(text, limit=300):
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _fmt(m, key="mean"):
    return "-" if not m else f"{m[key]:.3f}"


def _interval(m):
    return "-" if not m else f"{m['ci95'][0]:.3f} .. {m['ci95'][1]:.3f}"


def _delta_row(name, m):
    if not m:
        return f"| {name} | - | - | - |"
    lo, hi = m["delta_ci95"]
    return (f"| {name} | {m['delta']:+.3f} | {lo:+.3f} .. {hi:+.3f} | "
            f"{m['win_rate']:.0%} / {m['tie_rate']:.0%} / {m['loss_rate']:.0%} |")


def verdict_line(metrics):
    """One sentence: does tuned + retrieval beat the other arms on the factual score?"""
    lines = []
    for than in ("tuned_closed", "base_rag", "base_closed"):
        m = (metrics["comparisons"].get(f"tuned_rag_vs_{than}") or {}).get("factual")
        if m:
            lo, hi = m["delta_ci95"]
            word = "beats" if lo > 0 else ("loses to" if hi < 0 else "is not distinguishable from")
            lines.append(f"{word} {ARM_NAMES[than]} ({m['delta']:+.3f}, 95% CI {lo:+.3f} .. {hi:+.3f})")
    return ("On the factual score, tuned + retrieval " + "; ".join(lines) + ".") if lines else ""


def render_report(predictions, metrics, k=5, chart=None):
    """reports/eval.md: every arm's scores, the comparisons, the judge's controls,
    retrieval quality, then the questions where retrieval-tuning helped and
    hurt most (by the factual score), answers side by side."""
    arms = list(metrics["arms"])
    models = metrics.get("models", {"base": "the base student", "tuned": "the fine-tuned student"})
    judge = metrics.get("judge")
    informative = bool(judge and judge.get("informative"))
    lines = ["# Evaluation: four arms on the human-written eval set", "",
             f"{metrics['n_questions']} questions of data/eval/evalset.json, answered by {models['base']} (base) "
             f"and {models['tuned']} (tuned), each closed book (the question alone) and with retrieval (the top "
             f"{metrics.get('retrieval', {}).get('k', '?')} passages of data/index/ in the prompt, the layout "
             "the student was trained with), with the same chat template, system prompt and greedy decoding.", "",
             "How to read it: **factual** is the share of the reference's content (key terms such as numbers, "
             "code, file and parameter names count twice) that the answer states; it does not reward a short "
             "answer, and it is what the tables below are ranked by. ROUGE-L F1 is shown for comparison with "
             "earlier runs; its precision rises when an answer is short. Means with a bootstrap 95% interval.", ""]
    if chart:
        lines += [f"![factual score per arm with its 95% interval]({chart})", ""]
    verdict = verdict_line(metrics)
    if verdict:
        lines += [verdict, ""]
    lines += ["| arm | factual | 95% CI | content recall | ROUGE-L F1 | ROUGE-L P / R | words | judge YES | cites "
              "| citation holds |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for arm in arms:
        m = metrics["arms"][arm]
        judge_cell = _fmt(m.get("judge_yes")) + ("" if informative or not m.get("judge_yes") else " (not informative)")
        lines.append(f"| {ARM_NAMES.get(arm, arm)} | {_fmt(m.get('factual'))} | {_interval(m.get('factual'))} | "
                     f"{_fmt(m.get('content_recall'))} | {_fmt(m.get('rougeL'))} | "
                     f"{_fmt(m.get('rougeL_precision'))} / {_fmt(m.get('rougeL_recall'))} | "
                     f"{m['words']['mean'] if m.get('words') else 0:.0f} | {judge_cell} | {_fmt(m.get('cites'))} | "
                     f"{_fmt(m.get('citation_supported'))} |")
    lines += ["", "Paired differences (first arm minus second), factual score; win / tie / loss count questions.", "",
              "| comparison | delta | 95% CI | win / tie / loss |", "|---|---|---|---|"]
    for name, scores in metrics["comparisons"].items():
        better, than = name.split("_vs_")
        lines.append(_delta_row(f"{ARM_NAMES[better]} vs {ARM_NAMES[than]}", scores.get("factual")))
    retrieval = metrics.get("retrieval")
    if retrieval:
        lines += ["", "## Retrieval", "",
                  f"The top {retrieval['k']} passages support the reference (factual >= 0.5) for "
                  f"{retrieval['eval_supported']:.0%} of the eval questions; on average they hold "
                  f"{retrieval['eval_passage_factual']:.3f} of the reference's content, the most a reader of them "
                  "can state. A wrong answer to a supported question is a reading miss; to an unsupported one, a "
                  "retrieval miss (column `hit` below)."]
        if retrieval.get("val_own_chunk_recall_at_k") is not None:
            top = retrieval["k"]
            lines.append(f"For the {retrieval['val_pairs']} validation pairs, the pair's own chunk is among the top "
                         f"{top} for {retrieval['val_own_chunk_recall_at_k']:.0%} (recall@{top}).")
    if judge:
        lines += ["", "## The judge", ""]
        if judge.get("accuracy") is None:
            lines.append(f"The judge ({judge.get('model', 'the teacher')}) gave no readable verdict on the controls.")
        else:
            lines.append(
                f"The judge ({judge.get('model', 'the teacher')}) was also shown, for every question, the reference "
                f"itself (known right) and another question's reference (known wrong): it said YES to "
                f"{judge['right_yes_rate']:.0%} of the right and {judge['wrong_yes_rate']:.0%} of the wrong ones, "
                f"accuracy {judge['accuracy']:.0%} on {judge['judged']} controls. "
                + ("It separates them: its YES rates above are informative." if informative else
                   f"Below {judge['min_accuracy']:.0%}, it cannot tell right from wrong: its rows are **not "
                   "informative**; use a stronger teacher (an OpenAI-compatible endpoint) to judge."))
    first, second = ("tuned_rag", "tuned_closed") if {"tuned_rag", "tuned_closed"} <= set(arms) else (arms[-1], arms[0])
    shown = [a for a in ("tuned_closed", "base_rag", "tuned_rag") if a in arms]
    delta = sorted(predictions, key=lambda p: p["scores"][first]["factual"] - p["scores"][second]["factual"])
    for title, chosen in ((f"Where {ARM_NAMES[first]} helped most over {ARM_NAMES[second]}", delta[::-1][:k]),
                          ("Where it hurt most", delta[:k])):
        lines += ["", f"## {title}", "", "| # | question | reference | " + " | ".join(ARM_NAMES[a] for a in shown)
                  + " | factual | hit |", "|---|---|---|" + "---|" * len(shown) + "---|---|"]
        for p in chosen:
            scores = " / ".join(f"{p['scores'][a]['factual']:.2f}" for a in shown)
            lines.append(f"| {p['index']} | {_cell(p['question'])} | {_cell(p['reference'])} | "
                         + " | ".join(_cell(p["answers"][a]) for a in shown)
                         + f" | {scores} | {'yes' if p.get('retrieval_hit') else 'no'} |")
    return "\n".join(lines) + "\n"


def render_chart(metrics, path):
    """A PNG of each arm's factual score with its 95% interval (matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arms = [a for a in metrics["arms"] if metrics["arms"][a].get("factual")]
    means = [metrics["arms"][a]["factual"]["mean"] for a in arms]
    lows = [m - metrics["arms"][a]["factual"]["ci95"][0] for a, m in zip(arms, means)]
    highs = [metrics["arms"][a]["factual"]["ci95"][1] - m for a, m in zip(arms, means)]
    fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=100)
    ax.barh(range(len(arms)), means, xerr=[lows, highs], color="#4878a8", capsize=4)
    ax.set_yticks(range(len(arms)), [ARM_NAMES[a] for a in arms])
    ax.invert_yaxis()
    ax.set_xlim(0, max(0.5, max(means, default=0) + max(highs, default=0) + 0.05))
    ax.set_xlabel("factual score (share of the reference's content stated), 95% CI")
    for i, m in enumerate(means):
        ax.text(m + 0.01, i - 0.25, f"{m:.3f}", fontsize=8)
    fig.tight_layout()
    from faqforge.io import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
