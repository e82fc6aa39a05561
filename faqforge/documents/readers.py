"""Documents to blocks: paragraphs with their section heading path and PDF page.

One reader per format, each on a maintained parser: pypdf for PDF,
markdown-it-py for Markdown (CommonMark and tables), docutils for
reStructuredText (Sphinx's directives and roles understood), trafilatura for
HTML (the main content only: navigation, footers, asides, forms and cookie
banners left out). Markup never reaches a block; code blocks are kept line by
line. Text files are decoded in their own encoding and streamed.

Reading never crashes the stage: a file that cannot be read raises
`UnreadableDocument` with a status and a precise reason for the report, and
what a reader leaves out or cannot interpret (an unknown directive, a
navigation-only directive, a malformed table) is written down in the
document's `notes`.
"""

import codecs
import io
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

FORMATS = {".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
           ".rst": "rst", ".html": "html", ".htm": "html"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?\d+(?:\s*(?:of|/)\s*\d+)?\s*$", re.I)
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
SNIFF_BYTES = 65536
MARKDOWN_SEGMENT_LINES = 5000  # a huge section is parsed in pieces cut at blank lines: memory stays bounded


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


def _code_block(text, section=None):
    """A code block as one block, its lines kept (blank ones dropped: a blank line separates blocks)."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", text.replace("\t", "    ")))
    code = "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
    return [{"section": section, "page": None, "text": code}] if code else []


def _section(path):
    return " > ".join(path) or None


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

def read_text(lines, notes=None):
    for paragraph in iter_paragraphs(lines):
        yield from _blocks(paragraph)


def _markdown_segments(lines):
    """The document in pieces that parse on their own: cut before every ATX
    heading outside a code fence (and at a blank line in a very long section),
    with YAML front matter left out."""
    segment, fence, first = [], None, True
    lines = iter(lines)
    for line in lines:
        if first and line.strip() == "---":  # front matter: up to the closing --- or ...
            for line in lines:
                if line.strip() in ("---", "..."):
                    break
            first = False
            continue
        first = False
        match = _FENCE.match(line)
        if match and (fence is None or match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)):
            fence = match.group(1) if fence is None else None
        if fence is None and segment and (_ATX_HEADING.match(line) or (
                len(segment) >= MARKDOWN_SEGMENT_LINES and not line.strip())):
            yield "".join(segment)
            segment = []
        segment.append(line)
    if segment:
        yield "".join(segment)


def _inline_text(token):
    """The plain text of an inline token: markup dropped, code spans and link and image texts kept."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)


def read_markdown(lines, notes=None):
    """Blocks of a Markdown document (CommonMark with tables, markdown-it-py):
    headings become the section path, markup is removed, code blocks are kept
    line by line, table rows become "cell | cell" lines, HTML tags are dropped."""
    from markdown_it import MarkdownIt
    if isinstance(lines, str):
        lines = lines.splitlines(keepends=True)
    md = MarkdownIt("commonmark").enable("table")
    path, row = [], None
    for segment in _markdown_segments(lines):
        tokens = md.parse(segment)
        k = 0
        while k < len(tokens):
            token = tokens[k]
            if token.type == "heading_open":
                level = int(token.tag[1])
                path[:] = path[:level - 1] + [" ".join(_inline_text(tokens[k + 1]).split())]
                k += 3
                continue
            if token.type == "tr_open":
                row = []
            elif token.type == "tr_close":
                yield from _blocks(" | ".join(c for c in row if c), _section(path))
                row = None
            elif token.type == "inline":
                if row is not None:
                    row.append(" ".join(_inline_text(token).split()))
                else:
                    yield from _blocks(_inline_text(token), _section(path))
            elif token.type in ("fence", "code_block"):
                yield from _code_block(token.content, _section(path))
            elif token.type == "html_block":
                yield from _blocks(re.sub(r"<[^>]*>", " ", token.content), _section(path))
            k += 1


# Sphinx's directives, which plain docutils does not know: those whose content
# is prose (parsed as body, the label leading it) and those that carry no text
# of their own (navigation, API pulled from code), left out with a note.
SPHINX_PROSE = {"versionadded": "New in version", "versionchanged": "Changed in version",
                "deprecated": "Deprecated since version", "versionremoved": "Removed in version",
                "seealso": "See also", "todo": "To do", "only": None, "glossary": None, "hlist": None,
                "centered": None, "tab": None, "tabs": None, "group-tab": None, "card": None, "grid": None,
                "grid-item-card": None, "tab-item": None, "tab-set": None, "dropdown": None}
SPHINX_NO_TEXT = ("toctree", "automodule", "autoclass", "autofunction", "automethod", "autoattribute",
                  "autoexception", "autodata", "autosummary", "autoprogram", "literalinclude", "index", "highlight",
                  "currentmodule", "module", "py:module", "py:currentmodule", "sectionauthor", "codeauthor",
                  "tabularcolumns", "graphviz", "mermaid", "plot", "doctest", "testcode", "testoutput", "testsetup")
SPHINX_ROLES = ("ref", "doc", "term", "abbr", "command", "dfn", "envvar", "file", "guilabel", "kbd", "keyword",
                "mailheader", "makevar", "manpage", "menuselection", "mimetype", "newsgroup", "option", "program",
                "regexp", "samp", "token", "any", "numref", "download", "eq", "class", "func", "meth", "mod", "attr",
                "data", "exc", "obj", "const", "type", "confval",
                *(f"py:{r}" for r in ("class", "func", "meth", "mod", "attr", "data", "exc", "obj", "const", "type")),
                *(f"std:{r}" for r in ("ref", "doc", "term", "option", "envvar")))
_registered = False


def _register_sphinx():
    """Teach docutils Sphinx's directives and roles, once per process."""
    global _registered
    if _registered:
        return
    from docutils import nodes, utils
    from docutils.parsers.rst import Directive, directives, roles
    from docutils.parsers.rst.directives.body import CodeBlock

    class Prose(Directive):
        optional_arguments, final_argument_whitespace, has_content = 1, True, True
        option_spec = defaultdict(lambda: directives.unchanged)

        def run(self):
            node = nodes.container()
            label, argument = SPHINX_PROSE.get(self.name), " ".join(self.arguments)
            if label and label.endswith("version") and argument:
                version, *rest = argument.split(None, 1)
                label, argument = f"{label} {version}:", " ".join(rest)
            if label or argument:
                inline, messages = self.state.inline_text(argument, self.lineno)
                node += nodes.paragraph("", "", nodes.Text(f"{label} " if label else ""), *inline, *messages)
            self.state.nested_parse(self.content, self.content_offset, node)
            return [node]

    class Code(CodeBlock):  # Sphinx's code-block takes caption, linenos, emphasize-lines, ...
        option_spec = defaultdict(lambda: directives.unchanged, CodeBlock.option_spec)

    class NoText(Directive):
        optional_arguments, final_argument_whitespace, has_content = 1, True, True
        option_spec = defaultdict(lambda: directives.unchanged)

        def run(self):
            self.state.document.settings.faqforge_notes.append(
                f"line {self.lineno}: directive {self.name!r} has no text of its own (navigation or code); left out")
            return []

    def text_role(name, rawtext, text, lineno, inliner, options=None, content=None):
        title = re.sub(r"\s*<[^>]*>$", "", utils.unescape(text)).strip()
        if title.startswith("~"):
            title = title[1:].rsplit(".", 1)[-1]
        return [nodes.literal(rawtext, title.lstrip("!"))], []

    for name in SPHINX_PROSE:
        directives.register_directive(name, Prose)
    for name in SPHINX_NO_TEXT:
        directives.register_directive(name, NoText)
    for alias in ("code-block", "sourcecode"):
        directives.register_directive(alias, Code)
    for name in SPHINX_ROLES:
        roles.register_local_role(name, text_role)
    _registered = True


def _rst_blocks(node, path, notes):
    """Blocks of a docutils node's children, depth first."""
    from docutils import nodes
    for child in node.children:
        if isinstance(child, nodes.section):
            title = child.next_node(nodes.title)
            yield from _rst_blocks(child, path + [" ".join(title.astext().split())] if title else path, notes)
        elif isinstance(child, (nodes.title, nodes.comment, nodes.substitution_definition, nodes.target,
                                nodes.raw, nodes.pending)):
            continue
        elif isinstance(child, nodes.topic) and "contents" in child["classes"]:
            continue  # a generated table of contents
        elif isinstance(child, (nodes.paragraph, nodes.term, nodes.rubric, nodes.line, nodes.attribution,
                                nodes.caption)):
            yield from _blocks(child.astext(), _section(path))
        elif isinstance(child, (nodes.literal_block, nodes.doctest_block, nodes.math_block)):
            yield from _code_block(child.astext(), _section(path))
        elif isinstance(child, (nodes.definition_list_item, nodes.field)):
            name, *body = child.children  # term (or field name), then its definition
            text = " ".join(" ".join(b.astext().split()) for b in body)
            yield from _blocks(f"{' '.join(name.astext().split())}: {text}", _section(path))
        elif isinstance(child, nodes.row):
            yield from _blocks(" | ".join(" ".join(e.astext().split()) for e in child.children), _section(path))
        elif isinstance(child, nodes.Admonition):
            inner = list(_rst_blocks(child, path, notes))
            label = child.tagname.capitalize() if child.tagname != "admonition" else None
            if label and inner:
                inner[0] = {**inner[0], "text": f"{label}: {inner[0]['text']}"}
            yield from inner
        elif isinstance(child, nodes.system_message):
            yield from _rst_message(child, path, notes)
        else:
            yield from _rst_blocks(child, path, notes)


def _rst_message(message, path, notes):
    """A docutils warning or error in the document, noted; when it is a directive
    docutils could not run, the directive's content is kept as text."""
    from docutils import nodes
    if message["level"] < 2:
        return
    what = " ".join(message.children[0].astext().split()).rstrip(".") if message.children else "error"
    source = message.next_node(nodes.literal_block)
    body = ""
    if source is not None:  # the text docutils could not interpret: a directive, a malformed table
        lines = source.astext().splitlines()
        if lines and lines[0].startswith(".."):
            lines = [ln for ln in lines[1:] if not ln.strip().startswith(":")]
        body = "\n".join(ln for ln in lines if not re.fullmatch(r"[+=|\- ]*", ln))
    notes.append(f"line {message.get('line')}: {what}" + ("; its text kept as it is" if body.strip() else ""))
    yield from _blocks(body, _section(path))


def read_rst(lines, notes=None):
    """Blocks of a reStructuredText document, parsed by docutils with Sphinx's
    directives and roles: section titles become the section path, the content
    of admonitions (note, warning, ...) and of prose directives is kept, code
    blocks line by line; includes and raw HTML are never read."""
    from docutils.core import publish_doctree
    _register_sphinx()
    notes = [] if notes is None else notes
    doctree = publish_doctree("".join(lines), settings_overrides={
        "report_level": 3, "halt_level": 5, "warning_stream": io.StringIO(), "file_insertion_enabled": False,
        "raw_enabled": False, "doctitle_xform": False, "sectsubtitle_xform": False, "_disable_config": True,
        "faqforge_notes": notes})
    yield from _rst_blocks(doctree, [], notes)


def read_html(lines, notes=None):
    """Blocks of the main content of an HTML page (trafilatura): headings become
    the section path; navigation, headers, footers, asides, forms and cookie
    banners are left out."""
    import trafilatura
    from lxml import etree
    from trafilatura.settings import use_config
    config = use_config()
    # A short page is still a page (trafilatura would fall back to all the text, menus
    # included), and size limits are ingest's business.
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
    config.set("DEFAULT", "MAX_FILE_SIZE", str(2**40))
    page = "".join(lines)
    xml = trafilatura.extract(page, output_format="xml", include_tables=True, include_comments=False,
                              include_formatting=False, include_links=False, include_images=False, config=config)
    if not xml:
        raise UnreadableDocument("failed", "no main content found in the page (trafilatura)")
    main = etree.fromstring(xml.encode("utf-8")).find("main")
    path = []

    def walk(element):
        for child in element:
            text = "".join(child.itertext())
            if child.tag == "head":
                level = int(child.get("rend", "h2")[1:] or 2) if re.fullmatch(r"h[1-6]", child.get("rend", "")) else 2
                path[:] = path[:level - 1] + [" ".join(text.split())]
            elif child.tag == "code":
                yield from _code_block(text, _section(path))
            elif child.tag == "row":
                yield from _blocks(" | ".join(" ".join("".join(c.itertext()).split()) for c in child),
                                   _section(path))
            elif child.tag in ("list", "table", "div"):
                yield from walk(child)
            else:
                yield from _blocks(text, _section(path))

    yield from walk(main if main is not None else [])


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
    for page, _lines in zip(pages, edges):
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
    """Return (format, iterator of blocks, notes) for one file; `notes` fills
    while the blocks are read. Raises UnreadableDocument (possibly while
    iterating) when it gives no text."""
    fmt = FORMATS[Path(path).suffix.lower()]
    if Path(path).stat().st_size == 0:
        raise UnreadableDocument("skipped", "empty file")
    notes = []
    if fmt == "pdf":
        return fmt, iter(read_pdf(path)), notes
    reader = {"markdown": read_markdown, "text": read_text, "rst": read_rst, "html": read_html}[fmt]
    return fmt, iter(reader(iter_text_lines(path), notes)), notes
