"""The Q&A record contract shared by every stage from generate to split.

Two formats (`generate.format`):
  qa           {"question", "answer"}                       (default)
  instruction  {"instruction", "input", "output"}           (Alpaca-style triples)
Stages read either through `pair_prompt` / `pair_response`, and compare texts
in the one form `normalise` gives.
"""

import re
import unicodedata

_ACCENTS = re.compile("[\u0300-\u036f]")  # the combining diacritical marks: accents, umlauts, cedillas
_PUNCTUATION = re.compile(r"[^\w\s]")

FIELDS = {"qa": ("question", "answer"), "instruction": ("instruction", "input", "output")}
OPTIONAL = {"input"}  # may be empty: an instruction that needs no input
TEXT_FIELDS = tuple(dict.fromkeys(name for fields in FIELDS.values() for name in fields))  # every text field


def pair_prompt(pair):
    """What the user asks: the question, or the instruction followed by its input."""
    if "instruction" in pair:
        return pair["instruction"] + (f"\n\n{pair['input']}" if pair.get("input") else "")
    return pair["question"]


def pair_response(pair):
    """What the assistant answers."""
    return pair[response_field(pair)]


def dropped(record, stage, reason, why=None, **extra):
    """A record some stage removed: `reason` is the short kind the data report
    counts, `why` the details (the reason itself when there are none)."""
    return {**record, **extra, "dropped_by": stage, "reason": reason, "why": why or reason}


def prompt_field(pair):
    return "instruction" if "instruction" in pair else "question"


def response_field(pair):
    return "output" if "instruction" in pair else "answer"


def with_prompt(pair, prompt):
    """A copy of `pair` asking `prompt` instead (a paraphrase); the input stays."""
    return {**pair, prompt_field(pair): prompt}


def with_response(pair, response):
    """A copy of `pair` answering `response` instead (a rephrased answer)."""
    return {**pair, response_field(pair): response}


def inside_quotes(text):
    """Document text as it goes between a prompt's triple-quote delimiters: a
    triple quote inside the document becomes three apostrophes, so no document
    can close the delimiter and carry on as if it were the user's instructions."""
    return text.replace('"""', "'''")


def normalise(text):
    """The form every comparison of two texts uses (exact and fuzzy duplicates,
    eval leaks, copied examples): case folded (ß -> ss), accents removed
    (é -> e, ü -> u), punctuation dropped, whitespace collapsed. Other scripts
    are kept as they are."""
    text = _ACCENTS.sub("", unicodedata.normalize("NFKD", text))
    text = unicodedata.normalize("NFC", text).casefold()
    return " ".join(_PUNCTUATION.sub(" ", text).split())
