"""Documents to token-budgeted chunks with provenance.

Each document is read into blocks (paragraphs with their section heading path
and PDF page), cleaned, then packed into chunks of at most `max_tokens` tokens.
Splits fall on paragraph, then sentence, boundaries; a chunk never spans two
documents or two sections.
"""

import hashlib
import re
import unicodedata
from pathlib import Path

FORMATS = {".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".txt": "text"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def clean_text(text):
    """NFC-normalise, drop control characters, join hyphenated line breaks,
    collapse whitespace inside paragraphs. Keeps every script and accent."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def read_markdown(text):
    """Blocks of a Markdown document, each with its heading path."""
    blocks, path, lines = [], [], []
    in_code = False

    def flush():
        body = clean_text("\n".join(lines))
        for paragraph in body.split("\n\n") if body else []:
            blocks.append({"section": " > ".join(path) or None, "page": None, "text": paragraph})
        lines.clear()

    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            path[:] = path[:level - 1] + [match.group(2)]
        else:
            lines.append(line)
    flush()
    return blocks


def read_pdf(path):
    """Blocks of a PDF, page by page, with 1-based page numbers."""
    from pypdf import PdfReader
    blocks = []
    for number, page in enumerate(PdfReader(path).pages, 1):
        body = clean_text(page.extract_text() or "")
        for paragraph in body.split("\n\n") if body else []:
            blocks.append({"section": None, "page": number, "text": paragraph})
    return blocks


def read_document(path):
    """Return (format, blocks) for one file; raises ValueError if it has no text."""
    fmt = FORMATS[Path(path).suffix.lower()]
    if fmt == "pdf":
        blocks = read_pdf(path)
    else:
        text = Path(path).read_text(encoding="utf-8")
        blocks = read_markdown(text) if fmt == "markdown" else [
            {"section": None, "page": None, "text": p} for p in clean_text(text).split("\n\n") if p]
    if not blocks:
        raise ValueError("no extractable text")
    return fmt, blocks


def split_to_budget(text, count_tokens, max_tokens):
    """Split one paragraph into pieces within the budget: sentences first,
    then, for a sentence longer than the budget, words."""
    if count_tokens(text) <= max_tokens:
        return [text]
    pieces, current = [], ""
    for sentence in _SENTENCE_END.split(text):
        units = [sentence] if count_tokens(sentence) <= max_tokens else sentence.split(" ")
        for unit in units:
            candidate = f"{current} {unit}".strip()
            if current and count_tokens(candidate) > max_tokens:
                pieces.append(current)
                current = unit
            else:
                current = candidate
    if current:
        pieces.append(current)
    return pieces


def chunk_blocks(blocks, count_tokens, max_tokens, min_tokens=0):
    """Pack blocks into chunks: consecutive paragraphs of one section while the
    budget allows. A trailing piece under `min_tokens` merges into the chunk
    before it, which may then exceed `max_tokens` by at most `min_tokens`: a
    few extra tokens cost less than a chunk too small to ask about.
    Returns dicts with text, section, pages."""
    chunks, current = [], None
    for block in blocks:
        for piece in split_to_budget(block["text"], count_tokens, max_tokens):
            if current is not None and current["section"] == block["section"]:
                joined = current["text"] + "\n\n" + piece
                if count_tokens(joined) <= max_tokens:
                    current["text"] = joined
                    current["pages"].add(block["page"])
                    continue
            if current is not None:
                chunks.append(current)
            current = {"text": piece, "section": block["section"], "pages": {block["page"]}}
    if current is not None:
        chunks.append(current)
    merged = []
    for chunk in chunks:
        prev = merged[-1] if merged else None
        if (prev is not None and count_tokens(chunk["text"]) < min_tokens
                and prev["section"] == chunk["section"]
                and count_tokens(prev["text"] + "\n\n" + chunk["text"]) <= max_tokens + min_tokens):
            prev["text"] += "\n\n" + chunk["text"]
            prev["pages"] |= chunk["pages"]
        else:
            merged.append(chunk)
    for chunk in merged:
        pages = sorted(p for p in chunk["pages"] if p is not None)
        chunk["pages"] = pages or None
    return merged


def chunk_id(text, settings):
    """Stable id: the same text chunked with the same settings gets the same id."""
    blob = repr(sorted(settings.items())) + "\x00" + text
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def find_documents(root):
    """(supported files, skipped files with reason), recursively, sorted."""
    found, skipped = [], []
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix.lower() in FORMATS:
            found.append(path)
        else:
            skipped.append({"doc": str(path), "status": "skipped",
                            "why": f"unsupported extension {path.suffix or '(none)'}"})
    return found, skipped
