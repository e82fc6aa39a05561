"""PDF to blocks with pypdf, page by page, running headers, footers and page numbers removed."""

import re
from collections import Counter

from faqforge.documents.blocks import UnreadableDocument, blocks_of

_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?\d+(?:\s*(?:of|/)\s*\d+)?\s*$", re.I)


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
        blocks.extend(blocks_of(text, page=number))
    return blocks



