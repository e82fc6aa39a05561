"""People's grades of the evaluation's answers, data/eval/grades.jsonl: kept in
git, written by the review screen's grades view, read by the evaluate stage.

A grade names the question and the answer's text, so an answer that does not
change between runs keeps its grade, and a changed answer is simply ungraded:

    {"question": "How do I run the tests?", "answer": "Run make test. [1]",
     "grade": "right", "grader": "ana", "time": "2026-12-07T10:00:00+00:00"}

Grades: right, partly (right but incomplete, or right with something wrong
beside it), wrong. Per answer, the latest grade wins; every line is kept. Writers
append whole lines under a lock (faqforge.core.io.append_jsonl_locked), so two
graders never garble or lose a line.
"""

import datetime
import hashlib
import json

from faqforge.core.io import PipelineError, append_jsonl_locked, check_record, read_appended

GRADES_FILE = "data/eval/grades.jsonl"
GRADES = ("right", "partly", "wrong")
FIELDS = {"question", "answer", "grade", "grader", "time"}


def answer_key(question, answer):
    """The key a grade is kept under: the question and the answer, whitespace folded."""
    text = json.dumps([" ".join(question.split()), " ".join(answer.split())], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def make_grade(question, answer, grade, grader, when=None):
    """A checked grade record; PipelineError says what is wrong with it."""
    return check_grade({"question": question, "answer": answer, "grade": grade, "grader": grader,
                        "time": when or datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")})


def check_grade(record, where="grade"):
    check_record(record, where, FIELDS, ("question", "grader", "time"))
    if not isinstance(record.get("answer"), str):
        raise PipelineError(f"{where}: answer must be a string (the answer's text as graded)")
    if record.get("grade") not in GRADES:
        raise PipelineError(f"{where}: grade {record.get('grade')!r} is not one of {', '.join(GRADES)}")
    return record


def append_grades(path, grades):
    """Append checked grades as whole lines, under a lock."""
    append_jsonl_locked(path, [check_grade(g) for g in grades])


def read_grades(path=GRADES_FILE):
    """{answer key: the latest grade record for it}; empty when the file does not
    exist. A line that is not a valid grade stops with its file and line number."""
    records, _, _ = read_appended(path)
    latest = {}
    for n, record in records:
        check_grade(record, f"{path}:{n}")
        latest[answer_key(record["question"], record["answer"])] = record
    return latest
