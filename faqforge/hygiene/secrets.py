"""Key-like text: find it and take it out of anything written to disk.

Servers echo what they were sent ("Incorrect API key provided: sk-..."), proxies
add their own tokens to error pages, and documents carry pasted credentials.
`redact` replaces every credential shape below, any value a credential word
introduces whatever its shape ("the deploy job reads the key X"), any
random-looking token, and any secret the caller knows exactly (the API key read
from the environment), with a typed placeholder; the name of an assignment (`password=`, `api_key:`) is kept so
the message still says what was there.
"""

import math
import re
from collections import Counter


def _secretish(value):
    """A value that looks generated, not a word: it has a digit, a symbol or mixed case."""
    return (any(c.isdigit() for c in value) or not value.isalnum()
            or (any(c.isupper() for c in value) and any(c.islower() for c in value[1:])))


def _assigned_value(value):
    """A literal value, not `...`, a variable (`$DB_PASSWORD`, `${X}`, `<your key>`) or null."""
    return (any(c.isalnum() for c in value) and value[0] not in "$<{%*"
            and value.strip("`'\".").lower() not in ("none", "null", "true", "false"))


def _random_looking(value):
    """Letters and digits switching class often, with high entropy: a random token,
    not `LlamaForCausalLM2024`, `Qwen25Coder7BInstruct`, a date or a file name.
    Three classes (upper, lower, digits) must switch at 35% of the characters; two
    (letters of one case and digits, as in AWS-style keys) at 30%, with at least
    three of each; lower-case hex (digests, commit ids) is never a token."""
    classes = ["u" if c.isupper() else "l" if c.islower() else "d" for c in value]
    switches = sum(a != b for a, b in zip(classes, classes[1:]))
    counts = Counter(classes)
    if re.fullmatch(r"[0-9a-f]+", value) or _entropy(value) < 3.5:
        return False
    if len(counts) == 3:
        return len(value) >= 24 and switches >= 0.35 * len(value)
    return len(counts) == 2 and counts["d"] >= 3 and len(value) - counts["d"] >= 3 and switches >= 0.3 * len(value)


def _entropy(value):
    """Shannon entropy of the characters, in bits per character."""
    n = len(value)
    return -sum(k / n * math.log2(k / n) for k in Counter(value).values())


def _introduced_value(value):
    """What follows a credential word ("the key X", "token: X") and is a secret: letters
    and digits together, 12 characters or more, not a file name, path, dotted name
    or version (no `.`, no lower-case path such as `models/adapter`), nor a variable name
    (`OPENAI_API_KEY` has no digit)."""
    return (len(value) >= 12 and any(c.isdigit() for c in value) and sum(c.isalpha() for c in value) >= 2
            and "." not in value and not re.fullmatch(r"[a-z0-9_-]+(?:/[a-z0-9_-]+)+", value)
            and not re.fullmatch(r"[\d-]+[A-Za-z]?", value))


# (kind, pattern, check, hints). A pattern with a group named `value` replaces only that group;
# `check`, when given, must accept the match's text (or its value); `hints`, when given, are
# substrings (of the lower-cased text) without which the pattern cannot match: text holding none
# of them is not scanned (most documents hold no key, and scanning is what ingest pays for).
_ASSIGNED = ("pass", "pwd", "secret", "key", "token")
CREDENTIALS = (
    ("private_key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
                               re.S), None, ("private key-----",)),
    ("bearer", re.compile(r"\b[Bb]earer\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})"), _secretish, ("bearer",)),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), None, ("eyj",)),
    ("api_key", re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}"), _secretish, ("k-",)),  # OpenAI, Anthropic, Stripe-like
    ("api_key", re.compile(r"\b(?:hf|gh[pousr]|glpat|xox[abprs])[_-][A-Za-z0-9_-]{16,}"), None,
     ("hf", "gh", "glpat", "xox")),  # Hugging Face, GitHub, GitLab, Slack
    ("api_key", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), None, ("github_pat_",)),
    ("api_key", re.compile(r"\bAIza[A-Za-z0-9_-]{30,}"), None, ("aiza",)),  # Google
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), None, ("akia", "asia")),
    # `password = x` always; `password: x` (prose and YAML say "token: the unit of text") only
    # when x looks generated.
    ("password", re.compile(
        r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|secret[_-]?key|token)"
        r"[\"']?\s*=\s*[\"']?(?P<value>[^\s\"',;]{4,})"), _assigned_value, _ASSIGNED),
    ("password", re.compile(
        r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|secret[_-]?key|token)"
        r"[\"']?\s*:\s*[\"']?(?P<value>[^\s\"',;]{4,})"), lambda v: _assigned_value(v) and _secretish(v),
     _ASSIGNED),
    # A credential word, then up to three linking words, then a value with letters and digits:
    # a secret whatever its shape ("the deploy job reads the key AKIAQ7PLANTED9X2KZ4EX").
    ("secret", re.compile(
        r"(?i)(?<![A-Za-z0-9])(?:key|keys|token|tokens|secret|secrets|password|passwords|passphrase|passcode"
        r"|credentials?)\b"
        r"(?:\s+(?:is|was|are|be|of|for|to|reads|read|named|called|set|value|string|the|a|an|our|your|its|this|that"
        r"|new|old|api|access|deploy|service|account|auth|login|admin|root|master|private|secret|\w+'s)\b){0,3}"
        r"\s*[:=]?\s*[\"'`]?(?P<value>[A-Za-z0-9][A-Za-z0-9_+/=-]{10,}[A-Za-z0-9=])"),
     _introduced_value, ("key", "token", "secret", "pass", "credential")),
    # A long run of letters and digits with no separator that looks random: a token whose
    # shape we do not know (digests and commit ids are lower-case hex: not matched).
    ("token", re.compile(r"\b[A-Za-z0-9]{20,}\b"), _random_looking, None),
)


def find_credentials(text):
    """[(kind, start, end)] of the credential-shaped spans in `text`, in order, not overlapping."""
    spans = []
    lowered = text.lower()
    for kind, pattern, check, hints in CREDENTIALS:
        if hints and not any(hint in lowered for hint in hints):
            continue
        for m in pattern.finditer(text):
            group = "value" if "value" in pattern.groupindex else 0
            if check and not check(m.group(group)):
                continue
            start, end = m.span(group)
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
    return replace_spans(text, [(start, end, f"[REDACTED_{kind.upper()}]")
                                for kind, start, end in find_credentials(text)])


def replace_spans(text, spans):
    """`text` with each (start, end, replacement) span, not overlapping, replaced."""
    out, last = [], 0
    for start, end, replacement in sorted(spans):
        out += [text[last:start], replacement]
        last = end
    return "".join(out) + text[last:]
