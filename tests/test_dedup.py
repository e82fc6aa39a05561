import pytest
from thefuzz import fuzz

from faqforge import dedup

from faqforge.dedup import DEFAULT_PREFER, near_duplicate_clusters, near_duplicate_edges, normalise


def pair(i, question, answer="An answer.", score=None):
    p = {"id": f"p{i}", "question": question, "answer": answer}
    if score is not None:
        p["judge"] = {"score": score}
    return p


def test_normalise():
    assert normalise("How do I PUSH, data?!") == "how do i push data"


def test_edges_match_thefuzz_semantics():
    texts = ["How do I push data to the remote?", "how do i push data to the remote storage?",
             "What is LoRA?"]
    edges = near_duplicate_edges(texts, "token_set_ratio", 90)
    expected = [(i, j, fuzz.token_set_ratio(texts[i], texts[j])) for i in range(3) for j in range(i + 1, 3)
                if fuzz.token_set_ratio(texts[i], texts[j]) >= 90]
    assert edges == expected and len(edges) == 1


def test_token_scorers_ignore_case_and_punctuation_ratio_does_not():
    texts = ["alpha beta gamma?", "unrelated words here?", "Alpha beta gamma!"]
    assert [(i, j) for i, j, _ in near_duplicate_edges(texts, "token_sort_ratio", 95)] == [(0, 2)]
    assert near_duplicate_edges(texts, "ratio", 95) == []  # thefuzz's ratio compares raw text


def test_cluster_keeps_best_judged_then_longest():
    pairs = [pair(0, "How do I push data?", "Push.", score=3),
             pair(1, "how do I push data", "Run dvc push to upload.", score=5),
             pair(2, "How do I push my data?", "Run dvc push now, please.", score=5),
             pair(3, "What is LoRA?")]
    kept, dropped = near_duplicate_clusters(pairs, "question", "token_set_ratio", 90)
    assert [p["id"] for p in kept] == ["p2", "p3"]
    assert {d["id"] for d in dropped} == {"p0", "p1"}
    assert all(d["duplicate_of"] == "p2" and d["dropped_by"] == "dedup" and d["why"] for d in dropped)
    exact = next(d for d in dropped if d["id"] == "p1")
    assert exact["score"] == 100 and exact["why"].startswith("exact duplicate")


def test_question_answer_field_keeps_different_answers():
    pairs = [pair(0, "How do I push?", "Use dvc push with the default remote."),
             pair(1, "How do I push?", "Completely different: configure S3 credentials first.")]
    kept, _ = near_duplicate_clusters(pairs, "question_answer", "token_set_ratio", 95)
    assert len(kept) == 2
    kept, _ = near_duplicate_clusters(pairs, "question", "token_set_ratio", 95)
    assert len(kept) == 1


