"""Decontamination on FAQ-length text: the project's own human-written eval set."""

import json
import random

import pytest

from faqforge.core.records import normalise
from faqforge.refinement import decontaminate
from faqforge.refinement.decontaminate import audit, contamination, ngrams
from tests.support.project import ROOT
from tests.support.sections import changed, section
from tests.support.synthetic import near_copy
from tests.support.synthetic import pairs as synthetic_pairs

EVALSET = json.loads((ROOT / "data/eval/evalset.json").read_text())
DEFAULTS = section("decontaminate")   # the project's params.yaml
SHORT_QUESTIONS = [k for k, e in enumerate(EVALSET) if len(normalise(e["question"]).split()) <= 12]
# answers a training answer leaks by holding them whole: shorter than the n-gram, not shorter than
# min_answer_words ("Apache 2.0." is too generic), and not the "not covered" of an unanswerable question
SHORT_ANSWERS = [k for k, e in enumerate(EVALSET) if e.get("answerable", True)
                 and DEFAULTS.min_answer_words <= len(normalise(e["answer"]).split()) < 13]
# Clauses that make another question of an eval question (3+ words; a two-word
# "on Windows" is often within the reworded-copy range, see bench/README.md).
EXTENSIONS = [" when the teacher runs on another machine", " behind a corporate proxy", " without a GPU or an API key",
              " in a team that shares one remote"]


def pair(i, question, answer="It depends on the configuration."):
    return {"id": f"t{i}", "question": question, "answer": answer}


def test_ngrams_normalised():
    assert ngrams("A, b. C d!", 3) == {"a b c", "b c d"}
    assert ngrams("Où est-ce ?", 3) == {"ou est ce"}


def test_copied_and_lightly_reworded_short_eval_questions_are_removed():
    assert len(SHORT_QUESTIONS) > 30
    rng = random.Random(3)
    pairs = []
    for k in SHORT_QUESTIONS:
        question = EVALSET[k]["question"]
        pairs += [pair(len(pairs), question), pair(len(pairs) + 1, question.upper().replace("?", " ?!")),
                  pair(len(pairs) + 2, near_copy(question, rng))]
    clean, dropped = contamination(pairs, EVALSET, DEFAULTS)
    assert dropped and all(d["reason"] == "eval leak: fuzzy question" for d in dropped)
    recall = len(dropped) / len(pairs)
    assert recall >= 0.95, [p["question"] for p in clean]
    assert all(EVALSET[d["eval_index"]]["question"] == d["eval_question"] for d in dropped)


def test_short_eval_answers_copied_into_training_answers_are_removed():
    assert len(SHORT_ANSWERS) >= 5
    pairs = [pair(k, f"Something else entirely number {k}?", f"In short: {EVALSET[k]['answer']} That is all.")
             for k in SHORT_ANSWERS]
    clean, dropped = contamination(pairs, EVALSET, DEFAULTS)
    assert clean == []
    assert {d["id"]: d["eval_index"] for d in dropped} == {f"t{k}": k for k in SHORT_ANSWERS}
    assert all(d["reason"] == "eval leak: whole eval answer" for d in dropped)


def test_longer_distinct_questions_containing_an_eval_questions_words_are_kept():
    """'How do I turn off paraphrase augmentation for a single source?' is another
    question; token_set_ratio would score it 100 against the eval question."""
    pairs = [pair(n, EVALSET[k]["question"].rstrip("?") + ext + "?")
             for n, (k, ext) in enumerate((k, ext) for k in SHORT_QUESTIONS for ext in EXTENSIONS)]
    clean, dropped = contamination(pairs, EVALSET, DEFAULTS)
    assert dropped == [], [d["question"] for d in dropped]
    _, with_token_set = contamination(pairs, EVALSET, changed(DEFAULTS, scorer="token_set_ratio"))
    assert len(with_token_set) > 0.9 * len(pairs)  # what the previous default removed


def test_shared_13_gram_in_answer_is_removed_with_evidence():
    item = max(EVALSET, key=lambda e: len(e["answer"].split()))
    leaked = pair(0, "What is the recipe?", "As the docs say, " + item["answer"])
    clean, dropped = contamination([leaked], EVALSET, DEFAULTS)
    assert clean == [] and "13-gram" in dropped[0]["why"] and dropped[0]["dropped_by"] == "decontaminate"


def test_unrelated_pairs_from_the_same_domain_are_kept():
    pairs = [pair(0, "What is a LoRA rank?", "The rank of the low-rank update matrices."),
             pair(1, "Which teacher models does vLLM serve?", "Any model vLLM can load, served by name."),
             pair(2, "Where does the data report live?", "reports/data.md, committed to git.")]
    clean, dropped = contamination(pairs, EVALSET, DEFAULTS)
    assert clean == pairs and dropped == []


def test_planted_leaks_are_caught_and_nothing_else():
    rng = random.Random(5)
    evalset = [{"question": p["question"], "answer": p["answer"]} for p in synthetic_pairs(40, 0, seed=11)]
    data = synthetic_pairs(300, 0, seed=12)
    leaks = {
        "verbatim": {**data[0], "question": evalset[0]["question"], "answer": evalset[0]["answer"]},
        "reworded question": {**data[1], "question": near_copy(evalset[1]["question"], rng)},
        "answer copied": {**data[2], "answer": "In short: " + evalset[2]["answer"]},
    }
    for k, (name, leak) in enumerate(leaks.items()):
        data[k] = {**leak, "id": name}
    clean, dropped = contamination(data, evalset, DEFAULTS)
    assert {d["id"]: d["eval_index"] for d in dropped} == {"verbatim": 0, "reworded question": 1, "answer copied": 2}
    assert len(clean) == 297


def test_the_audit_is_independent_of_the_rule():
    """The report's audit finds copied and lightly edited eval items by another
    representation, and still finds them when the rule's normalisation is broken."""
    rng = random.Random(8)
    leaks = [pair(k, near_copy(EVALSET[k]["question"], rng)) for k in range(0, 40, 4)]
    leaks += [pair(100 + k, "Unrelated question?", EVALSET[k]["answer"] + " See the docs.") for k in range(1, 40, 8)]
    clean = [pair(200 + n, q) for n, q in enumerate(["What is a LoRA rank?", "Where does the data report live?",
                                                      "Which teacher models does vLLM serve?"])]
    flagged = audit(leaks + clean, EVALSET)
    assert {f["id"] for f in flagged} == {p["id"] for p in leaks}
    assert all(f["why"] for f in flagged)


def test_a_broken_normalisation_in_the_rule_is_caught_by_the_audit(monkeypatch):
    copies = [pair(k, EVALSET[k]["question"].upper()) for k in SHORT_QUESTIONS[:5]]
    monkeypatch.setattr(decontaminate, "similar_pairs", lambda *a, **k: [])  # a rule that finds nothing
    clean, _ = contamination(copies, EVALSET, DEFAULTS)
    assert clean == copies
    assert {f["id"] for f in audit(clean, EVALSET)} == {p["id"] for p in copies}


def test_bad_threshold_is_named_when_params_yaml_is_read():
    from faqforge.core.config import parse_section
    from faqforge.core.io import PipelineError
    with pytest.raises(PipelineError, match=r"params.yaml: decontaminate.answer_threshold: .*greater than 0"):
        parse_section("params.yaml", "decontaminate", {"answer_threshold": 0})
