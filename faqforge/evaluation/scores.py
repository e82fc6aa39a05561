"""Scoring every arm's answers against the human-written references.

The arms: the bot, evidence first (faqforge.documents.evidence: a verbatim
quote of the retrieved passages with its citation, or the refusal when they
hold too few of the question's words), as serve and chat answer by default; the
base and the tuned student, each closed book (the question alone) and with
retrieval (the top passages in the prompt, the layout the student was trained
with); two that need no model, the top passage as it is
and the best sentence of the passages by word overlap with the question
(faqforge.evaluation.search_arms); and a ceiling, the sentence closest to the
reference, chosen with its help.

The headline score is token F1 (faqforge.evaluation.token_f1): it has
precision as well as recall, scores refusals, and ranks the tables. Beside it:
reference recall (faqforge.evaluation.factual: how much of the reference's
content the answer holds, whatever else it says), ROUGE-L, refusals on
unanswerable and answerable questions, two citation checks (the cited passage
supports the reference; it holds what the answer says), the teacher's verdicts
(checked on known-right and known-wrong controls) and people's grades. Each
arm's means come with bootstrap 95% intervals; the bot and the tuned student
are compared, question by question, with the other arms, and the verdict is the
bot's paired difference from the best arm that needs no model.
"""

import random
from pathlib import Path

from faqforge.core.chat_format import citations
from faqforge.core.io import read_json
from faqforge.core.sections import EvaluateJudge, choices
from faqforge.evaluation.factual import factual_scores, supported
from faqforge.evaluation.token_f1 import answer_text, token_scores

ARMS = choices(EvaluateJudge, "arms")
MODEL_ARMS = tuple(a for a in ARMS if a.endswith(("_closed", "_rag")))  # base_closed, tuned_closed, base_rag, tuned_rag
SEARCH_ARMS = ("top_passage", "best_sentence")   # need no model: the baselines the bot must beat
CEILING = "oracle_sentence"                      # chosen with the reference: a ceiling, never a competitor
BOT = "evidence"          # what serve and chat answer with by default
STUDENT = "tuned_rag"     # the fine-tuned student writing its answer from the passages

ARM_NAMES = {"base_closed": "base, closed book", "tuned_closed": "tuned, closed book",
             "base_rag": "base + retrieval (plain RAG)", "tuned_rag": "tuned + retrieval (the student writes)",
             "evidence": "the bot: evidence first (a quote of the passages, or a refusal)",
             "top_passage": "top passage as it is (no model)",
             "best_sentence": "best sentence by word overlap (no model)",
             "oracle_sentence": "ceiling: the sentence closest to the reference"}

# (first, second): the paired comparisons the report and metrics/eval.json give.
COMPARISONS = ((BOT, "top_passage"), (BOT, "best_sentence"), (BOT, "base_rag"), (BOT, STUDENT),
               (STUDENT, "top_passage"), (STUDENT, "base_rag"), (STUDENT, "tuned_closed"), (STUDENT, "base_closed"),
               ("base_rag", "base_closed"), ("tuned_closed", "base_closed"))

COMPARED = ("f1", "reference_recall", "judge_yes", "graded_right")   # the per-item scores a comparison pairs
PER_ITEM = ("f1", "precision", "recall", "words", "reference_recall", "key_recall", "rougeL", "cites",
            "cites_right", "cited_holds_answer", "judge_yes", "judge_p_yes", "graded_right")


def rouge_l(reference, answer):
    """ROUGE-L F1 with stemming (rouge-score), for comparison with earlier runs."""
    from rouge_score import rouge_scorer
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, answer)["rougeL"].fmeasure


