"""Texts the tests share: three chunks of real-shaped documentation (one French
sentence, a PDF's pages) with the index settings they are searched with, a
document holding one of every kind of personal data and secret, and a way to
cut a text with a stop string."""

from faqforge.core.sections import Index

INDEX = Index(method="bm25", passage_words=20, with_section=True, rrf_k=60,
              bm25={"k1": 1.5, "b": 0.75, "stopwords": "en", "stemmer": "english"},
              dense={"model": None, "base_url": None, "api_key_env": "OPENAI_API_KEY", "batch_size": 8})

CHUNKS = [
    {"chunk_id": "c1", "doc": "data/docs/installation.txt", "section": "Installing", "pages": None,
     "text": "faqforge needs Python 3.11. Run make setup to create the virtual environment. "
             "The setup installs the pinned packages from requirements.txt into .venv."},
    {"chunk_id": "c2", "doc": "data/docs/remote-storage.txt", "section": "Remotes", "pages": None,
     "text": "Add a remote with dvc remote add. Then dvc push uploads the cached outputs, and dvc pull "
             "downloads them on another machine."},
    {"chunk_id": "c3", "doc": "data/docs/guide.pdf", "section": "Fine-tuning", "pages": [4, 5],
     "text": "Le modèle élève apprend avec LoRA. The adapter rank is set by finetune.lora_r, 16 by default."},
]

# One of every kind, as a company document would have them.
PLANTED = {
    "email": "jane.doe@example.com",
    "phone": "+44 20 7946 0958",
    "ip_address": "10.20.30.40",
    "credit_card": "4111 1111 1111 1111",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "api_key": "sk-live-9fQ2xLmP4rT7wZ1k",
    "aws_key": "AKIAIOSFODNN7EXAMPLE",
    "password": "Tr0ub4dor&3",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
}
DOCUMENT = (f"Contact {PLANTED['email']} or call {PLANTED['phone']}. The build server is at "
            f"{PLANTED['ip_address']}. Refunds go to card {PLANTED['credit_card']} or IBAN {PLANTED['iban']}. "
            f"Use OPENAI_API_KEY={PLANTED['api_key']} and aws {PLANTED['aws_key']}; db password={PLANTED['password']}\n"
            f"{PLANTED['private_key']}\nThat is all.")


def a_stop_in(text):
    """(a stop string from the middle of `text` that does not occur before it, the text before it)."""
    for start in range(len(text) // 3, len(text) - 3):
        stop = text[start:start + 3]
        if stop.strip() == stop and text.index(stop) == start:
            return stop, text[:start].rstrip()
    raise AssertionError(f"no stop string to cut {text!r} with")
