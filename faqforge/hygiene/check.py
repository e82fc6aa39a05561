"""One gate for chunks (ingest) and pairs (curate): personal data and secrets
(faqforge.hygiene.pii), then language (faqforge.hygiene.language), with the counts and the
list of every action for the stage's metrics and report."""

from collections import Counter

from faqforge.hygiene.language import LanguageFilter
from faqforge.hygiene.pii import PiiPolicy


class Hygiene:
    def __init__(self, hygiene, language, upstream=True):
        """`hygiene`: the hygiene section; `language`: generate.language, the
        language kept when hygiene.languages names none.
        `upstream`: placeholders already in the text count (generated pairs);
        not in documents, where `[EMAIL]` is just text (ingest)."""
        self.upstream = upstream
        self.pii = PiiPolicy(hygiene.pii)
        self.language = LanguageFilter(hygiene, language)
        self.found, self.actions, self.dropped = Counter(), Counter(), Counter()
        self.dropped_languages = Counter()

    def check(self, fields, where):
        """(fields, pii rows, drop) for one record's text fields: the fields
        redacted as the policy says; a row per action, located by `where` plus
        field and offsets (never the text found); `drop` None, or when the record
        must go the fields of its drop record: reason ("personal data" or
        "language"), why, and for a language the detected code as `language`."""
        fields, actions, drop = self.pii.apply(fields, self.upstream)
        rows = [{**where, **action} for action in actions]
        for action in actions:
            self.found[action["kind"]] += 1
            self.actions[action["action"]] += 1
        if drop:
            kinds = sorted({a["kind"] for a in actions if a["action"] == "drop"})
            self.dropped["personal data"] += 1
            why = f"contains {', '.join(kinds)} (hygiene.pii: drop)"
            return fields, rows, {"reason": "personal data", "why": why}
        rejected = self.language.rejects("\n".join(fields.values()))
        if rejected:
            code, why = rejected
            self.dropped["language"] += 1
            self.dropped_languages[code] += 1
            return fields, rows, {"reason": "language", "why": why, "language": code}
        return fields, rows, None

    def metrics(self):
        return {"pii": {"found_by_kind": dict(sorted(self.found.items())), "by_action": dict(self.actions),
                        "records_dropped": self.dropped["personal data"]},
                "language": {"keep": self.language.languages_kept(),
                             "detected": dict(sorted(self.language.seen.items())),
                             "records_dropped": self.dropped["language"],
                             "dropped_by_language": dict(self.dropped_languages)}}
