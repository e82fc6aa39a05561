"""reports/eval.md and its chart: the arms' scores with intervals, the
comparisons, the judge's controls, and the questions where one arm helped most."""

from faqforge.evaluation.scores import ARM_NAMES


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
    from faqforge.core.io import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
