import pytest

from faqforge.core.records import grounding_score
from faqforge.core.sections import CurateRules
from faqforge.synthesis.curate import judge_keeps, rule_violation
from faqforge.teacher.verdict import parse_verdict
from tests.support.sections import section

RULES = CurateRules(min_question_chars=10, max_question_chars=200, min_answer_chars=3, max_answer_chars=40,
                    require_question_mark=True, reject_patterns=[r"\bthe text\b"], repeated_words=3)


def judge(**changes):
    """The project's curate.judge section with `changes`."""
    return section("curate", judge=changes).judge


def test_grounding_counts_content_words_found_in_source():
    source = "Run dvc push to upload the cache to the remote storage."
    assert grounding_score("Run dvc push.", source) == 1.0
    assert grounding_score("Borrow ten library books.", source) == 0.0
    assert grounding_score("Run dvc push to the moon.", source) == pytest.approx(3 / 4)


@pytest.mark.parametrize("question, answer, reason, detail", [
    ("Short?", "An answer.", "question too short", "6 characters, fewer than 10"),
    ("How do I push data", "Run dvc push.", "question does not end with a question mark", None),
    ("How do I push data?", "ok", "answer too short", "2 characters, fewer than 3"),
    ("What does the text say?", "It says push.", "question refers to a text the user cannot see",
     "matches " + repr(r"\bthe text\b")),
    ("How do I push data?", "As the text says, push.", "answer refers to a text the user cannot see",
     "matches " + repr(r"\bthe text\b")),
    ("How do I push data?", "Run dvc push, " * 5, "answer too long", "70 characters, more than 40"),
    ("   ", "Run dvc push.", "empty question or answer", None),
    ("How do I push data?", "how do I push data?", "answer repeats the question", None),
    ("How do I push data?", "Use dvc push. Use DVC push!", "answer repeats itself", "'use dvc push' occurs more than once"),
    ("Where is it, where is it, where?", "In data/docs.", "question repeats itself", "'where is it' occurs more than once"),
])
def test_rules_give_the_broken_rules_code_and_the_details_apart(question, answer, reason, detail):
    from faqforge.core.reasons import REASONS
    assert rule_violation({"question": question, "answer": answer}, RULES) == (reason, detail)
    assert reason in REASONS


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
    params = judge(min_score=3, on_unparsed="drop", min_p_yes=None)
    assert judge_keeps({"result": "YES", "score": 4}, params)
    assert not judge_keeps({"result": "YES", "score": 2}, params)
    assert not judge_keeps({"result": "NO", "score": 5}, params)
    assert not judge_keeps({"result": None, "score": None}, params)
    assert judge_keeps({"result": None, "score": None}, judge(min_score=3, on_unparsed="keep", min_p_yes=None))


def test_judge_prompt_has_examples_as_turns_and_pair_last():
    from faqforge.synthesis.curate import judge_messages
    params = judge(system_prompt="Judge.", user_prompt="T: {text}\nQ: {question}\nA: {answer}",
                   examples=[{"text": "t", "question": "q", "answer": "a", "reply": "Verdict: YES Score: 5"}])
    messages = judge_messages({"question": "How?", "answer": "Thus."}, "chunk", params)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Verdict: YES Score: 5"
    assert messages[3]["content"] == "T: chunk\nQ: How?\nA: Thus."


def test_instruction_records_skip_the_question_mark_rule():
    record = {"instruction": "List the pipeline stages", "input": "", "output": "ingest, generate, curate."}
    assert rule_violation(record, RULES) is None


def _token(text, top):
    return {"token": text, "logprob": top.get(text, -9.0), "top": top}


