"""Documents to token-budgeted chunks with provenance.

Each document is read into blocks (paragraphs with their section heading path
and PDF page), cleaned, then packed into chunks of at most `max_tokens` tokens.
Splits fall on paragraph, then sentence, boundaries; a chunk never spans two
documents or two sections; each chunk after the first of a section starts with
the last sentences of the one before (the overlap).

Reading never crashes the stage: a file that cannot be read raises
`UnreadableDocument` with a status and a precise reason for the report.
"""

import codecs
import hashlib
import html.parser
import re
import unicodedata
from collections import Counter
from pathlib import Path

FORMATS = {".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
           ".rst": "rst", ".html": "html", ".htm": "html"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+_:.])\1{2,}\s*$")
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?\d+(?:\s*(?:of|/)\s*\d+)?\s*$", re.I)
SNIFF_BYTES = 65536
JOIN_MARGIN = 4  # tokens of slack when adding up piece counts instead of re-counting


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


def _blocks(text, section=None, page=None):
    body = clean_text(text)
    return [{"section": section, "page": page, "text": p} for p in body.split("\n\n")] if body else []


# --- text decoding ------------------------------------------------------------

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


# --- formats --------------------------------------------------------------------

def read_text(lines):
    for paragraph in iter_paragraphs(lines):
        yield from _blocks(paragraph)


def read_markdown(lines):
    """Blocks of a Markdown document, each with its heading path."""
    if isinstance(lines, str):
        lines = lines.splitlines(keepends=True)
    path, buffer, in_code = [], [], False

    def flush():
        body = "".join(buffer)
        buffer.clear()
        return _blocks(body, " > ".join(path) or None)

    for line in lines:
        if line.strip().startswith(("```", "~~~")):
            in_code = not in_code
        match = None if in_code else _MD_HEADING.match(line.rstrip("\n"))
        if match:
            yield from flush()
            level = len(match.group(1))
            path[:] = path[:level - 1] + [match.group(2)]
        else:
            buffer.append(line)
            if not line.strip() and not in_code:
                yield from flush()
    yield from flush()


def _rst_inline(text):
    text = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", text)          # `text <url>`_
    text = re.sub(r":[\w-]+:`([^`]+)`", r"\1", text)                 # :role:`text`
    text = re.sub(r"``([^`]+)``", r"\1", text)                       # ``literal``
    text = re.sub(r"(\*\*|\*|`)(\S(?:.*?\S)?)\1_*", r"\2", text)     # **strong**, *emph*, `ref`_
    return text


def read_rst(lines):
    """Blocks of a reStructuredText document: headings (underlined, optionally
    overlined) become the section path; directives and comments are dropped."""
    lines = [line.rstrip("\n") for line in lines]
    styles, path, buffer = [], [], []
    skip_indented = False

    def flush():
        body = _rst_inline("\n".join(buffer))
        buffer.clear()
        return _blocks(body, " > ".join(path) or None)

    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        over = _RST_ADORNMENT.match(line)
        if over and i + 2 < len(lines) and lines[i + 1].strip() and _RST_ADORNMENT.match(lines[i + 2]):
            title, style, i = lines[i + 1].strip(), "over" + over.group(1), i + 3
        elif line.strip() and not over and _RST_ADORNMENT.match(nxt) and len(nxt.strip()) >= len(line.strip()):
            title, style, i = line.strip(), nxt.strip()[0], i + 2
        else:
            if line.startswith(".. "):
                skip_indented = True  # a directive or comment: its indented body goes too
            elif skip_indented and (not line.strip() or line[:1].isspace()):
                pass
            else:
                skip_indented = False
                buffer.append(line)
                if not line.strip():
                    yield from flush()
            i += 1
            continue
        yield from flush()
        if style not in styles:
            styles.append(style)
        level = styles.index(style)
        path[:] = path[:level] + [title]
    yield from flush()


