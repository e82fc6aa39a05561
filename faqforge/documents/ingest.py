"""The ingest stage's work: every document in data/docs/ read, chunked and
checked by hygiene, one at a time, with a line per file in the ingest report.

A bad file never stops the run (its reason goes to the report); a document is
streamed out in batches, so a huge file costs time, not memory.
"""

from collections import Counter

from faqforge.core.hashing import file_sha256
from faqforge.core.io import PipelineError
from faqforge.core.records import dropped
from faqforge.documents.blocks import UnreadableDocument
from faqforge.documents.chunking import chunk_blocks, chunk_id
from faqforge.documents.readers import read_document

BATCH = 256  # chunks of one document held before they are written


def tokenizer_spec(ingest, teacher, student):
    """The tokenizer that counts chunk tokens (from the ingest, teacher and student
    sections): explicit, else the local teacher's, else the student's."""
    if ingest.tokenizer != "auto":
        return ingest.tokenizer
    return teacher.model if teacher.backend == "local" else student.model


def chunk_budget(ingest, teacher):
    """ingest.max_tokens, or with `auto` the teacher's context window minus the
    tokens reserved for the prompt (instructions, worked examples) and the reply."""
    if ingest.max_tokens != "auto":
        return ingest.max_tokens
    budget = teacher.context_window - ingest.reserve_tokens
    if budget < 64:
        raise PipelineError(f"params.yaml: teacher.context_window {teacher.context_window} minus "
                            f"ingest.reserve_tokens {ingest.reserve_tokens} leaves {budget} tokens per chunk; "
                            "lower reserve_tokens or set ingest.max_tokens.")
    return budget


def nth_smallest(counts, n):
    """The n-th (0-based) smallest value of a multiset given as {value: count}."""
    for value in sorted(counts):
        n -= counts[value]
        if n < 0:
            return value
    raise IndexError(n)


class Ingest:
    """Documents to chunks. `chunks(files)` yields them; meanwhile `report` gets
    a line per file, `removed` the chunks hygiene dropped and `pii_rows` every
    redaction, and `metrics(n)` sums it all up."""

    def __init__(self, count_tokens, hygiene, settings):
        """`settings`: max_tokens, min_tokens, overlap_tokens and the tokenizer's
        name; all of them are part of every chunk's id."""
        self.count, self.hygiene, self.settings = count_tokens, hygiene, settings
        self.report, self.removed, self.pii_rows = [], [], []
        self.formats, self.tokens, self.seen = Counter(), Counter(), {}  # tokens: chunk size -> chunks
        self.pages = 0

    def chunks(self, files):
        for path in files:
            yield from self._document(path)

    def _document(self, path):
        doc, sha = str(path), file_sha256(path)
        if sha in self.seen:
            self.report.append({"doc": doc, "status": "duplicate", "why": f"same SHA-256 as {self.seen[sha]}"})
            return
        produced, pages, n_doc, n_removed = [], set(), 0, 0
        try:
            fmt, blocks, notes = read_document(path)
            s = self.settings
            for index, piece in enumerate(chunk_blocks(blocks, self.count, s["max_tokens"], s["min_tokens"],
                                                       s["overlap_tokens"])):
                pages.update(piece["pages"] or [])
                chunk = self._checked(piece, doc, sha, index)
                if chunk is None:
                    n_removed += 1
                    continue
                produced.append(chunk)
                n_doc += 1
                if len(produced) >= BATCH:
                    yield from self._emit(produced)
        except Exception as e:
            status, why = ((e.status, e.why) if isinstance(e, UnreadableDocument)
                           else ("failed", f"{type(e).__name__}: {e}"))  # one odd file must not cost the others
            if n_doc > len(produced):  # part of it was already written
                status, why = "partial", f"{why} (after {n_doc - len(produced)} chunks)"
            self.report.append({"doc": doc, "status": status, "why": why})
            return
        if n_doc == 0:
            self.report.append({"doc": doc, "status": "filtered", "why": f"all {n_removed} chunks dropped by "
                                                                         "hygiene (see data/ingest_dropped.jsonl)"}
                               if n_removed else {"doc": doc, "status": "failed", "why": "no text after clean-up"})
            return
        yield from self._emit(produced)
        self.seen[sha] = doc
        self.formats[fmt] += 1
        self.pages += len(pages)
        self.report.append({"doc": doc, "status": "ingested", "format": fmt, "chunks": n_doc,
                            "pages": len(pages) or None, **({"notes": notes} if notes else {})})

    def _checked(self, piece, doc, sha, index):
        """The chunk record of one piece after hygiene, or None when hygiene drops it."""
        where = {"doc": doc, "pages": piece["pages"], "section": piece["section"], "index": index}
        fields, rows, drop = self.hygiene.check({"text": piece["text"]}, where)
        self.pii_rows.extend(rows)
        text = fields["text"]
        if drop:
            self.removed.append(dropped({**where, "text": text}, "ingest", **drop))
            return None
        return {"chunk_id": chunk_id(text, self.settings), "doc": doc, "doc_sha256": sha, "pages": piece["pages"],
                "section": piece["section"], "index": index, "text": text, "n_tokens": self.count(text)}

    def _emit(self, produced):
        self.tokens.update(c["n_tokens"] for c in produced)
        yield from produced
        produced.clear()

    def metrics(self, n):
        """metrics/ingest.json's own keys, for `n` chunks written."""
        total = sum(size * k for size, k in self.tokens.items())
        status = Counter(r["status"] for r in self.report)
        return {"documents": dict(sorted(self.formats.items())), "pdf_pages": self.pages, "chunks": n,
                "max_tokens": self.settings["max_tokens"],
                "tokens": {"total": total, "min": min(self.tokens), "p50": nth_smallest(self.tokens, n // 2),
                           "p90": nth_smallest(self.tokens, int(n * 0.9)), "max": max(self.tokens)} if n else None,
                "files": dict(sorted(status.items())),
                "not_ingested_by_reason": dict(Counter(r["why"] for r in self.report if r["status"] != "ingested")),
                **self.hygiene.metrics()}
