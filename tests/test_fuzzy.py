"""The fuzzy searches against rapidfuzz's own scorers applied to every pair.

The reference scores every pair with rapidfuzz's scorer of the same name on
`normalise`d text (rapidfuzz sorts the words itself for token_sort_ratio), so
it shares nothing with the searches but the normalisation.
"""

import random

import pytest
from rapidfuzz import fuzz

from faqforge.core.records import normalise
from faqforge.refinement.fuzzy import similar_pairs
from tests.support.project import ROOT
from tests.support.synthetic import document_questions, near_copy
from tests.support.synthetic import pairs as synthetic_pairs

TYPO = ["How do I configure remotes?", "how do i configure remote", "Configure remotes?", "Configur remote?",
        "Where are checkpoints stored?", "Where are checkpoint stored?", "Whre ar chekpoints stord?",
        "What is LoRA?", "What is QLoRA?", "Which GPU do I need for training?", "Wich GPUs do I ned for trainng?",
        "Can I resume a killed run?", "Can I resmue a kiled run?"]
ACCENTS = [  # (accented, as typed without accents): French, German, Spanish, Portuguese
    ("Où se trouve le fichier de configuration du modèle ?", "Ou se trouve le fichier de configuration du modele?"),
    ("Wie groß darf die Größe eines Dokuments sein?", "Wie gross darf die Groesse eines Dokuments sein?"),
    ("Wie ändere ich die Schlüssel für den Lehrer?", "Wie andere ich die Schlussel fur den Lehrer?"),
    ("¿Cómo añado mis propios documentos a la canalización?", "Como anado mis propios documentos a la canalizacion?"),
    ("Qual é a configuração padrão da avaliação?", "Qual e a configuracao padrao da avaliacao?"),
]


def reference(texts, others, scorer, threshold):
    score = getattr(fuzz, scorer)
    a = [normalise(t) for t in texts]
    b = a if others is None else [normalise(t) for t in others]
    if others is None:
        return {(i, j) for i in range(len(a)) for j in range(i + 1, len(a)) if score(a[i], a[j]) >= threshold}
    return {(i, j) for i in range(len(a)) for j in range(len(b)) if score(a[i], b[j]) >= threshold}


def found(texts, others, scorer, threshold, path, paths):
    before = dict(paths)
    limit = 0 if path == "index" else 10**12
    result = {(i, j) for i, j, _ in similar_pairs(texts, others, scorer=scorer, threshold=threshold, exhaustive_up_to=limit)}
    ran = {name for name in paths if paths[name] > before[name]}
    assert ran == {path}, f"expected the {path} path, ran {ran}"
    return result


@pytest.mark.parametrize("scorer", ["ratio", "token_sort_ratio", "token_set_ratio", "partial_ratio"])
def test_exhaustive_path_equals_every_pair_scored(scorer, paths):
    """The length bound skips pairs, never a pair that reaches the threshold."""
    texts = TYPO + [a for pair in ACCENTS for a in pair] + document_questions(ROOT / "data/docs", 300, seed=4)
    expected = reference(texts, None, scorer, 90)
    assert len(expected) > 20
    assert found(texts, None, scorer, 90, "exhaustive", paths) == expected
    evalset = texts[::7]
    assert found(texts, evalset, scorer, 85, "exhaustive", paths) == reference(texts, evalset, scorer, 85)


@pytest.mark.parametrize("scorer", ["token_set_ratio", "token_sort_ratio", "ratio"])
def test_word_index_finds_typos_and_plurals_in_every_word(scorer, paths):
    """Pairs whose words all differ (typos, plurals) share no word; the index
    still proposes them because it matches words within one typo."""
    texts = TYPO + [p["question"] for p in synthetic_pairs(200, 0.1, seed=7)]
    expected = reference(texts, None, scorer, 90)
    assert {(2, 3), (9, 10)} & expected  # no word in common, yet duplicates
    assert found(texts, None, scorer, 90, "index", paths) == expected
    assert found(texts, None, scorer, 90, "exhaustive", paths) == expected


