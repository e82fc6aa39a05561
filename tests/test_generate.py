import json

from faqforge.generate import generation_messages, pairs_from_reply, parse_pairs, questions_for

PARAMS = {"language": "English", "domain": "widgets",
          "system_prompt": "FAQ of {domain}.", "user_prompt": "Write {total_questions} in {language}:\n\"\"\"{text}\"\"\"",
          "examples": [{"text": "Shops open at 9.", "pairs": [{"question": "When do shops open?", "answer": "At 9."}]}]}


def test_question_count_scales_and_is_bounded():
    assert questions_for(40, 80, 2, 5) == 2
    assert questions_for(240, 80, 2, 5) == 3
    assert questions_for(4000, 80, 2, 5) == 5


def test_examples_come_first_as_chat_turns_and_chunk_only_in_last_user_message():
    messages = generation_messages({"text": "SECRET CHUNK"}, PARAMS, 3)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "FAQ of widgets."
    assert "Write 1 in English" in messages[1]["content"] and "Shops open at 9." in messages[1]["content"]
    assert json.loads(messages[2]["content"]) == [{"question": "When do shops open?", "answer": "At 9."}]
    assert "SECRET CHUNK" in messages[3]["content"] and "Write 3 in English" in messages[3]["content"]
    assert all("SECRET CHUNK" not in m["content"] for m in messages[:3])


def test_parse_plain_json():
    reply = '[{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2."}]'
    assert parse_pairs(reply) == [{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2."}]


def test_parse_json_wrapped_in_prose_and_fences():
    reply = 'Sure!\n```json\n[{"question": "Q1?", "answer": "A1."}]\n```\nHope it helps.'
    assert parse_pairs(reply) == [{"question": "Q1?", "answer": "A1."}]


def test_parse_truncated_array_keeps_complete_objects():
    reply = '[{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answ'
    assert parse_pairs(reply) == [{"question": "Q1?", "answer": "A1."}]


def test_parse_cut_off_reply_with_extra_keys():
    reply = '[{"question": "How to \\"train\\"?", "answer": "Use fit.", "explanation": "You can use the'
    assert parse_pairs(reply) == [{"question": 'How to "train"?', "answer": "Use fit."}]


def test_parse_skips_objects_without_both_fields():
    reply = '[{"question": "Q1?"}, {"question": "Q2?", "answer": "A2."}, {"answer": ""}]'
    assert parse_pairs(reply) == [{"question": "Q2?", "answer": "A2."}]


def test_parse_q_a_lines():
    reply = "1. Q: How do I run it?\nA: Use make run.\n2. Q: How do I test?\nA: Use make test."
    assert parse_pairs(reply) == [{"question": "How do I run it?", "answer": "Use make run."},
                                  {"question": "How do I test?", "answer": "Use make test."}]


def test_unparseable_reply_gives_nothing():
    assert parse_pairs("I cannot help with that.") == []


def test_pairs_carry_provenance_are_capped_and_example_copies_dropped():
    chunk = {"chunk_id": "c1", "doc": "data/docs/a.md"}
    reply = ('[{"question": "A?", "answer": "a"}, {"question": "when do shops open", "answer": "At 9."}, '
             '{"question": "B?", "answer": "b"}, {"question": "C?", "answer": "c"}]')
    pairs, copies = pairs_from_reply(chunk, reply, 3, ["When do shops open?"])
    assert [p["id"] for p in pairs] == ["c1-0", "c1-2"]
    assert all(p["doc"] == "data/docs/a.md" and p["chunk_id"] == "c1" for p in pairs)
    assert copies[0]["id"] == "c1-1" and copies[0]["why"] == "copies a worked example from the prompt"
    assert copies[0]["dropped_by"] == "generate"
