"""Evidence first (faqforge.documents.evidence): the quote is cut from a retrieved
passage verbatim and cites that passage's number; when the passages hold too few
of the question's content words (its support) the bot refuses; the threshold is
the highest that keeps the calibration questions answered but for the allowed
share, chosen on a real index."""

import json

from faqforge.core.chat_format import REFUSAL, citations
from faqforge.core.sections import Index
from faqforge.documents.evidence import (
    abstention_threshold,
    choose_abstention,
    evidence_answer,
    select_evidence,
    support,
)
from faqforge.documents.retrieval import Retriever, build_index, sentence_spans, sentences
from faqforge.evaluation.token_f1 import is_refusal

HITS = [
    {"passage_id": "a:0", "chunk_id": "a", "doc": "data/docs/remote.txt", "section": "Remotes",
     "text": "Add a remote with dvc remote add.\nThen  dvc push uploads the cached outputs. It needs credentials.",
     "similarity": 0.62},
    {"passage_id": "b:0", "chunk_id": "b", "doc": "data/docs/install.txt", "section": "Installing",
     "text": "faqforge needs Python 3.11.   Run make setup to create the virtual environment; it pins torch. "
             "Le modèle élève apprend avec LoRA.", "similarity": 0.41},
]


def test_sentences_are_cut_where_the_text_has_them_and_nothing_is_rewritten():
    text = HITS[1]["text"]
    assert sentences(text) == ["faqforge needs Python 3.11.", "Run make setup to create the virtual environment;",
                               "it pins torch.", "Le modèle élève apprend avec LoRA."]
    assert all(text[start:end] == s for (start, end), s in zip(sentence_spans(text), sentences(text)))
    assert sentences("v1.2 is out.  Next\n\n line: done") == ["v1.2 is out.", "Next", "line:", "done"]


def test_the_quote_is_verbatim_from_the_passage_it_cites_with_the_sentence_after_it():
    chosen = select_evidence("How do I create the virtual environment with make?", HITS, threshold=0.5)
    assert chosen["n"] == 2 and chosen["passage"] is HITS[1]    # the second passage holds the words asked for
    assert chosen["quote"] == "Run make setup to create the virtual environment; it pins torch."
    assert chosen["quote"] in HITS[1]["text"]
    answer = evidence_answer(chosen)
    assert answer == f"\"{chosen['quote']}\" [2]" and citations(answer) == [2] and not is_refusal(answer)
    # a quote spanning a line break keeps it, as the passage has it
    first = select_evidence("What does dvc remote add do?", HITS, max_sentences=2)
    assert first["n"] == 1 and first["quote"] == "Add a remote with dvc remote add.\nThen  dvc push uploads the cached outputs."
    assert select_evidence("What does dvc remote add do?", HITS, max_sentences=1)["quote"] == \
        "Add a remote with dvc remote add."


def test_an_faqs_own_question_is_never_quoted_the_answer_after_it_is():
    faq = [{"passage_id": "f:0", "chunk_id": "f", "doc": "faq.txt", "section": None,
            "text": "Do my documents leave my machine? No, not with the default settings. The teacher runs here. "
                    "How do I report a bug? Open an issue."},
           {"passage_id": "g:0", "chunk_id": "g", "doc": "faq.txt", "section": None,
            "text": "Which licence does the model have? Apache 2.0. Can I use Docker with faqforge?"}]
    chosen = select_evidence("Do my documents leave my machine?", faq)
    assert chosen["quote"] == "No, not with the default settings. The teacher runs here." and chosen["n"] == 1
    assert select_evidence("How do I report a bug?", faq)["quote"] == "Open an issue."   # stops at the passage's end
    assert select_evidence("Which licence?", faq, max_sentences=2)["quote"] == "Apache 2.0."   # stops at a question
    # a match with no statement after it in its passage is passed over: no other sentence shares a word,
    # so the tie goes to the top passage's first statement
    assert select_evidence("Can I use Docker with faqforge?", faq)["quote"] == \
        "No, not with the default settings. The teacher runs here."
    assert select_evidence("Anything?", [{**faq[1], "text": "Why? How?"}]) is None   # nothing to quote