def answer_scores(reference, answer, passages=None, answerable=True):
    """Every reference-based score of one answer. Token F1 with its precision and
    recall, whether it refused, and words; on an answerable question also
    reference recall and ROUGE-L, and, given the passages it was shown, whether
    it cites one (`cites`), whether a cited passage supports the reference
    (`cites_right`) and whether it holds the answer's own content (`cited_holds_answer`)."""
    text = answer_text(answer)
    row = {**token_scores(reference, answer, answerable), "words": len(text.split())}
    if not answerable:
        return row
    recall = factual_scores(reference, text)
    row.update(reference_recall=recall["factual"], key_recall=recall["key_recall"], rougeL=rouge_l(reference, text))
    if passages is not None:
        cited = [passages[n - 1]["text"] for n in citations(answer) if 1 <= n <= len(passages)]
        row["cites"] = int(bool(cited))
        row["cites_right"] = int(any(supported(reference, p) for p in cited)) if cited else None
        row["cited_holds_answer"] = int(any(supported(text, p) for p in cited)) if cited and text else None
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
    """{"mean", "ci95", "n"} of per-item values (None where there are none)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": sum(values) / len(values), "ci95": bootstrap_ci(values, n_resamples, seed), "n": len(values)}


def compare(base, tuned, n_resamples=2000, seed=0):
    """Summary of paired per-item scores: means, delta (second minus first), its
    CI, win/tie/loss rates of the second (None where there is nothing to compare)."""
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
        "n": n,
    }


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


def refusal_metrics(predictions, arm):
    """How an arm handles refusing: the share of unanswerable questions it
    refused, the share of answerable ones it refused (false refusals), and its
    token F1 and precision on the answerable questions it did answer."""
    answerable = [p for p in predictions if p.get("answerable", True)]
    unanswerable = [p for p in predictions if not p.get("answerable", True)]
    answered = [p["scores"][arm] for p in answerable if not p["scores"][arm].get("refused")]
    return {"refusal_rate": _share([bool(p["scores"][arm].get("refused")) for p in unanswerable]),
            "false_refusal_rate": _share([bool(p["scores"][arm].get("refused")) for p in answerable]),
            "answered": len(answered),
            "f1_answered": _share([s["f1"] for s in answered if "f1" in s]),
            "precision_answered": _share([s["precision"] for s in answered if "precision" in s])}


def _share(values):
    return sum(values) / len(values) if values else None


def eval_metrics(predictions, n_resamples=2000, seed=0, arms=ARMS, min_control_accuracy=0.75):
    """metrics/eval.json content from prediction records holding per-arm scores:
    each arm's means with intervals and its refusal figures, each comparison's
    paired differences, and the verdict: the bot against the best arm that needs no model."""
    arms = [a for a in arms if predictions and a in predictions[0]["scores"]]
    metrics = {"n_questions": len(predictions),
               "n_unanswerable": sum(not p.get("answerable", True) for p in predictions),
               "arms": {}, "comparisons": {}}
    for arm in arms:
        values = {k: [p["scores"][arm].get(k) for p in predictions] for k in PER_ITEM}
        metrics["arms"][arm] = {k: mean_ci(v, n_resamples, seed) for k, v in values.items()
                                if any(x is not None for x in v)}
        metrics["arms"][arm].update(refusal_metrics(predictions, arm))
    for first, second in COMPARISONS:
        if first in arms and second in arms:
            metrics["comparisons"][f"{first}_vs_{second}"] = {
                k: compare(*_paired(predictions, second, first, k), n_resamples, seed) for k in COMPARED
                if _paired(predictions, second, first, k)[0]}
    baselines = [a for a in SEARCH_ARMS if a in arms]
    if BOT in arms and baselines:
        best = max(baselines, key=lambda a: metrics["arms"][a]["f1"]["mean"])
        m = metrics["comparisons"][f"{BOT}_vs_{best}"]["f1"]
        lo, hi = m["delta_ci95"]
        metrics["verdict"] = {"arm": BOT, "than": best, "delta": m["delta"], "delta_ci95": m["delta_ci95"],
                              "result": "beats" if lo > 0 else ("loses to" if hi < 0 else "ties with")}
        # a refusal scores 1 on an unanswerable question: how much of the margin is answering, not refusing
        answerable = [p for p in predictions if p.get("answerable", True)]
        if len(answerable) < len(predictions) and answerable:
            a = compare(*_paired(answerable, best, BOT, "f1"), n_resamples, seed)
            metrics["verdict"]["answerable"] = {"questions": len(answerable), "delta": a["delta"],
                                                "delta_ci95": a["delta_ci95"]}
    if any("controls" in p for p in predictions):
        metrics["judge"] = judge_controls(predictions, min_control_accuracy)
    return metrics


def _paired(predictions, a, b, key):
    both = [(p["scores"][a].get(key), p["scores"][b].get(key)) for p in predictions]
    both = [(x, y) for x, y in both if x is not None and y is not None]
    return [x for x, _ in both], [y for _, y in both]


def retrieval_metrics(eval_hits, references, val_hits=None, val_chunks=None):
    """Retrieval quality: for the answerable eval questions (`references` None
    for the others), the share whose reference the retrieved passages support
    and how much of the reference they hold (reference recall); for the
    validation pairs, recall@k of each one's own chunk."""
    support = [factual_scores(ref, " ".join(h["text"] for h in hits))["factual"]
               for ref, hits in zip(references, eval_hits) if ref is not None]
    metrics = {"k": max((len(h) for h in eval_hits), default=0), "questions": len(support),
               "eval_supported": _share([s >= 0.5 for s in support]),
               "eval_passage_recall": _share(support)}
    if val_hits:
        found = [any(h["chunk_id"] == chunk for h in hits) for hits, chunk in zip(val_hits, val_chunks)]
        metrics["val_own_chunk_recall_at_k"] = sum(found) / len(found)
        metrics["val_pairs"] = len(found)
    return metrics