@pytest.mark.parametrize("path", ["exhaustive", "index"])
def test_accented_and_unaccented_copies_are_found_on_every_path(path, paths):
    texts = [t for pair in ACCENTS for t in pair] + ["Où est la clé de l'API ?", "Wo ist der API-Schlüssel?"]
    pairs = found(texts, None, "token_sort_ratio", 90, path, paths)
    assert {(2 * k, 2 * k + 1) for k in range(len(ACCENTS))} <= pairs
    assert found(texts[0::2], texts[1::2], "token_sort_ratio", 90, path, paths) >= {(k, k) for k in range(5)}


@pytest.mark.parametrize("path", ["exhaustive", "index"])
def test_short_token_edits_are_found_on_every_path(path, paths):
    texts = ["What does step 10 do in v2?", "What does step 11 do in v3?", "How do I pin torch to 2.13?",
             "How do I pin torch to 2.14?", "What is the port of the server in production?",
             "What is the port of the server on production?", "Why is the validation loss rising?"]
    assert found(texts, None, "token_sort_ratio", 90, path, paths) == reference(texts, None, "token_sort_ratio", 90)
    assert {(0, 1), (2, 3), (4, 5)} <= reference(texts, None, "token_sort_ratio", 90)


def test_word_index_recall_on_document_questions_with_short_token_edits(paths):
    """1,200 questions made from data/docs sentences, a quarter of them edits of
    another (half of those a number, version or two-letter word changed). The
    index never reports a pair the exhaustive search does not, and finds almost
    all of them; bench/dedup.py prints the same count on 20,000 questions."""
    texts = document_questions(ROOT / "data/docs", 1200, seed=1)
    exhaustive = found(texts, None, "token_sort_ratio", 90, "exhaustive", paths)
    indexed = found(texts, None, "token_sort_ratio", 90, "index", paths)
    assert exhaustive == reference(texts, None, "token_sort_ratio", 90)
    assert len(exhaustive) > 300 and indexed <= exhaustive
    missed = exhaustive - indexed
    print(f"exhaustive {len(exhaustive)} pairs, index {len(indexed)}, missed {len(missed)}")
    assert len(missed) <= 0.01 * len(exhaustive), [(texts[i], texts[j]) for i, j in sorted(missed)[:5]]


@pytest.mark.parametrize("scorer,threshold", [("token_set_ratio", 85), ("token_sort_ratio", 85),
                                              ("partial_ratio", 90)])
def test_cross_search_through_the_index_equals_every_pair_scored(scorer, threshold, paths):
    """Training questions against eval questions: reworded, typo'd, shortened and
    extended copies are all found, and nothing else."""
    rng = random.Random(11)
    evalset = [p["question"] for p in synthetic_pairs(60, 0, seed=12)]
    questions = [p["question"] for p in synthetic_pairs(300, 0.1, seed=13)]
    questions += [near_copy(rng.choice(evalset), rng) for _ in range(40)]
    questions += [q.rstrip("?") + " in practice?" for q in evalset[:10]]
    questions += [" ".join(q.split()[:5]) for q in evalset[10:20]]
    expected = reference(questions, evalset, scorer, threshold)
    assert len({i for i, _ in expected}) > 40
    assert found(questions, evalset, scorer, threshold, "index", paths) == expected


def test_scores_are_rapidfuzz_scores_on_normalised_text():
    x, y = "How do I push the data to my remote?", "how do i push the data to my remote storage"
    assert similar_pairs([x, y], scorer="ratio", threshold=80) == [(0, 1, round(fuzz.ratio(normalise(x),
                                                                                           normalise(y)), 1))]
    assert similar_pairs([x, y], scorer="ratio", threshold=95) == []


def test_bad_scorer_or_threshold_is_named_when_params_yaml_is_read():
    from faqforge.core.config import parse_section
    from faqforge.core.io import PipelineError
    with pytest.raises(PipelineError, match=r"params.yaml: dedup.scorer: input should be 'ratio', "):
        parse_section("params.yaml", "dedup", {"scorer": "jaro"})
    with pytest.raises(PipelineError, match=r"params.yaml: dedup.threshold: .*less than or equal to 100 \(got 190\)"):
        parse_section("params.yaml", "dedup", {"threshold": 190})
