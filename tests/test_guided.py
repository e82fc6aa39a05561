import json

import pytest

from faqforge.core.io import PipelineError
from faqforge.models.guided import schema_of, string_array_shape


def _schema(min_items, max_items, **props):
    return {"type": "array", "minItems": min_items, "maxItems": max_items,
            "items": {"type": "object", "properties": props}}


@pytest.mark.parametrize("schema, message", [
    ({"type": "array", "items": {"type": "string"}}, "object of string properties"),
    ({"type": "object", "properties": {"n": {"type": "integer"}}}, "'n' is not one"),
    ({"type": "object", "properties": {"q": {"type": "string", "pattern": "^[a-z]+$"}}}, "patterns like"),
    (_schema(3, 2, q={"type": "string"}), "minItems <= maxItems"),
])
def test_unsupported_schemas_are_named(schema, message):
    with pytest.raises(PipelineError, match=message):
        string_array_shape(schema)


def test_schema_of_reads_openai_response_format():
    assert schema_of(None) is None and schema_of({"type": "json_object"}) is None
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    assert schema_of({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}) == schema


def _generate(tiny_model, schemas, **kwargs):
    from faqforge.models.checkpoints import load_model
    from faqforge.models.decoding import generate_chat
    from faqforge.models.sampling import Sampling
    model, tokenizer = load_model(tiny_model)
    chats = [[{"role": "user", "content": f"Write pairs {i}."}] for i in range(len(schemas))]
    return generate_chat(model, tokenizer, chats, Sampling(max_tokens=300, **kwargs), schemas=schemas, batch_size=4)


def test_random_model_writes_valid_json_for_every_row_of_a_mixed_batch(tiny_model):
    ranged = _schema(1, 3, a={"type": "string", "maxLength": 30}, b={"type": "string", "maxLength": 20})
    single = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 25}}}
    replies = _generate(tiny_model, [ranged, None, single, ranged])
    for reply, schema in zip(replies, [ranged, None, single, ranged]):
        if schema is None:
            continue  # a free row in the same batch is left alone
        value = json.loads(reply["text"])
        assert reply["finish_reason"] == "stop"
        records = value if isinstance(value, list) else [value]
        assert 1 <= len(records) <= 3
        for record in records:
            assert list(record) == list(schema.get("items", schema)["properties"])
            assert all(v.strip() for v in record.values())
            assert all(len(v) <= 30 for v in record.values())


def test_no_repeat_ngram_stops_loops_within_a_field(tiny_model):
    schema = _schema(2, 2, answer={"type": "string", "maxLength": 200})
    looped, = _generate(tiny_model, [schema])
    free, = _generate(tiny_model, [schema], no_repeat_ngram=3)

    def trigram_repeats(text):
        words = " ".join(r["answer"] for r in json.loads(text)).split()
        grams = list(zip(words, words[1:], words[2:]))
        return len(grams) - len(set(grams))
    assert trigram_repeats(looped["text"]) > 0  # the random model loops ("unsett unsett ...")
    assert trigram_repeats(free["text"]) < trigram_repeats(looped["text"])
