"""People's grades: the file (faqforge.core.grades), their join to the evaluation and the
automatic scores checked against them (faqforge.evaluation.graded)."""

import json
import multiprocessing

import pytest

from faqforge.core.grades import answer_key, append_grades, make_grade, read_grades
from faqforge.core.io import PipelineError
from faqforge.evaluation.graded import apply_grades, ordering
from faqforge.evaluation.scores import eval_metrics, score_predictions
from faqforge.evaluation.search_arms import search_answers


def _grade_many(path, grader, n):
    for i in range(n):
        append_grades(path, [make_grade(f"Question {i}?", f"{grader}'s answer {i}\u2028with a pasted line break",
                                        "right" if i % 2 else "wrong", grader)])


def test_two_graders_writing_at_once_lose_and_garble_nothing(tmp_path):
    path = tmp_path / "grades.jsonl"
    writers = [multiprocessing.Process(target=_grade_many, args=(path, name, 300)) for name in ("ana", "ben")]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=60)
    assert [w.exitcode for w in writers] == [0, 0]
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 601
    assert all(json.loads(line)["grader"] in ("ana", "ben") for line in lines[:-1])   # whole lines, every one
    grades = read_grades(path)
    assert len(grades) == 600
    # a separator a person pasted is escaped, so a reader splitting on it cannot break a line
    assert b"\xe2\x80\xa8" not in path.read_bytes()
    assert grades[answer_key("Question 3?", "ben's answer 3\u2028with a pasted line break")]["grade"] == "right"


def test_the_latest_grade_of_an_answer_wins_and_whitespace_does_not_make_another_answer(tmp_path):
    path = tmp_path / "grades.jsonl"
    append_grades(path, [make_grade("How do I run the tests?", "Run make test. [1]", "wrong", "ana")])
    append_grades(path, [make_grade("How do I run the tests?", "Run  make test.\n[1]", "right", "ben")])
    grades = read_grades(path)
    assert len(grades) == 1 and grades[answer_key("How do I run the tests?", "Run make test. [1]")]["grader"] == "ben"
    assert read_grades(tmp_path / "missing.jsonl") == {}


@pytest.mark.parametrize("line, message", [
    ('{"question": "q?", "answer": "a", "grade": "good", "grader": "x", "time": "t"}', "grade 'good' is not one of"),
    ('{"question": "q?", "answer": "a", "grade": "right", "time": "t"}', "grader must be a non-empty string"),
    ('{"question": "q?", "answer": "a", "grade": "right", "grader": "x", "time": "t", "arm": "tuned_rag"}',
     "unknown field 'arm'"),
    ("not json", "not JSON"),
])
def test_a_bad_line_is_named_with_its_file_and_line(tmp_path, line, message):
    path = tmp_path / "grades.jsonl"
    path.write_text(json.dumps(make_grade("q?", "a", "right", "x")) + "\n" + line + "\n")
    with pytest.raises(PipelineError, match=f"{path}:2: .*{message}"):
        read_grades(path)


EVALSET = [{"question": "How do I turn off paraphrase augmentation?", "answer": "Set augment.paraphrases to 0."},
           {"question": "How do I run the tests?", "answer": "Run make test."},
           {"question": "Is there a Docker image?", "answer": "The documents do not cover this.", "answerable": False}]
HITS = [[{"text": "The number of paraphrases per question is augment.paraphrases; set it to 0 to turn it off."}],
        [{"text": "To run the test suite instead: make test."}],
        [{"text": "faqforge ships with an embedded model."}]]


def predictions_with(bot_answers):
    replies = {**search_answers(EVALSET, HITS), "tuned_rag": [{"text": t} for t in bot_answers]}
    return score_predictions(EVALSET, HITS, replies)


def test_grades_join_by_answer_text_and_a_changed_answer_is_ungraded(tmp_path):
    path = tmp_path / "grades.jsonl"
    first = predictions_with(["Set augment.paraphrases to 0. [1]", "Run make test. [1]",
                              "The documents do not answer this question."])
    append_grades(path, [make_grade(p["question"], p["answers"]["tuned_rag"], g, "ana")
                         for p, g in zip(first, ("right", "right", "right"))])
    append_grades(path, [make_grade(first[1]["question"], first[1]["answers"]["top_passage"], "partly", "ana")])
    grades = apply_grades(first, path)
    assert grades["arms"]["tuned_rag"] == {"graded": 3, "ungraded": 0, "right": 3, "partly": 0, "wrong": 0}
    assert grades["arms"]["top_passage"]["partly"] == 1 and grades["grades"] == 4
    metrics = eval_metrics(first, n_resamples=50)
    assert metrics["arms"]["tuned_rag"]["graded_right"]["mean"] == 1
    assert metrics["arms"]["top_passage"]["graded_right"] == {"mean": 0.0, "ci95": [0.0, 0.0], "n": 1}
    # the next run answers the second question differently: that answer asks for a grade again
    second = predictions_with(["Set augment.paraphrases to 0. [1]", "Use pytest. [1]",
                               "The documents do not answer this question."])
    grades = apply_grades(second, path)
    assert grades["arms"]["tuned_rag"]["graded"] == 2 and grades["arms"]["tuned_rag"]["ungraded"] == 1
    assert second[1]["grades"]["tuned_rag"] is None and second[1]["scores"]["tuned_rag"]["graded_right"] is None


def test_agreement_counts_right_over_wrong_pairs_ties_half():
    graded = [(0, "right", {"f1": 0.9}), (0, "wrong", {"f1": 0.2}), (1, "right", {"f1": 0.1}),
              (1, "wrong", {"f1": 0.1}), (2, "wrong", {"f1": 0.8}), (2, "partly", {"f1": 0.5})]
    result = ordering(graded, "f1")
    # right: 0.9, 0.1; wrong: 0.2, 0.1, 0.8 -> 0.9 beats all three; 0.1 loses to 0.2 and 0.8, ties 0.1
    assert result["pairs"] == 6 and result["ordered"] == pytest.approx(3.5 / 6)
    assert result["within_pairs"] == 2 and result["within_question"] == pytest.approx(1.5 / 2)
    assert ordering([(0, "right", {"f1": None})], "f1")["ordered"] is None
