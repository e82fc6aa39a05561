"""The grades view's data: every question of the last evaluation
(data/eval/predictions.jsonl) with its reference, the passages the bot was
shown, and each distinct answer the arms gave, shuffled and unnamed, with the
grade it holds in data/eval/grades.jsonl (faqforge.core.grades).

Answers are shown in an order fixed by a hash of their text, never by arm, so
a grader cannot tell the bot from the search results; the same text given by
two arms is one answer, graded once. A grade is kept under the question and
the answer's text: after a rerun, an unchanged answer keeps its grade and a
changed one shows up ungraded.
"""

import json
from pathlib import Path

from faqforge.core.chat_format import source_label
from faqforge.core.grades import GRADES_FILE, answer_key, append_grades, make_grade, read_grades
from faqforge.core.io import PipelineError
from faqforge.core.records import stable_unit

PREDICTIONS = "data/eval/predictions.jsonl"


class Grading:
    def __init__(self, root=".", grader="grader"):
        root = Path(root)
        self.predictions_path, self.grades_path, self.grader = root / PREDICTIONS, root / GRADES_FILE, grader

    def _predictions(self):
        if not self.predictions_path.exists():
            raise PipelineError(f"{PREDICTIONS}: no evaluation to grade yet; run `dvc repro evaluate` first")
        with open(self.predictions_path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def questions(self):
        """{"questions": [...], "answers", "graded", "grader"}: each question with its
        reference, passages and distinct answers ({key, text, grade, grader})."""
        grades = read_grades(self.grades_path)
        questions, answers, graded = [], 0, 0
        for p in self._predictions():
            distinct = {}
            for text in p["answers"].values():
                distinct.setdefault(answer_key(p["question"], text), text)
            shown = []
            for key, text in sorted(distinct.items(), key=lambda kv: stable_unit(kv[0])):
                g = grades.get(key) or {}
                shown.append({"key": key, "text": text, "grade": g.get("grade"), "grader": g.get("grader")})
            answers += len(shown)
            graded += sum(a["grade"] is not None for a in shown)
            questions.append({"index": p["index"], "question": p["question"], "reference": p["reference"],
                              "answerable": p.get("answerable", True), "answers": shown,
                              "passages": [{"source": source_label(x), "text": x.get("text", "")}
                                           for x in p.get("passages", []) if x.get("doc")]})
        return {"questions": questions, "answers": answers, "graded": graded, "grader": self.grader}

    def grade(self, question, answer, grade):
        """Append one grade (checked: the answer must be one the last evaluation gave)."""
        if not isinstance(question, str) or not isinstance(answer, str):
            raise PipelineError("a grade needs the question and the answer's text")
        key = answer_key(question, answer)
        if not any(answer_key(p["question"], text) == key for p in self._predictions()
                   for text in p["answers"].values()):
            raise PipelineError("that answer is not in the last evaluation (data/eval/predictions.jsonl); reload "
                                "the page: the evaluation may have run again")
        append_grades(self.grades_path, [make_grade(question, answer, grade, self.grader)])
        return {"key": key, "grade": grade, "grader": self.grader}
