"""The word-index search against the all-pairs search and thefuzz itself."""

import random

import pytest
from synthetic import near_copy
from synthetic import pairs as synthetic_pairs
from thefuzz import fuzz

from faqforge.fuzzy import all_pairs_above, similar_pairs

TYPO = ["How do I configure remotes?", "how do i configure remote", "Configure remotes?", "Configur remote?",
        "Where are checkpoints stored?", "Where are checkpoint stored?", "Whre ar chekpoints stord?",
        "What is LoRA?", "What is QLoRA?", "Which GPU do I need for training?", "Wich GPUs do I ned for trainng?",
        "Can I resume a killed run?", "Can I resmue a kiled run?"]


def exhaustive(texts, others, scorer, threshold):
    if others is None:
        return {(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))
                if getattr(fuzz, scorer)(texts[i], texts[j]) >= threshold}
    return {(i, j) for i in range(len(texts)) for j in range(len(others))
            if getattr(fuzz, scorer)(texts[i], others[j]) >= threshold}


def found(texts, others, scorer, threshold, all_pairs_up_to):
    return {(i, j) for i, j, _ in similar_pairs(texts, others, scorer, threshold, all_pairs_up_to=all_pairs_up_to)}


@pytest.mark.parametrize("scorer", ["token_set_ratio", "token_sort_ratio", "ratio"])
def test_word_index_finds_typos_and_plurals_in_every_word(scorer):
    """Pairs whose words all differ (typos, plurals) share no word; the index
    still proposes them because it matches words within one typo."""
    texts = TYPO + [p["question"] for p in synthetic_pairs(200, 0.1, seed=7)]
    expected = exhaustive(texts, None, scorer, 90)
    assert {(2, 3), (9, 10)} & expected  # no word in common, yet duplicates
    assert found(texts, None, scorer, 90, all_pairs_up_to=0) == expected
    assert found(texts, None, scorer, 90, all_pairs_up_to=10**9) == expected


@pytest.mark.parametrize("scorer,threshold", [("token_set_ratio", 85), ("token_sort_ratio", 90),
                                              ("partial_ratio", 90)])
def test_cross_search_equals_exhaustive(scorer, threshold):
    """Training questions against eval questions: reworded, typo'd, shortened and
    extended copies are all found, and nothing else."""
    rng = random.Random(11)
    evalset = [p["question"] for p in synthetic_pairs(60, 0, seed=12)]
    questions = [p["question"] for p in synthetic_pairs(300, 0.1, seed=13)]
    questions += [near_copy(rng.choice(evalset), rng) for _ in range(40)]
    questions += [q.rstrip("?") + " in practice?" for q in evalset[:10]]
    questions += [" ".join(q.split()[:5]) for q in evalset[10:20]]
    expected = exhaustive(questions, evalset, scorer, threshold)
    assert len({i for i, _ in expected}) > 40
    assert found(questions, evalset, scorer, threshold, all_pairs_up_to=0) == expected


def test_thefuzz_rounding_is_respected():
    """thefuzz rounds 89.74 up to 90, so such a pair is a duplicate at threshold 90."""
    from rapidfuzz import fuzz as rf_fuzz
    x = "how do i push the data to my remote"  # 35 characters
    y = x + " storage"  # 43: ratio 2 * 35 / 78 = 89.74
    assert rf_fuzz.ratio(x, y) < 90 and fuzz.ratio(x, y) == 90
    assert similar_pairs([x, y], scorer="ratio", threshold=90) == [(0, 1, 90)]
    assert similar_pairs([x, y], scorer="ratio", threshold=90, all_pairs_up_to=0) == [(0, 1, 90)]
    assert list(all_pairs_above(["ab", "ab"], None, "ratio", 99.5)) == [(0, 1)]
