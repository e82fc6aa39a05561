"""The Q&A record contract shared by every stage from generate to split.

Two formats (`generate.format`):
  qa           {"question", "answer"}                       (default)
  instruction  {"instruction", "input", "output"}           (Alpaca-style triples)
Stages read either through `pair_prompt` / `pair_response`, and compare texts
in the one form `normalise` gives.
"""

import hashlib
import re
import unicodedata

from faqforge.core.reasons import meaning

_ACCENTS = re.compile("[\u0300-\u036f]")  # the combining diacritical marks: accents, umlauts, cedillas
_PUNCTUATION = re.compile(r"[^\w\s]")
WORD = re.compile(r"\w+", re.U)
STOPWORDS = frozenset("""a an and are as at be by can do does for from has have how i if in into is it its
of on or so that the their then there these this to was we what when where which who why will with you
your""".split())

FIELDS = {"qa": ("question", "answer"), "instruction": ("instruction", "input", "output")}
QUOTE = "quote"  # generate.answer_style quoted: the chunk's supporting sentence, verbatim, beside the answer
OPTIONAL = {"input"}  # may be empty: an instruction that needs no input
# every text field
TEXT_FIELDS = tuple(dict.fromkeys([name for fields in FIELDS.values() for name in fields] + [QUOTE]))


def record_fields(params):
    """The fields the teacher writes per record (the generate section): the
    format's, and with answer_style quoted a verbatim `quote` of the chunk too."""
    fields = FIELDS[params.format]
    return fields + (QUOTE,) if params.answer_style == "quoted" else fields


def _folded(text):
    return " ".join(unicodedata.normalize("NFC", text).split())


def quote_in_text(quote, text):
    """Whether `quote` occurs verbatim in `text`: exact, except that runs of
    whitespace (a PDF's line breaks) count as one space and the quote marks
    around the quote are not part of it."""
    quote = _folded(quote).strip("\"'“”‘’ ")
    return bool(quote) and quote in _folded(text)


def pair_prompt(pair):
    """What the user asks: the question, or the instruction followed by its input."""
    if "instruction" in pair:
        return pair["instruction"] + (f"\n\n{pair['input']}" if pair.get("input") else "")
    return pair["question"]


def pair_response(pair):
    """What the assistant answers."""
    return pair[response_field(pair)]


def dropped(record, stage, reason, why=None, **extra):
    """A record some stage removed: `reason` is a code of faqforge.core.reasons (what
    metrics and the data report count), `why` the details of this case (the code
    itself when there are none), `extra` fields more (the duplicate, the eval item)."""
    meaning(reason)   # a code no table knows is a bug, found at the first drop
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


def content_words(text):
    """The words of a text that carry content: lower-cased, three letters or more, no stop words."""
    return {w for w in WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS}


def grounding_score(answer, source):
    """Fraction of the answer's content words that appear in the source text."""
    words = content_words(answer)
    if not words:
        return 0.0
    return len(words & content_words(source)) / len(words)


def stable_unit(*parts):
    """A number in [0, 1) drawn by hashing `parts` (joined with ':'): the same parts draw the same
    number in any process and on any machine (unlike hash()). Splits, samples and orders use it."""
    text = ":".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64
