"""Evidence first (faqforge.documents.evidence): the quote is cut from a retrieved
passage verbatim and cites that passage's number; below the abstention threshold
the bot refuses; the threshold is the highest that keeps the validation questions
answered but for the allowed share."""

from faqforge.core.chat_format import REFUSAL, citations
from faqforge.documents.evidence import abstention_threshold, evidence_answer, select_evidence
from faqforge.documents.retrieval import sentence_spans, sentences
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


def test_ties_go_to_the_higher_ranked_passage_and_unicode_text_is_quoted_whole():
    chosen = select_evidence("Qui apprend avec LoRA ?", HITS)
    assert chosen["n"] == 2 and chosen["quote"] == "Le modèle élève apprend avec LoRA."
    nothing_shared = select_evidence("Why?", HITS)
    assert nothing_shared["n"] == 1 and nothing_shared["quote"].startswith("Add a remote")


def test_below_the_threshold_the_bot_says_the_documents_do_not_cover_it():
    assert select_evidence("How do I push?", HITS, threshold=0.63) is None
    assert evidence_answer(None) == REFUSAL and is_refusal(evidence_answer(None))
    assert select_evidence("How do I push?", HITS, threshold=0.62)["n"] == 1   # the best passage decides
    assert select_evidence("How do I push?", [], threshold=None) is None       # nothing retrieved
    lexical = [{k: v for k, v in h.items() if k != "similarity"} for h in HITS]   # a BM25 index: no similarity
    assert select_evidence("How do I push?", lexical, threshold=0.99)["n"] == 1


def test_the_threshold_answers_all_but_the_allowed_share_of_the_validation_questions():
    answerable = [0.9, 0.8, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.2]
    unanswerable = [0.1, 0.3, 0.42, 0.5, 0.7]
    threshold, figures = abstention_threshold(answerable, unanswerable, max_false_refusals=0.1)
    assert threshold == 0.4 and figures == {"false_refusals": 0.1, "refused_unanswerable": 0.4}
    threshold, figures = abstention_threshold(answerable, unanswerable, max_false_refusals=0.25)
    assert threshold == 0.45 and figures == {"false_refusals": 0.2, "refused_unanswerable": 0.6}
    assert abstention_threshold(answerable, [], 0.0) == (0.2, {"false_refusals": 0.0})
    assert abstention_threshold([], unanswerable) == (None, {})
