"""People's grades joined to the evaluation, and the automatic scores checked against them.

An answer is graded when data/eval/grades.jsonl holds a grade for its question
and its exact text (faqforge.core.grades), so a rerun that changes an answer
asks for its grade again. Per arm: the share graded right (with its interval,
through the arm's `graded_right` score), partly right, wrong, and how many are
ungraded. Then the check a user needs before trusting the score on their own
documents: of all (right, wrong) pairs of graded answers, the share a score
orders correctly (the right one scores higher; a tie counts half), over all
answers and within the answers to one question.
"""

from faqforge.core.grades import answer_key, read_grades

SCORES_CHECKED = ("f1", "reference_recall")


def apply_grades(predictions, path):
    """Join the grades in `path` to the predictions (attach_grades) and return
    metrics/eval.json's `grades` section (grade_metrics)."""
    grades = read_grades(path)
    return grade_metrics(attach_grades(predictions, grades), len(grades))


def attach_grades(predictions, grades):
    """Each prediction gains `grades` {arm: grade or None} and each arm's scores
    `graded_right` (1 right, 0 partly right or wrong, None ungraded)."""
    for p in predictions:
        p["grades"] = {}
        for arm, answer in p["answers"].items():
            g = grades.get(answer_key(p["question"], answer))
            p["grades"][arm] = g["grade"] if g else None
            p["scores"][arm]["graded_right"] = None if g is None else int(g["grade"] == "right")
    return predictions


def grade_metrics(predictions, grades_in_file):
    """metrics/eval.json's `grades`: counts per arm, and how well each automatic
    score orders graded right answers above graded wrong ones."""
    arms = list(predictions[0]["answers"]) if predictions else []
    per_arm = {}
    for arm in arms:
        given = [p["grades"].get(arm) for p in predictions]
        per_arm[arm] = {"graded": sum(g is not None for g in given), "ungraded": sum(g is None for g in given),
                        **{g: sum(x == g for x in given) for g in ("right", "partly", "wrong")}}
    answers = {}   # one entry per distinct graded answer: the same text in two arms is one answer
    for p in predictions:
        for arm, answer in p["answers"].items():
            grade = p["grades"].get(arm)
            if grade in ("right", "wrong"):
                answers[answer_key(p["question"], answer)] = (p["index"], grade, p["scores"][arm])
    return {"grades": grades_in_file, "answers": sum(len(p["answers"]) for p in predictions),
            "graded": sum(a["graded"] for a in per_arm.values()), "arms": per_arm,
            "agreement": {score: ordering(list(answers.values()), score) for score in SCORES_CHECKED}}


def ordering(graded, score):
    """{"pairs", "ordered", "within_pairs", "within_question"}: of all (right,
    wrong) pairs of graded answers, the share where `score` ranks the right one
    higher (ties half), and the same over pairs that answer one question."""
    right = [(q, s[score]) for q, g, s in graded if g == "right" and s.get(score) is not None]
    wrong = [(q, s[score]) for q, g, s in graded if g == "wrong" and s.get(score) is not None]
    total = within = within_pairs = 0.0
    for q, r in right:
        for q2, w in wrong:
            point = 1.0 if r > w else 0.5 if r == w else 0.0
            total += point
            if q == q2:
                within += point
                within_pairs += 1
    pairs = len(right) * len(wrong)
    return {"pairs": pairs, "ordered": total / pairs if pairs else None, "within_pairs": int(within_pairs),
            "within_question": within / within_pairs if within_pairs else None}
