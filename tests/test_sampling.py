"""The one shape of sampling settings: its cache identity (stable, so caches written
before it stay valid), its OpenAI request fields both ways, and the batching key."""

import json

from faqforge.models.cache import request_key
from faqforge.models.sampling import Sampling

SCHEMA = {"type": "json_schema", "json_schema": {"name": "pairs", "schema": {"type": "object"}}}


def test_the_cache_identity_is_the_dict_the_teacher_has_always_keyed_by():
    """A teacher request of the default run, keyed as every cache/llm/ entry so far was:
    the same key, so no answer already paid for is asked again."""
    messages = [{"role": "user", "content": "Write 3 pairs."}]
    before = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 512, "seed": 0, "guided_no_repeat_ngram": 4,
              "response_format": SCHEMA}
    now = Sampling(max_tokens=512, no_repeat_ngram=4, response_format=SCHEMA)
    assert now.key() == before
    assert request_key("local:embedded:smollm2-135m-instruct", messages, now.key()) == \
        request_key("local:embedded:smollm2-135m-instruct", messages, before)
    judged = Sampling(max_tokens=64, top_logprobs=5)
    assert judged.key() == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 64, "seed": 0, "top_logprobs": 5}
    assert Sampling(stop=["\nQ:"]).key()["stop"] == ["\nQ:"]          # a new field: only when set
    assert Sampling.from_key(json.loads(json.dumps(now.key()))) == now   # what Ray ships and reads back


def test_replace_leaves_a_field_given_as_none_alone():
    base = Sampling(max_tokens=512, temperature=0.7)
    assert base.replace(max_tokens=64, response_format=None, top_logprobs=None) == \
        Sampling(max_tokens=64, temperature=0.7)
    assert base.replace(stop="END").stop == ("END",)


def test_openai_fields_both_ways():
    sampling = Sampling(max_tokens=32, temperature=0.5, top_p=0.9, seed=3, stop=("\n\n",), top_logprobs=2,
                        response_format=SCHEMA)
    body = sampling.to_openai()
    assert body == {"max_tokens": 32, "temperature": 0.5, "top_p": 0.9, "seed": 3, "stop": ["\n\n"],
                    "logprobs": True, "top_logprobs": 2, "response_format": SCHEMA}
    assert Sampling.from_openai(body, max_tokens=256) == sampling
    # The API's defaults for what a request leaves out; max_completion_tokens wins over max_tokens.
    assert Sampling.from_openai({"stop": "END"}, max_tokens=256) == Sampling(max_tokens=256, temperature=1.0,
                                                                             stop=("END",))
    assert Sampling.from_openai({"max_tokens": 9, "max_completion_tokens": 5}, 256).max_tokens == 5
    assert "no_repeat_ngram" not in json.dumps(Sampling(no_repeat_ngram=4).to_openai())  # in-process only


def test_requests_that_differ_only_in_their_format_decode_together():
    a, b = Sampling(max_tokens=8, response_format=SCHEMA), Sampling(max_tokens=8)
    assert a != b and a.decoding() == b.decoding() == b
    assert Sampling(max_tokens=8, stop=("x",)).decoding() != b
