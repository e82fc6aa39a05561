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

import re
from pathlib import Path

from faqforge.documents.blocks import (
    UnreadableDocument,
    blocks_of,
    code_block,
    iter_paragraphs,
    iter_text_lines,
    section_of,
)
from faqforge.documents.pdf import read_pdf
from faqforge.documents.rst import read_rst

FORMATS = {".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
           ".rst": "rst", ".html": "html", ".htm": "html"}
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
MARKDOWN_SEGMENT_LINES = 5000  # a huge section is parsed in pieces cut at blank lines: memory stays bounded


def read_text(lines, notes=None):
    for paragraph in iter_paragraphs(lines):
        yield from blocks_of(paragraph)


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
                yield from blocks_of(" | ".join(c for c in row if c), section_of(path))
                row = None
            elif token.type == "inline":
                if row is not None:
                    row.append(" ".join(_inline_text(token).split()))
                else:
                    yield from blocks_of(_inline_text(token), section_of(path))
            elif token.type in ("fence", "code_block"):
                yield from code_block(token.content, section_of(path))
            elif token.type == "html_block":
                yield from blocks_of(re.sub(r"<[^>]*>", " ", token.content), section_of(path))
            k += 1


# Sphinx's directives, which plain docutils does not know: those whose content
# is prose (parsed as body, the label leading it) and those that carry no text
# of their own (navigation, API pulled from code), left out with a note.
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
                yield from code_block(text, section_of(path))
            elif child.tag == "row":
                yield from blocks_of(" | ".join(" ".join("".join(c.itertext()).split()) for c in child),
                                   section_of(path))
            elif child.tag in ("list", "table", "div"):
                yield from walk(child)
            else:
                yield from blocks_of(text, section_of(path))

    yield from walk(main if main is not None else [])



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
