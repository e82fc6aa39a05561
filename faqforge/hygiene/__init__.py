"""What keeps personal data, secrets and unwanted languages away from the
teacher and out of the training data: shape-based secret redaction (secrets),
personal-data detection and policy (pii), language identification (language),
the check ingest and curate run on every chunk and pair (check), and where an
API key may go (keys).

May import: faqforge.core.
"""
