"""What every reader shares: the block (a paragraph with its section path and
page), text clean-up, the error a file that gives no text raises, and text
files decoded in their own encoding and streamed."""

import codecs
import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
SNIFF_BYTES = 65536


class UnreadableDocument(Exception):
    """A file that gives no text; `status` is "skipped" or "failed"."""

    def __init__(self, status, why):
        super().__init__(why)
        self.status, self.why = status, why


def clean_text(text):
    """NFC-normalise, drop control characters, join hyphenated line breaks,
    collapse whitespace inside paragraphs. Keeps every script and accent.
    Paragraphs (separated by blank lines) stay separated by one blank line."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text.replace("\t", " ").replace("\f", "\n\n"))
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)



def blocks_of(text, section=None, page=None):
    body = clean_text(text)
    return [{"section": section, "page": page, "text": p} for p in body.split("\n\n")] if body else []


def code_block(text, section=None):
    """A code block as one block, its lines kept (blank ones dropped: a blank line separates blocks)."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", text.replace("\t", "    ")))
    code = "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
    return [{"section": section, "page": None, "text": code}] if code else []


def section_of(path):
    return " > ".join(path) or None


def detect_encoding(head):
    """The encoding of a text file from its first bytes, or raise
    UnreadableDocument for binary content. UTF-8 (with or without BOM), UTF-16
    (BOM, or the zero-byte pattern of ASCII text), else Windows-1252/Latin-1."""
    if not head:
        raise UnreadableDocument("skipped", "empty file")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "utf-16-be"
        raise UnreadableDocument("failed", "binary content (NUL bytes) in a text file")
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as e:
        if e.start >= len(head) - 3:  # a character cut by the sniff window
            return "utf-8"
    controls = sum(b < 32 and b not in (9, 10, 12, 13) for b in head)
    if controls > 0.01 * len(head):
        raise UnreadableDocument("failed", "binary content in a text file")
    return "cp1252"


def iter_text_lines(path):
    """The lines of a text file, streamed (memory bounded), in its own encoding."""
    with open(path, "rb") as f:
        encoding = detect_encoding(f.read(SNIFF_BYTES))
    # cp1252 leaves five bytes undefined; replacing them keeps a Latin-1 file readable.
    errors = "replace" if encoding == "cp1252" else "strict"
    try:
        with open(path, encoding=encoding, errors=errors, newline="") as f:
            yield from f
    except UnicodeDecodeError as e:
        raise UnreadableDocument("failed", f"not valid {encoding} at byte {e.start}") from None


def iter_paragraphs(lines):
    """Group lines into paragraphs at blank lines, one paragraph at a time."""
    current = []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            yield "".join(current)
            current = []
    if current:
        yield "".join(current)


