"""Key-like text: find it and take it out of anything written to disk.

Servers echo what they were sent ("Incorrect API key provided: sk-..."), proxies
add their own tokens to error pages, and documents carry pasted credentials.
`redact` replaces every credential shape below, and any secret the caller
knows exactly (the API key read from the environment), with a typed
placeholder; the name of an assignment (`password=`, `api_key:`) is kept so
the message still says what was there.
"""

import re

# (kind, pattern). A pattern with a group named `value` replaces only that group.
CREDENTIALS = (
    ("private_key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
                               re.S)),
    ("bearer", re.compile(r"\b[Bb]earer\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("api_key", re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}")),  # OpenAI, Anthropic (sk-ant-), Stripe-like
    ("api_key", re.compile(r"\b(?:hf|gh[pousr]|glpat|xox[abprs])[_-][A-Za-z0-9_-]{16,}")),  # HF, GitHub, GitLab, Slack
    ("api_key", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}")),
    ("api_key", re.compile(r"\bAIza[A-Za-z0-9_-]{30,}")),  # Google
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("password", re.compile(
        r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|secret[_-]?key|token)"
        r"[\"']?\s*[:=]\s*[\"']?(?P<value>[^\s\"',;]{4,})")),
    # A long run of letters and digits (both, and not only hex: digests and commit ids are not
    # secrets) with no spaces: a token whose shape we do not know.
    ("token", re.compile(r"\b(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[G-Zg-z])[A-Za-z0-9_-]{32,}\b")),
)


def find_credentials(text):
    """[(kind, start, end)] of the credential-shaped spans in `text`, in order, not overlapping."""
    spans = []
    for kind, pattern in CREDENTIALS:
        for m in pattern.finditer(text):
            start, end = m.span("value") if "value" in pattern.groupindex else m.span()
            if not any(s < end and start < e for _, s, e in spans):
                spans.append((kind, start, end))
    return sorted(spans, key=lambda span: span[1])


def redact(text, known=()):
    """`text` with every known secret and every credential shape replaced by
    [REDACTED] or [REDACTED_<KIND>]."""
    if not text:
        return text
    for secret in known:
        if secret and len(secret) >= 4 and secret != "EMPTY":
            text = text.replace(secret, "[REDACTED]")
    out, last = [], 0
    for kind, start, end in find_credentials(text):
        out += [text[last:start], f"[REDACTED_{kind.upper()}]"]
        last = end
    return "".join(out) + text[last:]
