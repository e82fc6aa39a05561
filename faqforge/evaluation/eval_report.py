"""reports/eval.md and its chart: first whether the bot beats the search results
it is given, then every arm's scores with intervals, refusals and citations,
the comparisons, secondary scores, retrieval, the judge's controls, people's
grades, and the questions where the bot gained and lost most."""

from faqforge.evaluation.scores import ARM_NAMES, BOT, CEILING, SEARCH_ARMS, STUDENT


def _cell(text, limit=300):
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _fmt(m, key="mean"):
    if m is None:
        return "-"
    value = m[key] if isinstance(m, dict) else m
    return "-" if value is None else f"{value:.3f}"


def _share(value):
    return "-" if value is None else f"{value:.0%}"


def _interval(m):
    return "-" if not m else f"{m['ci95'][0]:.3f} .. {m['ci95'][1]:.3f}"


def _delta_row(name, m):
    if not m:
        return f"| {name} | - | - | - |"
    lo, hi = m["delta_ci95"]
    return (f"| {name} | {m['delta']:+.3f} | {lo:+.3f} .. {hi:+.3f} | "
            f"{m['win_rate']:.0%} / {m['tie_rate']:.0%} / {m['loss_rate']:.0%} |")


def verdict_line(metrics):
    """The report's first sentence: does the bot beat the best arm that needs no model, on token F1?"""
    v = metrics.get("verdict")
    if not v:
        return ""
    arms = metrics["arms"]
    lo, hi = v["delta_ci95"]
    word = {"beats": "**beats**", "loses to": "**loses to**", "ties with": "**does not beat**"}[v["result"]]
    line = (f"**Verdict:** on token F1, {ARM_NAMES[v['arm']]} ({arms[v['arm']]['f1']['mean']:.3f}) {word} the "
            f"best answer that needs no model, the {ARM_NAMES[v['than']]} ({arms[v['than']]['f1']['mean']:.3f}): "
            f"difference {v['delta']:+.3f}, paired 95% CI {lo:+.3f} .. {hi:+.3f}"
            + (" (the interval holds zero: no difference can be claimed)." if v["result"] == "ties with" else "."))
    answerable = v.get("answerable")
    if answerable:
        lo, hi = answerable["delta_ci95"]
        line += (f" On the {answerable['questions']} answerable questions alone (no refusal to score): "
                 f"{answerable['delta']:+.3f}, CI {lo:+.3f} .. {hi:+.3f}"
                 + (" (holds zero)." if lo <= 0 <= hi else "."))
    if CEILING in arms:
        line += (f" The ceiling, the sentence of the same passages closest to the reference, scores "
                 f"{arms[CEILING]['f1']['mean']:.3f}.")
    graded = metrics.get("grades")
    if graded and graded.get("graded"):
        shares = [f"{ARM_NAMES[a].split(' (')[0]} {_share(arms[a]['graded_right']['mean'])} of "
                  f"{arms[a]['graded_right'].get('n', '?')} graded"
                  for a in (v["arm"], v["than"]) if (arms[a].get("graded_right") or {}).get("mean") is not None]
        if shares:
            line += " Graded right by a person: " + ", ".join(shares) + "."
    return line


def _threshold(metrics):
    value = metrics.get("retrieval", {}).get("abstain_below")
    return "none: it never refuses" if value is None else f"support {value:.2f}"


def _arm_order(metrics):
    """Arms by token F1, best first, the ceiling last (it is no competitor)."""
    arms = [a for a in metrics["arms"] if a != CEILING]
    arms.sort(key=lambda a: -(metrics["arms"][a].get("f1") or {}).get("mean", 0))
    return arms + ([CEILING] if CEILING in metrics["arms"] else [])


