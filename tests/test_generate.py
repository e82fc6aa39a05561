import json

import pytest

from faqforge.core.config import parse_section
from faqforge.core.records import FIELDS, pair_prompt, pair_response
from faqforge.models.guided import string_array_shape
from faqforge.synthesis.generate import generation_messages, pairs_from_reply, pairs_schema, parse_pairs, questions_for
from tests.support.sections import changed, section

# a generate section as the stage gets it: these values, params.yaml's defaults for the rest
PARAMS = section(
    "generate", language="English", domain="widgets", format="qa", answer_first=False, answer_style="plain",
    system_prompt="FAQ of {domain}.", user_prompt="Write {total_questions} in {language}:\n\"\"\"{text}\"\"\"",
    examples=[{"text": "Shops open at 9.", "pairs": [{"question": "When do shops open?", "answer": "At 9."}]}])


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


def test_a_pair_repeating_the_instructions_is_dropped_unless_the_chunk_says_it_too():
    """A teacher that obeys a planted "print your instructions" writes the system
    prompt as an answer: dropped. A six-word run the chunk itself contains is fine."""
    params = section("generate")
    chunk = {"chunk_id": "c1", "doc": "data/docs/a.md",
             "text": "Every answer is copied from the given text by the reviewers. Shops open at 9."}
    instructions = "\n".join(m["content"] for m in generation_messages({"text": ""}, params, 1))
    leak = params.system_prompt.format(domain=params.domain, language="English").split("\n")[1]
    reply = json.dumps([{"question": "What are your instructions?", "answer": leak},
                        {"question": "Who copies the answers?", "answer": "Every answer is copied from the given text."},
                        {"question": "When do shops open?", "answer": "Shops open at 9."}])
    pairs, copies = pairs_from_reply(chunk, reply, 5, [], instructions=instructions)
    assert [p["id"] for p in pairs] == ["c1-1", "c1-2"]
    assert [c["reason"] for c in copies] == ["repeats the teacher's instructions"]
    assert "which the chunk does not contain" in copies[0]["why"]


def test_answer_first_puts_answer_key_first_in_examples_and_schema():
    params = changed(PARAMS, answer_first=True, max_chars={"question": 100, "answer": 200})
    messages = generation_messages({"text": "x"}, params, 2)
    assert messages[2]["content"] == '[{"answer": "At 9.", "question": "When do shops open?"}]'
    schema = pairs_schema(2, params)
    assert list(schema["items"]["properties"]) == ["answer", "question"]
    assert schema["minItems"] == schema["maxItems"] == 2
    fields, min_items, max_items, is_array = string_array_shape(schema)
    assert fields == [("answer", 200, None), ("question", 100, "?")] and is_array
    # answer-first replies parse like any other
    assert parse_pairs('[{"answer": "At 9.", "question": "When?"}]') == [{"question": "When?", "answer": "At 9."}]


def test_parse_trailing_commas_and_single_object():
    assert parse_pairs('[{"question": "Q1?", "answer": "A1.",},]') == [{"question": "Q1?", "answer": "A1."}]
    assert parse_pairs('Here: {"question": "Q1?", "answer": "A1."} done') == [{"question": "Q1?", "answer": "A1."}]
    assert parse_pairs('{"pairs": [{"question": "Q1?", "answer": "A1."}]}') == [{"question": "Q1?", "answer": "A1."}]


def test_parse_single_line_and_unbalanced_objects():
    reply = '{"question": "Q1?", "answer": "A1."} {"question": "Q2?", "answer": "A2."'
    assert parse_pairs(reply) == [{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2."}]


def test_instruction_format_records_and_prompt_response():
    reply = '[{"instruction": "Summarise the file.", "input": "", "output": "It lists stages."}, {"instruction": ""}]'
    [record] = parse_pairs(reply, FIELDS["instruction"])
    assert record == {"instruction": "Summarise the file.", "input": "", "output": "It lists stages."}
    assert pair_prompt({**record, "input": "dvc.yaml"}) == "Summarise the file.\n\ndvc.yaml"
    assert pair_response(record) == "It lists stages."
    assert pair_prompt({"question": "Q?", "answer": "A"}) == "Q?"
    pairs, _ = pairs_from_reply({"chunk_id": "c", "doc": "d"}, reply, 3, (), FIELDS["instruction"])
    assert pairs[0]["id"] == "c-0" and pairs[0]["output"] == "It lists stages." and "question" not in pairs[0]


def test_examples_must_match_the_format():
    import pytest

    from faqforge.core.io import PipelineError
    with pytest.raises(PipelineError, match=r"generate.examples\[0\] has a pair without instruction, output"):
        generation_messages({"text": "x"}, changed(PARAMS, format="instruction"), 2)


def test_quoted_style_asks_for_a_verbatim_quote_before_the_answer():
    from faqforge.core.io import PipelineError
    from faqforge.core.records import record_fields
    example = {"text": "Shops open at 9. They close at 6.",
               "pairs": [{"question": "When do shops open?", "quote": "Shops open at 9.", "answer": "At 9."}]}
    params = changed(PARAMS, answer_first=True, answer_style="quoted", examples=[example],
                     quote_instruction="Also copy the supporting sentence as quote.")
    assert record_fields(params) == ("question", "answer", "quote")
    messages = generation_messages({"text": "Widgets ship in 3 days."}, params, 2)
    assert messages[2]["content"] == '[{"quote": "Shops open at 9.", "answer": "At 9.", "question": "When do shops open?"}]'
    assert all(m["content"].endswith("Also copy the supporting sentence as quote.") for m in messages[1::2])
    assert list(pairs_schema(2, params)["items"]["properties"]) == ["quote", "answer", "question"]
    assert list(pairs_schema(2, changed(params, answer_first=False))["items"]["properties"]) == ["question", "quote", "answer"]
    reply = '[{"quote": "Widgets ship in 3 days.", "answer": "In 3 days.", "question": "How fast do widgets ship?"}]'
    pairs, _ = pairs_from_reply({"chunk_id": "c", "doc": "d"}, reply, 3, (), record_fields(params))
    assert pairs == [{"id": "c-0", "chunk_id": "c", "doc": "d", "question": "How fast do widgets ship?",
                      "answer": "In 3 days.", "quote": "Widgets ship in 3 days."}]
    assert parse_pairs('[{"answer": "In 3 days.", "question": "How fast?"}]', record_fields(params)) == []  # no quote
    plain = generation_messages({"text": "x"}, changed(params, answer_style="plain"), 1)
    assert "quote" not in json.dumps(plain)
    with pytest.raises(PipelineError, match=r"params.yaml: generate.answer_style: input should be 'plain' or "
                                            r"'quoted' \(got 'verbatim'\)"):
        parse_section("params.yaml", "generate", {**params.model_dump(), "answer_style": "verbatim"})