def test_p_yes_from_the_verdict_token_logprobs():
    import math
    logprobs = [_token("Reason", {"Reason": -0.1}), _token(":", {":": 0}), _token(" yes", {" yes": -0.2, " no": -2}),
                _token(" Verdict", {" Verdict": 0}), _token(":", {":": 0}),
                _token(" NO", {" NO": math.log(0.6), " YES": math.log(0.3), " Maybe": math.log(0.1)}),
                _token(" Score", {" Score": 0}), _token(":", {":": 0}), _token(" 2", {" 2": 0})]
    verdict = parse_verdict("Reason: yes Verdict: NO Score: 2", logprobs)
    assert verdict["result"] == "NO" and verdict["p_yes"] == pytest.approx(1 / 3, abs=1e-4)
    assert parse_verdict("Verdict: YES", [])["p_yes"] is None
    # tokenizers split " YES" into " Y" + "ES": the first piece stands for the word
    split = [_token(" Verdict", {" Verdict": 0}), _token(":", {":": 0}),
             _token(" Y", {" NO": math.log(0.2), " Y": math.log(0.3), " no": math.log(0.1), " The": math.log(0.2)}),
             _token("ES", {"ES": 0})]
    assert parse_verdict("Verdict: YES", split)["p_yes"] == pytest.approx(0.5)
    # without a "verdict" label the first YES/NO token counts
    assert parse_verdict("Yes", [_token("Yes", {"Yes": math.log(0.9), "No": math.log(0.1)})])["p_yes"] == 0.9


def test_judge_keeps_by_p_yes_when_asked():
    params = judge(min_score=3, on_unparsed="drop", min_p_yes=0.5)
    assert judge_keeps({"result": "NO", "score": None, "p_yes": 0.7}, params)
    assert not judge_keeps({"result": "YES", "score": 5, "p_yes": 0.4}, params)
    assert judge_keeps({"result": "YES", "score": 2, "p_yes": 0.9}, params)
    # no logprobs from the server: the written verdict decides
    assert judge_keeps({"result": "YES", "score": 4, "p_yes": None}, params)


def test_repeated_run_needs_the_same_words_twice():
    from faqforge.synthesis.curate import repeated_run
    assert repeated_run("run dvc push, then dvc push again", 3) is None  # 'dvc push' twice, but no 3-word run
    assert repeated_run("the file is x. the file is y.", 3) == "the file is"
    assert repeated_run("the file is x. the file is y.", 0) is None


# A chunk as ingest gives it from a PDF: lines broken mid-sentence, accents, curly quotes, a code span.
PDF_CHUNK = ("Le modèle élève apprend avec LoRA ; the rank is set by\nfinetune.lora_r (16 by default).\n"
             "Run \u201cdvc push\u201d to upload the outputs — the remote must exist first.")


@pytest.mark.parametrize("quote, kept", [
    ("the rank is set by finetune.lora_r (16 by default).", True),       # across the PDF line break
    ("\u201cLe modèle élève apprend avec LoRA\u201d", True),              # quote marks around it are not part of it
    ("Run \u201cdvc push\u201d to upload the outputs", True),             # curly quotes inside are text
    ("Le modele eleve apprend avec LoRA", False),                        # accents dropped: not verbatim
    ("the rank is set by finetune.lora_r (8 by default).", False),       # one fact changed
    ("The rank is set by finetune.lora_r.", False),                      # paraphrased, not copied
    ("Run dvc pull to download the outputs.", False),                    # from another chunk
    ("\u201d \u201c", False),                                            # nothing but quote marks
])
def test_quote_check_is_verbatim_on_real_shaped_text(quote, kept):
    from faqforge.synthesis.curate import quote_violation
    broken = quote_violation({"question": "What sets the rank?", "answer": "finetune.lora_r", "quote": quote}, PDF_CHUNK)
    assert (broken is None) == kept
    if not kept:
        assert broken[0] == "quote not in its chunk" and broken[1].endswith("does not occur there")


def test_pairs_without_a_quote_skip_the_quote_check():
    from faqforge.synthesis.curate import quote_violation
    assert quote_violation({"question": "q?", "answer": "anything at all"}, PDF_CHUNK) is None