@pytest.mark.parametrize("search", ["all pairs", "word index"])
def test_decisions_equal_exhaustive_thefuzz_on_generated_data(search, monkeypatch):
    """No missed pair, no false merge: the candidate search finds exactly the pairs
    an all-pairs thefuzz loop finds, and clusters are their connected components."""
    from synthetic import pairs as synthetic_pairs
    if search == "word index":
        monkeypatch.setattr(dedup, "ALL_PAIRS_UP_TO", 0)
    data = synthetic_pairs(600, 0.15, seed=3)
    questions = [p["question"] for p in data]
    expected = {(i, j) for i in range(len(data)) for j in range(i + 1, len(data))
                if fuzz.token_set_ratio(questions[i], questions[j]) >= 90}
    assert len(expected) > 50  # the planted copies are there
    found = {(i, j) for i, j, _ in near_duplicate_edges(questions, "token_set_ratio", 90,
                                                        all_pairs_up_to=dedup.ALL_PAIRS_UP_TO)}
    exact_pairs = {(i, j) for i in range(len(data)) for j in range(i + 1, len(data))
                   if normalise(questions[i]) == normalise(questions[j])}
    assert exact_pairs  # planted case-and-punctuation copies
    # A later exact copy is linked to its first occurrence only; between distinct
    # texts the search finds exactly the pairs the all-pairs loop finds.
    copies = {j for _, j in exact_pairs}
    assert {(i, j) for i, j in found if j not in copies} == {(i, j) for i, j in expected
                                                            if i not in copies and j not in copies}
    assert found <= expected

    parent = list(range(len(data)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i
    for i, j in expected | exact_pairs:
        parent[root(j)] = root(i)
    components = {}
    for i in range(len(data)):
        components.setdefault(root(i), set()).add(data[i]["id"])
    kept, dropped = near_duplicate_clusters(data, "question", "token_set_ratio", 90)
    clusters = {}
    for p in kept + dropped:
        clusters.setdefault(p["cluster"], set()).add(p["id"])
    assert sorted(map(sorted, clusters.values())) == sorted(map(sorted, components.values()))
    assert len(kept) == len(components)


def test_representative_rule_from_params():
    pairs = [pair(0, "How do I push data?", "Run dvc push to upload the cache."),
             pair(1, "How do I push my data?", "dvc push."),
             pair(2, "how do I push data to it?", "Use dvc push.")]
    pairs[1]["grounding"], pairs[2]["grounding"] = 0.9, 0.5
    pairs[2]["judge"] = {"score": None, "p_yes": 0.8}
    cluster_head = lambda prefer: near_duplicate_clusters(pairs, prefer=prefer)[0][0]["id"]  # noqa: E731
    assert cluster_head(["longest_answer"]) == "p0"
    assert cluster_head(["shortest_answer"]) == "p1"
    assert cluster_head(["grounding", "longest_answer"]) == "p1"  # p0 has no grounding: ranks last
    assert cluster_head(["p_yes", "grounding"]) == "p2"
    assert cluster_head(["earliest", "shortest_answer"]) == "p0"
    assert cluster_head(DEFAULT_PREFER) == "p2"  # no judge scores; p_yes decides


def test_unknown_preference_is_a_clear_error():
    from faqforge.io import PipelineError
    with pytest.raises(PipelineError, match="dedup.prefer: unknown criterion 'best'"):
        near_duplicate_clusters([pair(0, "Q?")], prefer=["best"])


def test_exact_copies_are_linked_once_and_not_searched():
    texts = ["How do I push?", "how do i push", "HOW DO I PUSH!", "How do I push data?"]
    edges = near_duplicate_edges(texts, "token_set_ratio", 90)
    assert (0, 1, 100) in edges and (0, 2, 100) in edges
    assert not [e for e in edges if e[0] in (1, 2)]  # copies are not compared with anything else
    assert (0, 3, 100) in edges  # token_set_ratio: a subset scores 100


def test_the_streaming_file_version_decides_exactly_like_the_in_memory_one(tmp_path):
    """dedup_file (what the stage runs, holding only ids, texts and sort keys) writes
    the same kept and dropped records, in input order, as near_duplicate_clusters."""
    from synthetic import pairs as synthetic_pairs

    from faqforge.dedup import dedup_file
    from faqforge.io import read_jsonl, write_jsonl
    data = synthetic_pairs(400, 0.2, seed=5)
    for k, p in enumerate(data):
        p["judge"] = {"score": k % 5, "p_yes": None}
    write_jsonl(tmp_path / "in.jsonl", data)
    counts = dedup_file(tmp_path / "in.jsonl", tmp_path / "kept.jsonl", tmp_path / "dropped.jsonl")
    kept, dropped = near_duplicate_clusters(data)
    assert read_jsonl(tmp_path / "kept.jsonl") == kept and read_jsonl(tmp_path / "dropped.jsonl") == dropped
    assert counts["pairs_in"] == 400 and counts["kept"] == len(kept) and counts["dropped"] == len(dropped) > 20
    assert counts["exact_duplicates"] == sum(d["reason"] == "exact duplicate" for d in dropped) > 0
    assert counts["clusters_with_duplicates"] == len({d["cluster"] for d in dropped})