def index_figures(retriever, evalset, hits, val_records, k, stage_metrics=None):
    """metrics/eval.json's retrieval section: retrieval_metrics for the eval questions'
    `hits` and the validation records' own chunks at k, how the index retrieves, the
    bot's abstention threshold with how the index stage chose it, and the retriever
    stage's validation figures from its metrics file `stage_metrics` when there is one."""
    val = [r for r in val_records if r.get("chunk_id") and r.get("kind") != "refusal"]
    val_hits = retriever.search([r["question"] for r in val], k) if val else None
    references = [item["answer"] if item.get("answerable", True) else None for item in evalset]
    figures = {**retrieval_metrics(hits, references, val_hits, [r["chunk_id"] for r in val]), "k": k,
               "method": retriever.method, "abstain_below": retriever.abstain_below,
               "abstention": retriever.abstention}
    if stage_metrics and Path(stage_metrics).exists():
        figures["retriever"] = {"val_own_chunk_recall": read_json(stage_metrics).get("val_own_chunk_recall")}
    return figures


def score_predictions(evalset, hits, replies):
    """One prediction record per eval item: every arm's answer and scores, whether
    it is answerable, whether the retrieved passages support the reference, and
    the passages shown (the grades view shows them beside the answers). Arms that retrieve (with retrieval, and the ones
    built from the passages) have their citations checked."""
    predictions = []
    for i, (item, shown) in enumerate(zip(evalset, hits)):
        answerable = item.get("answerable", True)
        answers = {arm: replies[arm][i]["text"] for arm in ARMS if arm in replies}
        scores = {arm: answer_scores(item["answer"], answer, None if arm.endswith("_closed") else shown, answerable)
                  for arm, answer in answers.items()}
        predictions.append({"index": i, "question": item["question"], "reference": item["answer"],
                            "answerable": answerable, "docs": item.get("docs", []),
                            "answers": answers, "scores": scores,
                            "retrieval_hit": supported(item["answer"], " ".join(h["text"] for h in shown))
                            if answerable else None,
                            "passages": [{key: h.get(key) for key in ("passage_id", "doc", "section", "pages",
                                                                       "score", "similarity", "text")} for h in shown]})
    return predictions
