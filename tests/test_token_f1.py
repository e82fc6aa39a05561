"""Token F1 and refusals (faqforge.evaluation.token_f1) on real eval items and real-shaped answers,
and the arms that need no model (faqforge.evaluation.search_arms)."""

import json
from pathlib import Path

import pytest

from faqforge.core.chat_format import REFUSAL
from faqforge.evaluation.factual import factual_scores
from faqforge.evaluation.search_arms import best_sentence, oracle_sentence, search_answers, top_passage
from faqforge.evaluation.token_f1 import answer_text, is_refusal, squad_tokens, token_scores

EVALSET = json.loads((Path(__file__).resolve().parents[1] / "data" / "eval" / "evalset.json").read_text())


def item(question):
    return next(x for x in EVALSET if x["question"] == question)


# The passage the retriever returns for the question, as the top-passage arm shows it (pipeline-overview.md).
AUGMENT_PASSAGE = ("The augment stage optionally asks the teacher to rephrase each question, so that each fact is seen "
                   "in several phrasings. The answer stays the same. The number of paraphrases per question is "
                   "`augment.paraphrases`; set it to 0 to turn augmentation off. [1]")


def test_a_short_right_answer_beats_a_copied_passage_that_holds_it():
    reference = item("How do I turn off paraphrase augmentation?")["answer"]
    short = token_scores(reference, "Set augment.paraphrases to 0 [1]")
    copied = token_scores(reference, AUGMENT_PASSAGE)
    assert short["f1"] == 1.0
    assert copied["recall"] == 1.0 and copied["precision"] < 0.2 and copied["f1"] < 0.3
    # the recall the headline used to be cannot tell them apart: both hold the whole reference
    assert factual_scores(reference, AUGMENT_PASSAGE)["factual"] == factual_scores(reference, "Set augment.paraphrases to 0")["factual"] == 1.0


def test_a_verbose_answer_scores_below_a_concise_one_on_the_same_facts():
    reference = item("Which command runs the whole pipeline on a fresh clone?")["answer"]
    concise = "make run: it creates .venv if needed, installs the pinned packages and runs dvc repro. [1]"
    verbose = ("From a fresh clone, make run sets everything up and runs the pipeline, and make test sets everything "
               "up and runs the tests. Both create the virtual environment in the .venv folder the first time and reuse "
               "it afterwards. If you only want the environment without running anything, run make setup. [2]")
    assert token_scores(reference, concise)["f1"] > token_scores(reference, verbose)["f1"] + 0.3


def test_a_refusal_scores_zero_on_an_answerable_question_and_one_on_an_unanswerable_one():
    answerable = item("How do I run the tests?")
    unanswerable = next(x for x in EVALSET if not x.get("answerable", True))
    for refusal in (REFUSAL, "The documents do not answer this question. The document is a list of messages."):
        assert token_scores(answerable["answer"], refusal) == {"f1": 0.0, "precision": 0.0, "recall": 0.0, "refused": True}
        assert token_scores(unanswerable["answer"], refusal, answerable=False)["f1"] == 1.0
    # answering an unanswerable question is wrong, whatever words it shares with "the documents do not cover this"
    assert token_scores(unanswerable["answer"], "The documents cover this: use the Docker image.", answerable=False)["f1"] == 0.0
    # the reference recall scores a refusal above 0 because it shares "documents"
    assert token_scores(item("Where do I put my evaluation questions?")["answer"], REFUSAL)["f1"] == 0.0


@pytest.mark.parametrize("answer, refused", [
    (REFUSAL, True),
    ("The documents do not cover this.", True),
    ("The passages don\u2019t mention a Docker image.", True),
    ("I don't know.", True),
    ("The context provided does not answer the question, but try make run.", True),
    ("Documents do not leave your machine with the default settings.", False),
    ("The documents do not need to be in English: set generate.language.", False),
    ("No. The eval set must stay out of data/docs.", False),
    ("No information is sent anywhere: the teacher runs locally.", False),
    ("Run make test. I don't know of another way.", False),           # the first sentence answers
    ("Les documents ne couvrent pas cette question.", False),          # English patterns only: scored as an answer
    # the bot's evidence quotes the documents, even a sentence of them about unanswered questions
    ('"About one question in ten should be one that the documents do not answer; mark it." [1]', False),
    ("\u201cThe documents do not answer some questions.\u201d [2]", False),
])
def test_refusals_are_told_from_answers_that_start_with_no(answer, refused):
    assert is_refusal(answer) is refused


