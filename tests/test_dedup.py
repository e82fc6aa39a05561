import pytest
from rapidfuzz import fuzz

from faqforge.core.config import parse_section
from faqforge.core.io import PipelineError, write_jsonl
from faqforge.core.records import normalise
from faqforge.core.sections import Dedup
from faqforge.refinement import fuzzy
from faqforge.refinement.dedup import dedup_stream, near_duplicate_clusters
from tests.support.project import ROOT
from tests.support.sections import changed, section
from tests.support.synthetic import document_questions
from tests.support.synthetic import pairs as synthetic_pairs

DEFAULTS = section("dedup")   # the project's params.yaml
INSTALL = ["How do I install faqforge?", "How do I install faqforge on Windows?",
           "How do I install faqforge behind a corporate proxy?",
           "How do I install faqforge with CUDA support on a GPU server?",
           "How do I install faqforge without internet access?"]


def pair(i, question, answer="An answer.", score=None):
    p = {"id": f"p{i}", "question": question, "answer": answer}
    if score is not None:
        p["judge"] = {"score": score}
    return p


def with_defaults(pairs, **changes):
    return near_duplicate_clusters(pairs, changed(DEFAULTS, **changes))


def test_distinct_longer_questions_survive_the_default_params():
    kept, dropped = with_defaults([pair(i, q) for i, q in enumerate(INSTALL)])
    assert [p["question"] for p in kept] == INSTALL and dropped == []


@pytest.mark.parametrize("copy", ["How do I install faqforge?", "how do i install FAQFORGE",
                                  "How do I install faqforge ?!", "How can I install faqforge?",
                                  "How do I instal faqforge?", "How do I install faqforge now?"])
def test_exact_case_punctuation_one_word_and_typo_rewordings_are_removed(copy):
    kept, dropped = with_defaults([pair(0, INSTALL[0], score=5), pair(1, copy, score=3)] +
                                  [pair(k + 2, q) for k, q in enumerate(INSTALL[1:])])
    assert [d["id"] for d in dropped] == ["p1"] and dropped[0]["duplicate_of"] == "p0"
    assert len(kept) == 5


def test_a_pair_is_dropped_only_as_a_duplicate_of_the_pair_kept_in_its_place():
    """With token_set_ratio the short question scores 100 against each longer
    one, so single linkage chains all five into one cluster. Around centres, the
    preferred "on Windows" claims only the short question; the others, distinct
    from it, stay."""
    pairs = [pair(i, q, score=3) for i, q in enumerate(INSTALL)]
    pairs[1]["judge"]["score"] = 5
    kept, dropped = near_duplicate_clusters(pairs, Dedup(scorer="token_set_ratio", threshold=90))
    assert [d["id"] for d in dropped] == ["p0"] and dropped[0]["duplicate_of"] == "p1"
    assert [p["id"] for p in kept] == ["p1", "p2", "p3", "p4"]
    # When the short question is preferred it claims every superset: the subset
    # effect of token_set_ratio, which is why it is not the default scorer.
    pairs[0]["judge"]["score"] = 9
    kept, dropped = near_duplicate_clusters(pairs, Dedup(scorer="token_set_ratio", threshold=90))
    assert [p["id"] for p in kept] == ["p0"]
    kept, dropped = near_duplicate_clusters(pairs, Dedup(scorer="token_sort_ratio", threshold=90))
    assert len(kept) == 5


@pytest.mark.parametrize("path", ["exhaustive", "index"])
def test_every_drop_scores_the_threshold_against_its_kept_pair_and_no_two_kept_pairs_do(path, paths, monkeypatch):
    """On questions made from the documents, with planted edits, through the path
    named (asserted): the centres are maximal and every drop is justified."""
    if path == "index":
        monkeypatch.setitem(fuzzy.EXHAUSTIVE_UP_TO, "token_sort_ratio", 0)
    questions = document_questions(ROOT / "data/docs", 700, seed=2)
    data = [pair(i, q, score=i % 5) for i, q in enumerate(questions)]
    kept, dropped = near_duplicate_clusters(data, Dedup(scorer="token_sort_ratio", threshold=90))
    assert paths[path] >= 1 and paths["index" if path == "exhaustive" else "exhaustive"] == 0
    by_id = {p["id"]: p for p in data}
    score = lambda a, b: fuzz.token_sort_ratio(normalise(a), normalise(b))  # noqa: E731
    assert len(dropped) > 100
    for d in dropped:
        centre = by_id[d["duplicate_of"]]
        assert d["duplicate_of"] in {p["id"] for p in kept}
        assert score(d["question"], centre["question"]) >= 90 - 1e-9
        assert (centre.get("judge") or {}).get("score", 0) >= d["judge"]["score"]
    kept_questions = [normalise(p["question"]) for p in kept]
    close = [(a, b) for i, a in enumerate(kept_questions) for b in kept_questions[i + 1:] if score(a, b) >= 90]
    # The index may miss a pair the exhaustive search finds (test_fuzzy measures it); here it misses none.
    assert close == []


