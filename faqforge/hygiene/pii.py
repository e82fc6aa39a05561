"""Personal data and secrets in documents and generated pairs.

Kinds (`hygiene.pii.kinds` in params.yaml):
  email        user@example.com
  phone        +44 20 7946 0958, (555) 123-4567, 555-123-4567 (9 to 15 digits; dates, ISBNs,
               versions and thousands groupings are not phones)
  ip_address   IPv4 and IPv6 addresses (not loopback or 0.0.0.0, not after "version")
  credit_card  13 to 19 digits with a card network's prefix and a valid Luhn check digit
  iban         country code, check digits and account, valid under ISO 13616 mod 97
  credential   API keys and tokens, bearer tokens, JWTs, AWS keys, private-key blocks,
               `password=` style assignments, any value with letters and digits that a
               credential word introduces ("the key X", "token: X"), and random-looking
               tokens of 20+ characters (faqforge.hygiene.secrets)

Each finding is replaced by a typed placeholder ([EMAIL], [PHONE], [API_KEY],
...), or the chunk or pair is dropped, or kept, per kind. Locations are
recorded; the text found never is.
"""

import re
from dataclasses import dataclass

from faqforge.core.records import TEXT_FIELDS
from faqforge.hygiene.secrets import find_credentials, replace_spans

KINDS = ("email", "phone", "ip_address", "credit_card", "iban", "credential")

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d|\w)")
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = re.compile(rf"(?<![\w:.])(?:(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,6}}(?::{_H}){{1,6}}"
                   rf"|(?:{_H}:){{1,7}}:|::(?:{_H}:){{0,5}}{_H})(?![\w:])")
_VERSION_BEFORE = re.compile(r"(?i)(?:\bversion|\bv|\brelease|\bbuild)\s*$")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3[068]|35|6011|65|64[4-9]|62)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_PHONE = re.compile(r"(?<![\w.+/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{1,4}){1,6}"
                    r"(?![\w/]|[.-]\d)")
_DATE = re.compile(r"^(?:\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})$")
_ISBN_BEFORE = re.compile(r"(?i)isbn(?:-1[03])?:?\s*$")


PLACEHOLDER = re.compile(r"\[(EMAIL|PHONE|IP_ADDRESS|CREDIT_CARD|IBAN|API_KEY|AWS_KEY|BEARER|JWT|PASSWORD|"
                         r"PRIVATE_KEY|TOKEN)\]")
_FAMILY = {"API_KEY": "credential", "AWS_KEY": "credential", "BEARER": "credential", "JWT": "credential",
           "PASSWORD": "credential", "PRIVATE_KEY": "credential", "SECRET": "credential",
           "TOKEN": "credential"}


@dataclass(frozen=True)
class Finding:
    kind: str       # email, phone, ..., or the credential's own kind (api_key, password, ...)
    family: str     # the params kind it belongs to (credential for every credential kind)
    start: int
    end: int

    @property
    def placeholder(self):
        return f"[{self.kind.upper()}]"


def luhn_valid(digits):
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def iban_valid(text):
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _phone(text, m):
    candidate = m.group()
    digits = re.sub(r"\D", "", candidate)
    international = candidate.startswith("+") or "(" in candidate
    groups = re.split(r"[ .-]+", re.sub(r"^\+\d{1,3}[ .-]?|\(\d{1,4}\)[ .-]?", "", candidate))
    if not 9 <= len(digits) <= 15 and not (international and 7 <= len(digits) <= 15):
        return False
    if _DATE.match(candidate) or _ISBN_BEFORE.search(text[max(0, m.start() - 12):m.start()]):
        return False
    if digits.startswith(("978", "979")) and len(digits) in (10, 13) and "-" in candidate:
        return False  # an ISBN written without its label
    if not international and len(groups) > 1 and all(len(g) == 3 for g in groups[1:]):
        return False  # 1 234 567 890: a number grouped in thousands
    if not international and "." in candidate and " " not in candidate and "-" not in candidate:
        return len(groups) == 3 and [len(g) for g in groups] == [3, 3, 4]  # 555.123.4567, not 1.2.3.4
    return True