# A lexical score cannot see negation: these answers say the opposite of their reference with its words.
# The scores are what token F1 gives them; people's grades (the review screen's grades view) are the remedy.
OPPOSITES = [
    ("Can I keep my evaluation file inside data/docs?",
     "Yes. The eval set must stay in data/docs, otherwise the model is not trained on the test questions.", 0.812),
    ("Is my API key saved anywhere by faqforge?",
     "Yes. It is saved in params.yaml, dvc.lock, metrics, logs and the cache when the stage runs.", 0.684),
    ("Does a chunk ever mix text from two files?",
     "Yes. Chunks are cut across documents and sections, at paragraph or sentence boundaries.", 0.643),
]


@pytest.mark.parametrize("question, wrong, f1", OPPOSITES)
def test_an_answer_of_opposite_meaning_scores_high_and_the_test_says_so(question, wrong, f1):
    scores = token_scores(item(question)["answer"], wrong)
    assert scores["f1"] == pytest.approx(f1, abs=0.001)
    assert scores["f1"] > 0.5     # a wrong answer a lexical score cannot tell from a right one


def test_citations_quote_markers_and_the_sources_block_are_not_scored():
    answer = ("##begin_quote## Run make test ##end_quote## [1] Run make test. [1]\n\nSources:\n"
              "  [1] getting-started.md, Your first run")
    assert answer_text(answer) == "Run make test Run make test."
    assert token_scores("Run make test.", "Run make test. [1]\n\nSources:\n  [1] getting-started.md")["f1"] == 1.0
    # a line that merely starts with "Sources" is part of the answer
    assert "Sources of documents" in answer_text("Sources of documents: PDF and Markdown. [1]")


def test_squad_normal_form_folds_case_punctuation_and_articles_in_any_script():
    assert squad_tokens("The `finetune.lora_r` is 16!") == ["finetune", "lora", "r", "is", "16"]
    assert squad_tokens("\u00abL\u2019index\u00bb est cr\u00e9\u00e9 \u2014 an index") == ["l", "index", "est", "cr\u00e9\u00e9", "index"]
    assert squad_tokens("Wie lange dauert der Lauf?") == ["wie", "lange", "dauert", "der", "lauf"]


HITS = [{"text": "The augment stage optionally asks the teacher to rephrase each question. "
                 "The number of paraphrases per question is augment.paraphrases; set it to 0 to turn augmentation off."},
        {"text": "The split stage divides the pairs into train and validation."}]


def test_the_no_model_arms_are_the_passages_themselves():
    assert top_passage(HITS) == HITS[0]["text"] + " [1]" and top_passage([]) == ""
    # two sentences share two words (stemmed) with the question: the earlier one wins the tie
    assert best_sentence("How do I turn off paraphrase augmentation?", HITS) == \
        "The number of paraphrases per question is augment.paraphrases; [1]"
    assert best_sentence("How do I turn augmentation off?", HITS) == "set it to 0 to turn augmentation off. [1]"
    assert best_sentence("How is the train and validation split made?", HITS).endswith("[2]")
    assert oracle_sentence("Set it to 0 to turn augmentation off.", HITS) == "set it to 0 to turn augmentation off. [1]"
    assert oracle_sentence("The documents do not cover this.", HITS, answerable=False) == REFUSAL
    answers = search_answers([{"question": "How do I turn off paraphrase augmentation?", "answer": "x"}], [HITS])
    assert set(answers) == {"evidence", "top_passage", "best_sentence", "oracle_sentence"}
    # the bot's evidence: the same best sentence, with the one after it, quoted verbatim
    assert answers["evidence"][0]["text"] == ('"The number of paraphrases per question is augment.paraphrases; set it '
                                              'to 0 to turn augmentation off." [1]')
