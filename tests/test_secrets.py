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


@pytest.mark.parametrize("text, secret", [
    # the issue's own sentence: 21 characters, no AWS shape, introduced by "key"
    ("The deploy job reads the key AKIAQ7PLANTED9X2KZ4EX and the token ghp_0123456789abcdefABCDEF0123 from the vault.",
     "AKIAQ7PLANTED9X2KZ4EX"),
    ("the service token is Zq81-x7Rk2-Lp09-Aa44.", "Zq81-x7Rk2-Lp09-Aa44"),
    ("Our API key: 4f9c2e7a1b88d0a3c5e7 (rotate it monthly)", "4f9c2e7a1b88d0a3c5e7"),   # hex, but a key
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("Le mot de passe et la clé: the admin password is Kq7vR2mX9pLw4 ; ne le partagez pas.", "Kq7vR2mX9pLw4"),
    ("credentials: svc-8841-QX7TT-2209", "svc-8841-QX7TT-2209"),
])
def test_a_value_a_credential_word_introduces_is_a_secret_whatever_its_shape(text, secret):
    out = redact(text)
    assert secret not in out and "[REDACTED_SECRET]" in out


def test_a_random_looking_token_of_two_classes_is_a_secret_by_its_entropy():
    assert redact("session id 9XK2PQ7LM4ZT8RW3VN6B expired") == "session id [REDACTED_TOKEN] expired"


@pytest.mark.parametrize("text", [
    "Set the key `teacher.api_key_env` to OPENAI_API_KEY and the token budget to 512.",
    "The key models/adapter/prompt.json holds the layout; token counts use SmolLM2-135M-Instruct.",
    "Password reset tokens expire after 24 hours; the key 2026-12-05 release notes list it.",
    "Qwen25Coder7BInstruct and LlamaForCausalLM2024 are model names, not secrets.",
    "The cache key is a SHA-256 of the request, so a rerun asks only what it never asked.",
    "Each token of the reply has a log-probability; the key is max_tokens in params.yaml.",
    "Secrets such as the key in OPENAI_API_KEY never reach dvc.lock (see data/docs/data-hygiene.md).",
])
def test_credential_words_in_ordinary_documentation_are_left_alone(text):
    assert find_credentials(text) == [] and redact(text) == text


def test_no_false_positive_on_the_sample_corpus():
    """The user documentation (13 files, about 10,000 words) holds no credential: nothing is flagged."""
    from faqforge.documents.chunking import find_documents
    from faqforge.documents.readers import read_document
    from tests.support.project import ROOT
    files, _ = find_documents(ROOT / "data/docs")
    texts = ["\n".join(block["text"] for block in read_document(f)[1]) for f in files]
    assert len(texts) >= 10 and sum(len(t.split()) for t in texts) > 8_000
    assert [(f.name, find_credentials(t)) for f, t in zip(files, texts) if find_credentials(t)] == []
