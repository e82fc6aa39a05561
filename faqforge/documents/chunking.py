"""Blocks to token-budgeted chunks with provenance, and the documents to read.

Blocks (paragraphs with their section heading path and PDF page, from
`faqforge.documents.readers`) are packed into chunks of at most `max_tokens` tokens.
Splits fall on paragraph, then sentence, boundaries; a chunk never spans two
documents or two sections; each chunk after the first of a section starts with
the last sentences of the one before (the overlap).
"""

import hashlib
import re
from pathlib import Path

from faqforge.documents.readers import FORMATS

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
JOIN_MARGIN = 4  # tokens of slack when adding up piece counts instead of re-counting


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
