import pytest

from faqforge.hygiene.secrets import find_credentials, redact

PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\nQm9vdHN0cmFw\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize("text, secret, kind", [
    ("Incorrect API key provided: sk-proj-Ab3dEf6hIj9kLm.", "sk-proj-Ab3dEf6hIj9kLm", "API_KEY"),
    ("anthropic key sk-ant-api03-xYz123abcDEF456", "sk-ant-api03-xYz123abcDEF456", "API_KEY"),
    ("token hf_AbCdEfGhIjKlMnOpQrStUv was revoked", "hf_AbCdEfGhIjKlMnOpQrStUv", "API_KEY"),
    ("push with ghp_0123456789abcdefABCDEF0123 failed", "ghp_0123456789abcdefABCDEF0123", "API_KEY"),
    ("aws AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE", "AWS_KEY"),
    ("header Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123", "BEARER"),
    ("id_token eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2QT4", "eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2QT4",
     "JWT"),
    ("db password=hunter2secret; retry", "hunter2secret", "PASSWORD"),
    ('config {"api_key": "q8W3e5R7t9Y2"}', "q8W3e5R7t9Y2", "PASSWORD"),
    (f"key file:\n{PRIVATE_KEY}\nend", "MIIEowIBAAKCAQEA7bq", "PRIVATE_KEY"),
    ("request x9Kq2mWv7Lp4Rt8Zc1Nb6Hd3Fg5Js0Ya rejected", "x9Kq2mWv7Lp4Rt8Zc1Nb6Hd3Fg5Js0Ya", "TOKEN"),
])
def test_every_credential_shape_is_redacted_and_named(text, secret, kind):
    out = redact(text)
    assert secret not in out and f"[REDACTED_{kind}]" in out
    assert out.split("[REDACTED")[0] == text.split(secret if kind != "PRIVATE_KEY" else "-----BEGIN")[0]


def test_a_known_secret_is_redacted_whatever_its_shape():
    assert redact("the key my-plain-key was refused", ["my-plain-key"]) == "the key [REDACTED] was refused"
    assert redact("nothing to hide", ["", None, "EMPTY"]) == "nothing to hide"


@pytest.mark.parametrize("text", [
    "Error code: 503 - {'error': {'message': 'failure 503', 'type': 'server_error'}}",
    "model meta-llama/Llama-3.1-8B-Instruct not found at http://127.0.0.1:8000/v1/chat/completions",
    "chunk 3f2a9c1e7b5d4a6f8e0c2b4d6f8a0c2e4b6d8f0a failed",  # a sha1: digests are not secrets
    "version 2.13.0 released 2026-11-23, ISBN 978-3-16-148410-0, call 1 800 555 0199 ext 12",
    "the password is stored in the keychain; set the token before you run dvc push",
])
def test_ordinary_error_text_is_left_alone(text):
    assert find_credentials(text) == [] and redact(text) == text