@pytest.mark.parametrize("path", ["exhaustive", "index"])
def test_accented_copies_are_duplicates_in_three_languages(path, paths, monkeypatch):
    if path == "index":
        monkeypatch.setitem(fuzzy.EXHAUSTIVE_UP_TO, "token_sort_ratio", 0)
    pairs = [pair(0, "Où se trouve le fichier de configuration du modèle ?", score=5),
             pair(1, "Ou se trouve le fichier de configuration du modele?"),
             pair(2, "Wie groß darf ein Dokument für die Übernahme sein?", score=5),
             pair(3, "Wie gross darf ein Dokument fur die Ubernahme sein?"),
             pair(4, "¿Cómo añado mis propios documentos a la canalización?", score=5),
             pair(5, "Como anado mis propios documentos a la canalizacion?"),
             pair(6, "Où se trouve le fichier de configuration de l'évaluation ?")]
    kept, dropped = with_defaults(pairs)
    assert paths[path] >= 1
    assert [p["id"] for p in kept] == ["p0", "p2", "p4", "p6"]
    assert {d["id"]: d["duplicate_of"] for d in dropped} == {"p1": "p0", "p3": "p2", "p5": "p4"}
    assert all(d["reason"] == "exact duplicate" for d in dropped)  # identical once accents are folded


def test_answer_threshold_keeps_one_question_asked_of_two_different_facts():
    pairs = [pair(0, "How do I install faqforge?", "Run make setup in a fresh clone; it creates .venv.", 5),
             pair(1, "How do I uninstall faqforge?", "Delete the .venv folder and the clone.", 4),
             pair(2, "how do i install faqforge", "Run make setup in a fresh clone: it creates .venv/.", 3)]
    kept, dropped = near_duplicate_clusters(pairs, Dedup(scorer="token_sort_ratio", threshold=90))
    assert [p["id"] for p in kept] == ["p0"]  # uninstall scores 96: questions alone cannot tell them apart
    kept, dropped = near_duplicate_clusters(pairs, Dedup(scorer="token_sort_ratio", threshold=90, answer_threshold=60))
    assert [p["id"] for p in kept] == ["p0", "p1"]
    assert dropped[0]["id"] == "p2" and "answers" in dropped[0]["why"]


def test_representative_rule_from_params():
    pairs = [pair(0, "How do I push data to the remote?", "Run dvc push to upload the cache."),
             pair(1, "How do I push my data to the remote?", "dvc push."),
             pair(2, "how do I push all data to the remote?", "Use dvc push.")]  # each scores 90+ with each
    pairs[1]["grounding"], pairs[2]["grounding"] = 0.9, 0.5
    pairs[2]["judge"] = {"score": None, "p_yes": 0.8}
    cluster_head = lambda prefer: near_duplicate_clusters(pairs, Dedup(prefer=prefer))[0][0]["id"]  # noqa: E731
    assert cluster_head(["longest_answer"]) == "p0"
    assert cluster_head(["shortest_answer"]) == "p1"
    assert cluster_head(["grounding", "longest_answer"]) == "p1"  # p0 has no grounding: ranks last
    assert cluster_head(["p_yes", "grounding"]) == "p2"
    assert cluster_head(["earliest", "shortest_answer"]) == "p0"
    assert cluster_head(Dedup().prefer) == "p2"  # no judge scores; p_yes decides


def test_unknown_preference_or_scorer_is_named_when_params_yaml_is_read():
    with pytest.raises(PipelineError, match=r"params.yaml: dedup.prefer.0: input should be 'judge_score', "):
        parse_section("params.yaml", "dedup", {"prefer": ["best"]})
    with pytest.raises(PipelineError, match=r"params.yaml: dedup.scorer: input should be 'ratio', "):
        parse_section("params.yaml", "dedup", {"scorer": "token_set"})


def test_the_streaming_file_version_decides_exactly_like_the_in_memory_one(tmp_path):
    """dedup_stream (what the stage runs, holding only ids, questions and sort keys)
    gives the same kept and dropped records, in input order, as near_duplicate_clusters."""
    data = synthetic_pairs(400, 0.2, seed=5)
    for k, p in enumerate(data):
        p["judge"] = {"score": k % 5, "p_yes": None}
    write_jsonl(tmp_path / "in.jsonl", data)
    streamed_kept, streamed_dropped, counts = dedup_stream(tmp_path / "in.jsonl", Dedup())
    kept, dropped = near_duplicate_clusters(data, Dedup())
    assert list(streamed_kept) == kept and list(streamed_dropped) == dropped
    assert counts["pairs_in"] == 400 and len(dropped) > 20
    assert counts["exact_duplicates"] == sum(d["reason"] == "exact duplicate" for d in dropped) > 0
    assert counts["clusters_with_duplicates"] == len({d["cluster"] for d in dropped})