def render_report(predictions, metrics, k=5, chart=None):
    """reports/eval.md (see the module docstring)."""
    models = metrics.get("models", {"base": "the base student", "tuned": "the fine-tuned student"})
    judge, grades, arms = metrics.get("judge"), metrics.get("grades"), metrics["arms"]
    informative = bool(judge and judge.get("informative"))
    n, unanswerable = metrics["n_questions"], metrics.get("n_unanswerable", 0)
    lines = ["# Evaluation: does the bot answer better than its search results?", ""]
    verdict = verdict_line(metrics)
    if verdict:
        lines += [verdict, ""]
    lines += [
        f"{n} questions of data/eval/evalset.json ({unanswerable} of them not answered by the documents: the right "
        f"answer is to say so), answered by {models['base']} (base) and {models['tuned']} (tuned), "
        f"{'each closed book (the question alone) and ' if 'base_closed' in arms else ''}with retrieval "
        f"(the top {metrics.get('retrieval', {}).get('k', '?')} passages of "
        "data/index/ in the prompt, the layout the student was trained with), with the same chat template, system "
        "prompt and greedy decoding; by the bot as serve and chat answer by default, evidence first: the sentence "
        "of the retrieved passages that shares the most words with the question and the one after it, quoted "
        "verbatim with its citation, or the refusal when the passages hold too few of the question's content words "
        f"(the threshold the index stage chose on the calibration questions: {_threshold(metrics)}); and by two arms "
        "that "
        "need no model: the top passage as it is, and the sentence of the retrieved passages that shares the most "
        "words with the question.", "",
        "How to read it: **F1** is token F1 against the reference (SQuAD-style: case, punctuation and articles "
        "folded; citations, quote markers and the Sources block removed): **precision** is the share of the "
        "answer's words in the reference, **recall** the share of the reference's words in the answer, so a long "
        "copied passage scores low on precision. A refusal scores 0 on an answerable question and 1 on an "
        "unanswerable one. Means with bootstrap 95% intervals. **refuses** is the share of the unanswerable "
        "questions an arm declined; **false refusals** the share of answerable ones it declined; **answered: F1 / "
        "P** its F1 and precision on the answerable questions it did answer. **cites right** is the share of citing "
        "answers whose cited passage supports the reference; **from cited** the share whose cited passage holds "
        "what the answer says (a copied wrong sentence passes it). The last row is a ceiling, chosen with the "
        "reference: no system can do it.", ""]
    if chart:
        lines += [f"![token F1 per arm with its 95% interval]({chart})", ""]
    lines += ["| arm | F1 | 95% CI | precision | recall | words | refuses | false refusals | answered: F1 / P "
              "| cites right | from cited | graded right |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm in _arm_order(metrics):
        m = arms[arm]
        lines.append(
            f"| {ARM_NAMES.get(arm, arm)} | {_fmt(m.get('f1'))} | {_interval(m.get('f1'))} | "
            f"{_fmt(m.get('precision'))} | {_fmt(m.get('recall'))} | "
            f"{m['words']['mean'] if m.get('words') else 0:.0f} | {_share(m.get('refusal_rate'))} | "
            f"{_share(m.get('false_refusal_rate'))} | {_fmt(m.get('f1_answered'))} / "
            f"{_fmt(m.get('precision_answered'))} | {_fmt(m.get('cites_right'))} | "
            f"{_fmt(m.get('cited_holds_answer'))} | {_graded_cell(m)} |")
    lines += ["", "Paired differences on token F1 (first arm minus second); win / tie / loss count questions.", "",
              "| comparison | delta | 95% CI | win / tie / loss |", "|---|---|---|---|"]
    for name, scores in metrics["comparisons"].items():
        first, second = name.split("_vs_")
        lines.append(_delta_row(f"{ARM_NAMES[first]} vs {ARM_NAMES[second]}", scores.get("f1")))
    lines += ["", "## Secondary scores", "",
              "**Reference recall** is the share of the reference's content (key terms such as numbers, code, file "
              "and parameter names count twice) that the answer holds, on the answerable questions. It cannot fall "
              "when an answer says more, so copying a passage that holds the reference scores high: it tells "
              "retrieval misses from reading misses, not right from wrong. ROUGE-L F1 for comparison with earlier "
              "runs. The judge's YES rate is the teacher's verdict, trusted only when it passes its controls (below).",
              "", "| arm | reference recall | ROUGE-L F1 | judge YES |", "|---|---|---|---|"]
    for arm in _arm_order(metrics):
        m = arms[arm]
        judge_cell = _fmt(m.get("judge_yes")) + ("" if informative or not m.get("judge_yes") else " (not informative)")
        lines.append(f"| {ARM_NAMES.get(arm, arm)} | {_fmt(m.get('reference_recall'))} | {_fmt(m.get('rougeL'))} | "
                     f"{judge_cell} |")
    lines += _retrieval_section(metrics.get("retrieval"))
    lines += _judge_section(judge, informative)
    lines += _grades_section(grades, arms)
    lines += _gains_and_losses(predictions, metrics, k)
    return "\n".join(lines) + "\n"


def _graded_cell(m):
    graded = m.get("graded_right")
    if not graded:
        return "-"
    lo, hi = graded["ci95"]
    return f"{graded['mean']:.0%} ({lo:.0%} .. {hi:.0%}, {graded['n']} graded)"


def _retrieval_section(retrieval):
    if not retrieval:
        return []
    lines = ["", "## Retrieval", "",
             f"The top {retrieval['k']} passages support the reference (reference recall >= 0.5) for "
             f"{_share(retrieval['eval_supported'])} of the {retrieval['questions']} answerable questions, and hold "
             f"{_fmt(retrieval['eval_passage_recall'])} of the reference's content on average. A wrong answer to a "
             "supported question is a reading miss; to an unsupported one, a retrieval miss (column `hit` below)."]
    if retrieval.get("val_own_chunk_recall_at_k") is not None:
        top = retrieval["k"]
        lines.append(f"For the {retrieval['val_pairs']} validation pairs, the pair's own chunk is among the top "
                     f"{top} for {retrieval['val_own_chunk_recall_at_k']:.0%} (recall@{top}).")
    trained = retrieval.get("retriever")
    if trained:   # the retriever stage's own validation (metrics/retriever.json)
        recall = trained["val_own_chunk_recall"]
        ks = sorted(next(v for v in recall.values() if isinstance(v, dict)), key=lambda x: int(x.split("_")[1]))
        lines += ["", f"The retriever stage's validation, on its {recall['pairs']} held-out pairs: how often each "
                  "one's own chunk is among the top k passages, by how the index retrieves (the index here: "
                  f"{retrieval.get('method', '?')}).", "",
                  "| retrieval | " + " | ".join(f"recall@{k.split('_')[1]}" for k in ks) + " |",
                  "|---|" + "---|" * len(ks)]
        names = {"bm25": "BM25", "base": "encoder as shipped", "trained": "encoder fine-tuned on the pairs",
                 "hybrid": "hybrid: BM25 + the fine-tuned encoder"}
        for name, label in names.items():
            if isinstance(recall.get(name), dict):
                lines.append(f"| {label} | " + " | ".join(_fmt(recall[name][k]) for k in ks) + " |")
    abstention = retrieval.get("abstention") or {}
    if abstention.get("threshold") is not None:
        lines += ["", f"The bot refuses when its passages hold less than {abstention['threshold']:.0%} of the "
                  "question's content words (its support): the highest threshold that refuses at most "
                  f"{abstention.get('false_refusals', 0):.0%} of the {abstention.get('answerable', 0)} answerable "
                  f"questions of {abstention['calibration']}; it refuses "
                  f"{abstention.get('refused_unanswerable', 0):.0%} of its {abstention.get('unanswerable', 0)} "
                  "unanswerable ones (the calibration questions are not eval questions)."]
    elif "abstention" in retrieval:
        lines += ["", "The bot never refuses: no calibration questions (data/eval/calibration.json) to choose its "
                  "threshold on."]
    return lines


def _judge_section(judge, informative):
    if not judge:
        return []
    lines = ["", "## The judge", ""]
    if judge.get("accuracy") is None:
        return lines + [f"The judge ({judge.get('model', 'the teacher')}) gave no readable verdict on the controls."]
    return lines + [
        f"The judge ({judge.get('model', 'the teacher')}) was also shown, for every question, the reference "
        f"itself (known right) and another question's reference (known wrong): it said YES to "
        f"{judge['right_yes_rate']:.0%} of the right and {judge['wrong_yes_rate']:.0%} of the wrong ones, "
        f"accuracy {judge['accuracy']:.0%} on {judge['judged']} controls. "
        + ("It separates them: its YES rates above are informative." if informative else
           f"Below {judge['min_accuracy']:.0%}, it cannot tell right from wrong: its rows are **not "
           "informative**; use a stronger teacher (an OpenAI-compatible endpoint) to judge.")]


def _grades_section(grades, arms):
    lines = ["", "## People's grades", ""]
    if not grades or not grades.get("graded"):
        return lines + ["No answer of this run is graded yet. Grade them in `python -m faqforge review` (the grades "
                        "view): each question with its reference, the passages and the arms' answers, shuffled and "
                        "unnamed. Grades go to data/eval/grades.jsonl and reach this report on the next `dvc repro`."]
    lines.append(f"{grades['graded']} of {grades['answers']} answers of this run are graded ({grades['grades']} "
                 f"grades in data/eval/grades.jsonl; an answer keeps its grade while its text is unchanged).")
    lines += ["", "| arm | graded right | 95% CI | partly right | wrong | ungraded |", "|---|---|---|---|---|---|"]
    for arm, m in arms.items():
        g = grades["arms"].get(arm)
        if not g or not g["graded"]:
            continue
        right = m.get("graded_right")
        lines.append(f"| {ARM_NAMES.get(arm, arm)} | {_share(right['mean'])} | {right['ci95'][0]:.0%} .. "
                     f"{right['ci95'][1]:.0%} | {_share(g['partly'] / g['graded'])} | "
                     f"{_share(g['wrong'] / g['graded'])} | {g['ungraded']} |")
    agreement = grades.get("agreement") or {}
    for score, a in agreement.items():
        if a.get("pairs"):
            lines.append("")
            lines.append(f"**{score}** orders {a['ordered']:.0%} of the {a['pairs']} (right, wrong) pairs of graded "
                         f"answers correctly (a right answer scores higher; ties count half), "
                         f"{a['within_question']:.0%} of the {a['within_pairs']} pairs that answer the same question."
                         if a.get("within_pairs") else
                         f"**{score}** orders {a['ordered']:.0%} of the {a['pairs']} (right, wrong) pairs of graded "
                         "answers correctly (a right answer scores higher; ties count half).")
    return lines


def _gains_and_losses(predictions, metrics, k):
    baseline = ((metrics.get("verdict") or {}).get("than")
                or next((a for a in SEARCH_ARMS if a in metrics["arms"]), None))
    if BOT not in metrics["arms"] or not baseline:
        return []
    shown = [a for a in ("base_rag", baseline, STUDENT, BOT) if a in metrics["arms"]]
    delta = sorted(predictions, key=lambda p: p["scores"][BOT]["f1"] - p["scores"][baseline]["f1"])
    lines = []
    for title, chosen in ((f"Where the bot gained most over the {ARM_NAMES[baseline]}", delta[::-1][:k]),
                          (f"Where the bot lost most to the {ARM_NAMES[baseline]}", delta[:k])):
        lines += ["", f"## {title}", "", "| # | question | reference | " + " | ".join(ARM_NAMES[a] for a in shown)
                  + " | F1 | graded | hit |", "|---|---|---|" + "---|" * len(shown) + "---|---|---|"]
        for p in chosen:
            scores = " / ".join(f"{p['scores'][a]['f1']:.2f}" for a in shown)
            graded = " / ".join((p.get("grades") or {}).get(a) or "-" for a in shown)
            hit = "-" if p.get("retrieval_hit") is None else ("yes" if p["retrieval_hit"] else "no")
            lines.append(f"| {p['index']} | {_cell(p['question'])} | {_cell(p['reference'])} | "
                         + " | ".join(_cell(p["answers"][a]) for a in shown) + f" | {scores} | {graded} | {hit} |")
    return lines


def render_chart(metrics, path):
    """A PNG of each arm's token F1 with its 95% interval (matplotlib), the ceiling last and grey."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arms = [a for a in _arm_order(metrics) if metrics["arms"][a].get("f1")]
    means = [metrics["arms"][a]["f1"]["mean"] for a in arms]
    lows = [m - metrics["arms"][a]["f1"]["ci95"][0] for a, m in zip(arms, means)]
    highs = [metrics["arms"][a]["f1"]["ci95"][1] - m for a, m in zip(arms, means)]
    colours = ["#a0a0a0" if a == CEILING else "#c07030" if a in SEARCH_ARMS else "#4878a8" for a in arms]
    fig, ax = plt.subplots(figsize=(7.2, 0.45 * len(arms) + 1.0), dpi=100)
    ax.barh(range(len(arms)), means, xerr=[lows, highs], color=colours, capsize=4)
    ax.set_yticks(range(len(arms)), [ARM_NAMES[a] for a in arms], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, min(1.0, max(0.5, max(means, default=0) + max(highs, default=0) + 0.08)))
    ax.set_xlabel("token F1, 95% CI (orange: no model; grey: ceiling)")
    for i, m in enumerate(means):
        ax.text(m + 0.01, i - 0.25, f"{m:.3f}", fontsize=8)
    fig.tight_layout()
    from faqforge.core.io import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