def find_pii(text, kinds=KINDS):
    """[Finding] in `text`, in order, not overlapping. Earlier kinds win an
    overlap: credentials, e-mail, IBAN, card, IP address, phone."""
    found = []
    taken = [m.span() for m in PLACEHOLDER.finditer(text)]  # redacted already: `password=[PASSWORD]`

    def add(kind, family, start, end):
        if not any(s < end and start < e for s, e in taken):
            found.append(Finding(kind, family, start, end))
            taken.append((start, end))

    if "credential" in kinds:
        for kind, start, end in find_credentials(text):
            add(kind, "credential", start, end)
    if "email" in kinds:
        for m in _EMAIL.finditer(text):
            add("email", "email", *m.span())
    if "iban" in kinds:
        for m in _IBAN.finditer(text):
            if iban_valid(m.group()):
                add("iban", "iban", *m.span())
    if "credit_card" in kinds:
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if _CARD_PREFIX.match(digits) and luhn_valid(digits) and len(set(re.findall(r"[ -]", m.group()))) <= 1:
                add("credit_card", "credit_card", *m.span())
    if "ip_address" in kinds:
        for pattern in (_IPV4, _IPV6):
            for m in pattern.finditer(text):
                address = m.group()
                if address.startswith(("127.", "0.0.0.0")) or address in ("::", "::1"):
                    continue  # loopback and "any address": in every server manual, nobody's data
                if pattern is _IPV6 and (address.count(":") < 2 or not re.search(r"\d", address)):
                    continue  # std::vector, a::b
                if _VERSION_BEFORE.search(text[max(0, m.start() - 10):m.start()]):
                    continue
                add("ip_address", "ip_address", *m.span())
    if "phone" in kinds:
        for m in _PHONE.finditer(text):
            if _phone(text, m):
                add("phone", "phone", *m.span())
    return sorted(found, key=lambda f: f.start)


def redact_pii(text, findings):
    """`text` with each finding replaced by its placeholder."""
    return replace_spans(text, [(f.start, f.end, f.placeholder) for f in findings])


def placeholders(text):
    """Findings for the placeholders already in `text` (redacted upstream)."""
    return [Finding(m.group(1).lower(), _FAMILY.get(m.group(1), m.group(1).lower()), *m.span())
            for m in PLACEHOLDER.finditer(text)]


class PiiPolicy:
    """hygiene.pii (the section's Pii part): which kinds to look for and what to do with each."""

    def __init__(self, pii):
        self.kinds = tuple(pii.kinds)
        self.actions = {kind: pii.action for kind in self.kinds}
        self.actions.update(pii.overrides)

    @property
    def active(self):
        return any(a != "keep" for a in self.actions.values())

    @property
    def scrubber(self):
        """What Teacher(scrub=...) takes: `scrub`, or None when every kind is kept."""
        return self.scrub if self.active else None

    def scrub(self, text):
        """`text` with every finding whose kind is not kept replaced: what may be
        written to disk (teacher replies before they are cached)."""
        return redact_pii(text, [f for f in find_pii(text, self.kinds) if self.actions[f.family] != "keep"])

    def added_by(self, record, variant):
        """Kinds set to drop whose placeholders `variant` has more of than
        `record` (a rephrasing that brought in personal data), sorted."""
        def kinds(r):
            found = {}
            for name in TEXT_FIELDS:
                for p in placeholders(r.get(name) or ""):
                    if self.actions.get(p.family) == "drop":
                        found[p.kind] = found.get(p.kind, 0) + 1
            return found
        before, after = kinds(record), kinds(variant)
        return sorted(k for k, n in after.items() if n > before.get(k, 0))

    def apply(self, fields, upstream=True):
        """For a record's text fields ({name: text}): (new fields, actions taken,
        drop) where actions are [{field, kind, action, start, end}] (offsets in
        the original text) and `drop` says a kind set to drop was found. Text is
        redacted for every kind not kept, dropped or not, so nothing written
        holds it. With `upstream`, a placeholder already in the text (the
        teacher's reply was redacted, or it copied a redacted chunk) is listed
        as "redacted upstream", and drops the record when its kind is set to drop."""
        out, actions, drop = {}, [], False
        for name, text in fields.items():
            findings = [f for f in find_pii(text, self.kinds) if self.actions[f.family] != "keep"]
            earlier = [p for p in placeholders(text) if upstream and self.actions.get(p.family, "keep") != "keep"]
            for f in findings + earlier:
                action = self.actions[f.family]
                drop = drop or action == "drop"
                if f in earlier and action == "redact":
                    action = "redacted upstream"
                actions.append({"field": name, "kind": f.kind, "action": action, "start": f.start, "end": f.end})
            out[name] = redact_pii(text, findings)
        return out, sorted(actions, key=lambda a: (a["field"], a["start"])), drop
