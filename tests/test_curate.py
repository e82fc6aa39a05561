import pytest

from faqforge.curate import grounding_score, judge_keeps, parse_verdict, rule_violation

RULES = {"min_question_chars": 10, "max_question_chars": 200, "min_answer_chars": 3,
         "require_question_mark": True, "reject_patterns": [r"\bthe text\b"]}


def test_grounding_counts_content_words_found_in_source():
    source = "Run dvc push to upload the cache to the remote storage."
    assert grounding_score("Run dvc push.", source) == 1.0
    assert grounding_score("Borrow ten library books.", source) == 0.0
    assert grounding_score("Run dvc push to the moon.", source) == pytest.approx(3 / 4)


@pytest.mark.parametrize("question, answer, reason", [
    ("Short?", "An answer.", "question shorter than 10"),
    ("How do I push data", "Run dvc push.", "question mark"),
    ("How do I push data?", "ok", "answer shorter than 3"),
    ("What does the text say?", "It says push.", "reject pattern"),
    ("How do I push data?", "how do I push data?", "repeats the question"),
])
def test_rules_name_the_broken_rule(question, answer, reason):
    assert reason in rule_violation({"question": question, "answer": answer}, RULES)


def test_good_pair_passes_rules():
    assert rule_violation({"question": "How do I push data?", "answer": "Run dvc push."}, RULES) is None


@pytest.mark.parametrize("reply, result, score", [
    ("Reason: stated. Verdict: YES Score: 5", "YES", 5),
    ("**Verdict:** no\n**Score:** 2", "NO", 2),
    ("Yes, this looks right. score 4", "YES", 4),
    ("The answer is fine", None, None),
])
def test_parse_verdict(reply, result, score):
    verdict = parse_verdict(reply)
    assert (verdict["result"], verdict["score"]) == (result, score)


def test_judge_keeps_follows_params():
    params = {"min_score": 3, "on_unparsed": "drop"}
    assert judge_keeps({"result": "YES", "score": 4}, params)
    assert not judge_keeps({"result": "YES", "score": 2}, params)
    assert not judge_keeps({"result": "NO", "score": 5}, params)
    assert not judge_keeps({"result": None, "score": None}, params)
    assert judge_keeps({"result": None, "score": None}, {**params, "on_unparsed": "keep"})


def test_judge_prompt_has_examples_as_turns_and_pair_last():
    from faqforge.curate import judge_messages
    params = {"system_prompt": "Judge.", "user_prompt": "T: {text}\nQ: {question}\nA: {answer}",
              "examples": [{"text": "t", "question": "q", "answer": "a", "reply": "Verdict: YES Score: 5"}]}
    messages = judge_messages({"question": "How?", "answer": "Thus."}, "chunk", params)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Verdict: YES Score: 5"
    assert messages[3]["content"] == "T: chunk\nQ: How?\nA: Thus."
