import pytest

from faqforge.core.config import parse_section
from faqforge.core.io import PipelineError
from faqforge.core.sections import Pii
from faqforge.hygiene.pii import PiiPolicy, find_pii, iban_valid, luhn_valid, redact_pii
from tests.support.corpus import DOCUMENT, PLANTED


def test_every_planted_kind_is_found_with_its_exact_span():
    found = {f.kind: DOCUMENT[f.start:f.end] for f in find_pii(DOCUMENT)}
    expected = {**PLANTED, "api_key": PLANTED["api_key"]}
    assert found == expected


def test_redaction_leaves_placeholders_and_none_of_the_values():
    out = redact_pii(DOCUMENT, find_pii(DOCUMENT))
    assert not [v for v in PLANTED.values() if v in out]
    for placeholder in ("[EMAIL]", "[PHONE]", "[IP_ADDRESS]", "[CREDIT_CARD]", "[IBAN]", "[API_KEY]", "[AWS_KEY]",
                        "[PRIVATE_KEY]"):
        assert placeholder in out
    assert "password=[PASSWORD]" in out and out.endswith("That is all.")


@pytest.mark.parametrize("phone", ["(555) 123-4567", "555-123-4567", "+33 1 23 45 67 89", "1 800 555 0199",
                                   "555.123.4567", "+1-202-555-0143"])
def test_phone_formats(phone):
    assert [f.kind for f in find_pii(f"Call {phone} today.")] == ["phone"]


@pytest.mark.parametrize("text", [
    "Install torch 2.13.0 and transformers 5.23.0; tested on version 1.2.3.4 and build 10.0.19041.1.",
    "Released on 2026-11-23, updated 23/11/2026 and 11.23.2026.",
    "See ISBN 978-3-16-148410-0 and ISBN-10: 0-306-40615-2, or 978-0-306-40615-7.",
    "We processed 1 234 567 890 tokens in 12,345 steps; 100000 pairs, 3.14159 and 42.",
    "Serve on 127.0.0.1:8000 or bind 0.0.0.0; ::1 is loopback; std::vector and a::b are C++.",
    "At 12:30:45 the job with id 3f2a9c1e7b5d4a6f8e0c2b4d6f8a0c2e4b6d8f0a finished.",
    "Set max_tokens: 512 and tokens_per_question: 60. The token: the unit of text. Bearer authentication is used.",
    "The class LlamaForCausalLM2024Edition loads fine_tuning_guide_version_2_final_2026.pdf.",
    "Assignments such as `password=...`, password=$DB_PASSWORD, api_key=${OPENAI_API_KEY}, token=<your token>.",
    "Order 4111 1111 1111 1112 is not a valid card; FR12 3456 is not an IBAN.",
])
def test_ordinary_text_is_not_flagged(text):
    assert find_pii(text) == []


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB83 WEST 1234 5698 7654 32")


def test_policy_redacts_drops_or_keeps_per_kind_and_records_locations_not_values():
    policy = PiiPolicy(Pii(action="redact", overrides={"ip_address": "keep", "credential": "drop"}))
    fields, actions, drop = policy.apply({"answer": "Mail jane@example.com from 10.0.0.5."})
    assert fields["answer"] == "Mail [EMAIL] from 10.0.0.5." and not drop
    assert actions == [{"field": "answer", "kind": "email", "action": "redact", "start": 5, "end": 21}]
    fields, actions, drop = policy.apply({"question": "Key?", "answer": "Use sk-live-9fQ2xLmP4rT7wZ1k now."})
    assert drop and fields["answer"] == "Use [API_KEY] now." and actions[0]["kind"] == "api_key"
    assert "sk-live" not in str(actions)
    _, actions, drop = policy.apply({"answer": "Use [API_KEY] now."})  # redacted upstream: still a drop
    assert drop and actions[0]["action"] == "drop"
    assert PiiPolicy(Pii(action="keep")).apply({"a": DOCUMENT}) == ({"a": DOCUMENT}, [], False)


def test_policy_scrub_is_what_may_be_cached():
    assert PiiPolicy(Pii(action="drop")).scrub(DOCUMENT).count("[") >= 8
    assert PiiPolicy(Pii(action="keep")).scrub(DOCUMENT) == DOCUMENT


@pytest.mark.parametrize("params, message", [
    ({"kinds": ["email", "ssn"]}, r"hygiene\.pii\.kinds\.1: input should be 'email', .* \(got 'ssn'\)"),
    ({"action": "hide"}, r"hygiene\.pii\.action: input should be 'redact', 'drop' or 'keep' \(got 'hide'\)"),
    ({"overrides": {"email": "mask"}}, r"hygiene\.pii\.overrides\.email: input should be 'redact', 'drop' or 'keep'"),
    ({"overrides": {"ssn": "drop"}}, r"hygiene\.pii\.overrides\.ssn\.\[key\]: input should be 'email'"),
])
def test_bad_policy_is_named_when_params_yaml_is_read(params, message):
    with pytest.raises(PipelineError, match="params.yaml: " + message):
        parse_section("params.yaml", "hygiene", {"pii": params})


def test_placeholders_are_not_found_again():
    text = redact_pii(DOCUMENT, find_pii(DOCUMENT))
    assert find_pii(text) == []
    _, actions, _ = PiiPolicy(Pii(action="redact")).apply({"answer": "Use password=[PASSWORD] and [EMAIL]."})
    assert [(a["kind"], a["action"]) for a in actions] == [("password", "redacted upstream"),
                                                          ("email", "redacted upstream")]


def test_a_rephrasing_that_brings_in_personal_data_is_caught():
    policy = PiiPolicy(Pii(action="drop", overrides={"ip_address": "keep"}))
    pair = {"question": "How do I reach support?", "answer": "Write to [EMAIL]."}
    assert policy.added_by(pair, {**pair, "question": "Can I call [PHONE] instead?"}) == ["phone"]
    assert policy.added_by(pair, {**pair, "question": "Can I mail [EMAIL] or call [PHONE]?"}) == ["email", "phone"]
    assert policy.added_by(pair, {**pair, "question": "How can I contact support?"}) == []
    assert PiiPolicy(Pii(action="redact")).added_by(pair, {**pair, "question": "Call [PHONE]?"}) == []