class _HTMLText(html.parser.HTMLParser):
    """Collects (heading path, paragraph) from HTML; script/style/nav dropped."""
    BLOCK = {"p", "div", "li", "tr", "br", "pre", "blockquote", "section", "article", "table", "ul", "ol", "dd", "dt"}
    SKIP = {"script", "style", "nav", "head", "noscript", "svg", "template"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks, self.path, self.text, self.skipping, self.heading = [], [], [], 0, None

    def _flush(self):
        self.blocks.extend(_blocks("".join(self.text), " > ".join(self.path) or None))
        self.text = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.heading = (int(tag[1]), [])
        elif tag in self.BLOCK:
            self.text.append("\n\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self.heading:
            level, parts = self.heading
            title = " ".join("".join(parts).split())
            if title:
                self.path[:] = self.path[:level - 1] + [title]
            self.heading = None
        elif tag in self.BLOCK:
            self.text.append("\n\n")

    def handle_data(self, data):
        if self.skipping:
            return
        (self.heading[1] if self.heading else self.text).append(data)


def read_html(lines):
    parser = _HTMLText()
    for line in lines:
        parser.feed(line)
    parser.close()
    parser._flush()
    return parser.blocks


def strip_repeated_lines(pages):
    """Remove running headers, footers and page numbers: lines among the first
    or last three of a page that recur (digits ignored) on at least half of the
    pages, and lines that are only a page number."""
    def key(line):
        return re.sub(r"\d+", "#", " ".join(line.split()).lower())

    edges = [[ln for ln in page.splitlines() if ln.strip()] for page in pages]
    counts = Counter()
    for lines in edges:
        counts.update({key(ln) for ln in lines[:3] + lines[-3:]})
    repeated = {k for k, n in counts.items() if len(pages) >= 3 and n >= max(3, len(pages) / 2)}
    cleaned = []
    for page, lines in zip(pages, edges):
        keep = []
        for n, line in enumerate(page.splitlines()):
            near_edge = n < 3 or n >= len(page.splitlines()) - 3
            if _PAGE_NUMBER.match(line) or (near_edge and key(line) in repeated):
                continue
            keep.append(line)
        cleaned.append("\n".join(keep))
    return cleaned


def read_pdf(path):
    """Blocks of a PDF, page by page, with 1-based page numbers."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("failed", "encrypted PDF: a password is required; save a decrypted copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnreadableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UnreadableDocument("failed", f"corrupt PDF: {type(e).__name__}: {str(e)[:200]}") from None
    except Exception as e:  # pypdf raises many kinds on damaged files
        if "decrypt" in str(e).lower() or "crypt" in type(e).__name__.lower():
            raise UnreadableDocument("failed", f"encrypted PDF: {str(e)[:200]}") from None
        raise UnreadableDocument("failed", f"corrupt PDF: {type(e).__name__}: {str(e)[:200]}") from None
    if not any(p.strip() for p in pages):
        raise UnreadableDocument("failed", f"no extractable text in {len(pages)} pages "
                                           "(a scanned PDF? run OCR first, e.g. ocrmypdf)")
    blocks = []
    for number, text in enumerate(strip_repeated_lines(pages), 1):
        # pypdf gives one line per text line; a line ending a sentence ends a paragraph.
        text = re.sub(r"([.!?:])\n(?=[A-Z0-9•\-])", r"\1\n\n", text)
        blocks.extend(_blocks(text, page=number))
    return blocks


def read_document(path):
    """Return (format, iterator of blocks) for one file. Raises
    UnreadableDocument (possibly while iterating) when it gives no text."""
    fmt = FORMATS[Path(path).suffix.lower()]
    if Path(path).stat().st_size == 0:
        raise UnreadableDocument("skipped", "empty file")
    if fmt == "pdf":
        return fmt, iter(read_pdf(path))
    reader = {"markdown": read_markdown, "text": read_text, "rst": read_rst, "html": read_html}[fmt]
    return fmt, iter(reader(iter_text_lines(path)))


# --- chunking -------------------------------------------------------------------

class TokenCounter:
    """Counts tokens with a tokenizer, remembering recent texts: packing asks
    about the same pieces many times."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache = {}

    def __call__(self, text):
        n = self._cache.get(text)
        if n is None:
            n = len(self.tokenizer(text, add_special_tokens=False).input_ids)
            if len(self._cache) > 10_000:  # bounded: a 50 MB file must not fill memory
                self._cache.clear()
            self._cache[text] = n
        return n


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


def _overlap_tail(text, count_tokens, overlap_tokens):
    """The last whole sentences of `text` whose counts add up to at most `overlap_tokens`."""
    tail, total = [], 0
    for sentence in reversed(_SENTENCE_END.split(text.replace("\n\n", " "))):
        total += count_tokens(sentence)
        if total > overlap_tokens:
            break
        tail.insert(0, sentence)
    return " ".join(tail)


def chunk_blocks(blocks, count_tokens, max_tokens, min_tokens=0, overlap_tokens=0):
    """Pack blocks into chunks of at most `max_tokens` tokens (yielded one by
    one): consecutive paragraphs of one section while the budget allows. A
    section's last chunk shorter than `min_tokens` takes sentences from the one
    before, or merges into it when both fit. Each chunk after the first of a
    section starts with up to `overlap_tokens` tokens of the one before.
    Yields dicts with text, section, pages, overlap (the prefix's length in
    characters)."""
    if overlap_tokens >= max_tokens // 2:
        raise ValueError(f"overlap_tokens {overlap_tokens} must be under half of max_tokens {max_tokens}")
    budget = max_tokens - (overlap_tokens + 2 if overlap_tokens else 0)  # room for the prefix and its break
    previous = None  # text of the last chunk yielded in this section, for the overlap
    separator = count_tokens("\n\n")

    def release(chunk):
        nonlocal previous
        prefix = _overlap_tail(previous, count_tokens, overlap_tokens) if previous and overlap_tokens else ""
        while prefix and count_tokens(f"{prefix}\n\n{chunk['text']}") > max_tokens:
            prefix = prefix.partition(" ")[2]  # token boundaries shift at the join: trim word by word
        previous = chunk["text"]
        pages = sorted(p for p in chunk["pages"] if p is not None)
        return {"text": f"{prefix}\n\n{chunk['text']}" if prefix else chunk["text"],
                "section": chunk["section"], "pages": pages or None,
                "overlap": len(prefix) + 2 if prefix else 0}

    # Only the last two chunks of a section are held back (for the tail
    # rebalancing), so memory stays bounded on a huge single-section file.
    section, pending, current = object(), [], None
    for block in blocks:
        if block["section"] != section:
            if current is not None:
                pending.append(current)
            _rebalance_tail(pending, count_tokens, budget, min_tokens)
            yield from map(release, pending)
            section, pending, current, previous = block["section"], [], None, None
        for piece in split_to_budget(block["text"], count_tokens, budget):
            n_piece = count_tokens(piece)
            if current is not None:
                # Token counts add up across a paragraph break (up to a token or two at
                # the join), so the exact count of the joined text is only needed near the budget.
                estimate = current["tokens"] + n_piece + separator
                joined = current["text"] + "\n\n" + piece
                if estimate <= budget - JOIN_MARGIN or (
                        estimate <= budget + JOIN_MARGIN and count_tokens(joined) <= budget):
                    current["text"] = joined
                    current["tokens"] = estimate
                    current["pages"].add(block["page"])
                    continue
                pending.append(current)
                if len(pending) > 2:
                    yield release(pending.pop(0))
            current = {"text": piece, "tokens": n_piece, "section": block["section"], "pages": {block["page"]}}
    if current is not None:
        pending.append(current)
    _rebalance_tail(pending, count_tokens, budget, min_tokens)
    yield from map(release, pending)


def _rebalance_tail(chunks, count_tokens, budget, min_tokens):
    """Give a too-small last chunk of a section whole sentences from the end of
    the chunk before it, or merge the two when they fit together; never over budget."""
    if len(chunks) < 2 or count_tokens(chunks[-1]["text"]) >= min_tokens:
        return
    prev, last = chunks[-2], chunks[-1]
    merged = prev["text"] + "\n\n" + last["text"]
    if count_tokens(merged) <= budget:
        prev["text"] = merged
        prev["pages"] |= last["pages"]
        chunks.pop()
        return
    while count_tokens(last["text"]) < min_tokens:
        boundaries = list(_SENTENCE_END.finditer(prev["text"]))
        if not boundaries:
            break
        cut = boundaries[-1]
        separator = "\n\n" if "\n\n" in cut.group() else " "
        candidate = prev["text"][cut.end():] + separator + last["text"]
        if count_tokens(candidate) > budget:
            break
        prev["text"], last["text"] = prev["text"][:cut.start()], candidate
        last["pages"].add(max(prev["pages"], key=lambda p: p or 0))


def chunk_id(text, settings):
    """Stable id: the same text chunked with the same settings gets the same id."""
    blob = repr(sorted(settings.items())) + "\x00" + text
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def file_sha256(path):
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_documents(root):
    """(supported files, report lines for the others), recursively, sorted.

    Symlinks are followed only while they stay inside `root`; a link that
    points outside it (or nowhere) is reported, never read.
    """
    root = Path(root)
    real_root = root.resolve()
    found, skipped = [], []
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") or path.suffix == ".dvc":  # hidden files, DVC's records of imported documents
            continue
        if path.is_symlink():
            target = path.resolve()
            if not target.exists():
                skipped.append({"doc": str(path), "status": "skipped", "why": "broken symlink"})
                continue
            if not target.is_relative_to(real_root):
                skipped.append({"doc": str(path), "status": "skipped",
                                "why": f"symlink to {target}, outside {root}; not read"})
                continue
        if not path.is_file():
            continue
        if path.suffix.lower() in FORMATS:
            found.append(path)
        else:
            skipped.append({"doc": str(path), "status": "skipped",
                            "why": f"unsupported extension {path.suffix or '(none)'}"})
    return found, skipped