def test_ties_go_to_the_higher_ranked_passage_and_unicode_text_is_quoted_whole():
    chosen = select_evidence("Qui apprend avec LoRA ?", HITS)
    assert chosen["n"] == 2 and chosen["quote"] == "Le modèle élève apprend avec LoRA."
    nothing_shared = select_evidence("Why?", HITS)
    assert nothing_shared["n"] == 1 and nothing_shared["quote"].startswith("Add a remote")


def test_support_is_the_share_of_the_questions_content_words_the_passages_hold():
    # "push" and "credentials" are in the first passage, "docker" in neither; stemmed: "pushes" is "push"
    assert support("Which credentials does dvc push need?", HITS) == 1.0     # credentials, dvc, push, need
    assert support("Does dvc push upload to Docker?", HITS) == 0.75          # dvc, push, upload (uploads); docker missing
    assert support("Is there a Docker image?", HITS) == 0.0
    assert support("Le modele apprend avec LoRA ?", HITS) == 1.0             # accents folded; French words count
    assert support("Remotes?", HITS) == 1.0                                  # the section path counts
    assert support("Why?", HITS) == 1.0 and support("Docker?", []) == 0.0   # no content word; nothing retrieved


def test_below_the_threshold_the_bot_says_the_documents_do_not_cover_it():
    assert select_evidence("Does dvc push upload to Docker?", HITS, threshold=0.8) is None
    assert evidence_answer(None) == REFUSAL and is_refusal(evidence_answer(None))
    chosen = select_evidence("Does dvc push upload to Docker?", HITS, threshold=0.75)   # at the threshold: answers
    assert chosen["n"] == 1 and chosen["support"] == 0.75
    assert select_evidence("Does dvc push upload to Docker?", [], threshold=None) is None   # nothing retrieved
    assert select_evidence("Is there a Docker image?", HITS)["n"] == 1   # no threshold: never refuses


def test_the_threshold_is_chosen_on_calibration_questions_asked_of_a_real_index(tmp_path):
    chunks = [{"chunk_id": "c1", "doc": "remote.txt", "section": "Remotes", "pages": None, "text": HITS[0]["text"]},
              {"chunk_id": "c2", "doc": "install.txt", "section": "Installing", "pages": None,
               "text": HITS[1]["text"]}]
    build_index(chunks, Index(method="bm25", passage_words=0), tmp_path / "index")
    items = [{"question": "How does dvc push upload outputs?", "answer": "..."},               # support 1.0
             {"question": "Does faqforge need Docker?", "answer": "No."},                     # 2 of 3
             {"question": "Does make setup pin torch?", "answer": "Yes."},                    # 1.0
             {"question": "Is there a Docker image?", "answer": "Not covered.", "answerable": False},   # 0.0
             {"question": "Can dvc push upload to Kubernetes volumes?", "answer": "Not covered.",
              "answerable": False}]                                                          # 3 of 5
    threshold, figures = choose_abstention(Retriever(tmp_path / "index"), items, k=2, max_false_refusals=0.0)
    assert threshold == 2 / 3   # unrounded: the least supported answerable question is still answered
    assert select_evidence(items[1]["question"], Retriever(tmp_path / "index").search([items[1]["question"]], 2)[0],
                           threshold) is not None
    assert figures == {"answerable": 3, "unanswerable": 2, "false_refusals": 0.0, "refused_unanswerable": 1.0}
    assert choose_abstention(Retriever(tmp_path / "index"), items[3:], k=2)[0] is None   # nothing answerable
    json.dumps(figures)   # goes to index.json and the metrics as it is


def test_the_threshold_answers_all_but_the_allowed_share_of_the_answerable_questions():
    answerable = [0.9, 0.8, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.2]
    unanswerable = [0.1, 0.3, 0.42, 0.5, 0.7]
    threshold, figures = abstention_threshold(answerable, unanswerable, max_false_refusals=0.1)
    assert threshold == 0.4 and figures == {"false_refusals": 0.1, "refused_unanswerable": 0.4}
    threshold, figures = abstention_threshold(answerable, unanswerable, max_false_refusals=0.25)
    assert threshold == 0.45 and figures == {"false_refusals": 0.2, "refused_unanswerable": 0.6}
    assert abstention_threshold(answerable, [], 0.0) == (0.2, {"false_refusals": 0.0})
    assert abstention_threshold([], unanswerable) == (None, {})
