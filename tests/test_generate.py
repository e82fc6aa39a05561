from faqforge.generate import generation_messages, pairs_from_reply, parse_pairs, questions_for

PARAMS = {"language": "English", "domain": "widgets",
          "system_prompt": "FAQ of {domain}.", "user_prompt": "Write {total_questions} in {language}:\n\"\"\"{text}\"\"\""}


def test_question_count_scales_and_is_bounded():
    assert questions_for(40, 80, 2, 5) == 2
    assert questions_for(240, 80, 2, 5) == 3
    assert questions_for(4000, 80, 2, 5) == 5


def test_chunk_text_only_in_user_message():
    messages = generation_messages({"text": "SECRET CHUNK"}, PARAMS, 3)
    assert messages[0] == {"role": "system", "content": "FAQ of widgets."}
    assert "SECRET CHUNK" in messages[1]["content"] and "Write 3 in English" in messages[1]["content"]


def test_parse_plain_json():
    reply = '[{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2."}]'
    assert parse_pairs(reply) == [{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2."}]


def test_parse_json_wrapped_in_prose_and_fences():
    reply = 'Sure!\n```json\n[{"question": "Q1?", "answer": "A1."}]\n```\nHope it helps.'
    assert parse_pairs(reply) == [{"question": "Q1?", "answer": "A1."}]


def test_parse_truncated_array_keeps_complete_objects():
    reply = '[{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answ'
    assert parse_pairs(reply) == [{"question": "Q1?", "answer": "A1."}]


def test_parse_skips_objects_without_both_fields():
    reply = '[{"question": "Q1?"}, {"question": "Q2?", "answer": "A2."}, {"answer": ""}]'
    assert parse_pairs(reply) == [{"question": "Q2?", "answer": "A2."}]


def test_parse_q_a_lines():
    reply = "1. Q: How do I run it?\nA: Use make run.\n2. Q: How do I test?\nA: Use make test."
    assert parse_pairs(reply) == [{"question": "How do I run it?", "answer": "Use make run."},
                                  {"question": "How do I test?", "answer": "Use make test."}]


def test_unparseable_reply_gives_nothing():
    assert parse_pairs("I cannot help with that.") == []


def test_pairs_carry_provenance_and_are_capped():
    chunk = {"chunk_id": "c1", "doc": "data/docs/a.md"}
    reply = '[{"question": "A?", "answer": "a"}, {"question": "B?", "answer": "b"}, {"question": "C?", "answer": "c"}]'
    pairs = pairs_from_reply(chunk, reply, 2)
    assert [p["id"] for p in pairs] == ["c1-0", "c1-1"]
    assert all(p["doc"] == "data/docs/a.md" and p["chunk_id"] == "c1" for p in pairs)
