"""Documents in data/docs/ to token-budgeted chunks in data/chunks.jsonl.

    dvc repro ingest            # or: python stages/ingest.py

Every file gets a line in data/ingest_report.jsonl: ingested, duplicate,
skipped, filtered or failed, with the reason. Before any text reaches the
teacher, each chunk goes through hygiene (params: hygiene): personal data and
secrets redacted or the chunk dropped, every action located in
data/ingest_pii.jsonl; chunks in a language not kept are dropped. Dropped
chunks are in data/ingest_dropped.jsonl with the reason. A bad file never stops the run; the stage
fails only when no document at all gives text. Documents are streamed, so a
huge file costs time, not memory.
"""

from collections import Counter
from pathlib import Path

from faqforge.core.config import load_params
from faqforge.core.io import PipelineError, write_json, write_jsonl
from faqforge.core.records import dropped
from faqforge.core.stage import run
from faqforge.documents.chunking import TokenCounter, chunk_blocks, chunk_id, file_sha256, find_documents
from faqforge.documents.readers import UnreadableDocument, read_document
from faqforge.hygiene.check import Hygiene
from faqforge.models.checkpoints import checkpoint_source, load_tokenizer

DOCS = Path("data/docs")
BASE = "models/base"


def tokenizer_spec(params):
    """The tokenizer that counts chunk tokens: explicit, else the local teacher's, else the student's."""
    spec = params["ingest"]["tokenizer"]
    if spec == "auto":
        teacher = params["teacher"]
        spec = teacher["model"] if teacher["backend"] == "local" else params["student"]["model"]
    return spec


def chunk_budget(params):
    """ingest.max_tokens, or with `auto` the teacher's context window minus the
    tokens reserved for the prompt (instructions, worked examples) and the reply."""
    p = params["ingest"]
    if p["max_tokens"] != "auto":
        return int(p["max_tokens"])
    budget = params["teacher"]["context_window"] - p["reserve_tokens"]
    if budget < 64:
        raise PipelineError(f"params.yaml: teacher.context_window {params['teacher']['context_window']} minus "
                            f"ingest.reserve_tokens {p['reserve_tokens']} leaves {budget} tokens per chunk; "
                            "lower reserve_tokens or set ingest.max_tokens.")
    return budget


def nth_smallest(counts, n):
    """The n-th (0-based) smallest value of a multiset given as {value: count}."""
    for value in sorted(counts):
        n -= counts[value]
        if n < 0:
            return value
    raise IndexError(n)


def main():
    params = load_params(sections=["ingest", "hygiene", "generate", "teacher", "student"])
    p = params["ingest"]
    files, report = find_documents(DOCS)
    if not files:
        raise PipelineError(f"{DOCS}/: no documents found (.pdf, .md, .txt, .rst, .html); "
                            "put the documents the chatbot should know there and rerun `dvc repro`.")
    spec = tokenizer_spec(params)
    count = TokenCounter(load_tokenizer(BASE if checkpoint_source(BASE) == spec else spec))
    max_tokens = chunk_budget(params)
    settings = {"max_tokens": max_tokens, "min_tokens": p["min_tokens"],
                "overlap_tokens": p["overlap_tokens"], "tokenizer": spec}
    formats, tokens, seen = Counter(), Counter(), {}  # tokens: chunk size -> chunks (bounded by max_tokens)
    hygiene = Hygiene(params, upstream=False)
    pii_rows, removed = [], []
    pages = 0

    def chunks():
        nonlocal pages
        for path in files:
            doc = str(path)
            sha = file_sha256(path)
            if sha in seen:
                report.append({"doc": doc, "status": "duplicate", "why": f"same SHA-256 as {seen[sha]}"})
                continue
            produced, doc_pages, n_doc, n_removed = [], set(), 0, 0
            try:
                fmt, blocks, notes = read_document(path)
                for index, piece in enumerate(chunk_blocks(blocks, count, max_tokens, p["min_tokens"],
                                                           p["overlap_tokens"])):
                    doc_pages.update(piece["pages"] or [])
                    where = {"doc": doc, "pages": piece["pages"], "section": piece["section"], "index": index}
                    fields, rows, reason, why = hygiene.check({"text": piece["text"]}, where)
                    pii_rows.extend(rows)
                    text = fields["text"]
                    if reason:
                        removed.append(dropped({**where, "text": text}, "ingest", reason, why))
                        n_removed += 1
                        continue
                    produced.append({"chunk_id": chunk_id(text, settings), "doc": doc,
                                     "doc_sha256": sha, "pages": piece["pages"], "section": piece["section"],
                                     "index": index, "text": text, "n_tokens": count(text)})
                    n_doc += 1
                    if len(produced) >= 256:  # a big document streams out in batches
                        tokens.update(c["n_tokens"] for c in produced)
                        yield from produced
                        produced.clear()
            except Exception as e:
                status, why = ((e.status, e.why) if isinstance(e, UnreadableDocument)
                               else ("failed", f"{type(e).__name__}: {e}"))  # one odd file must not cost the others
                if n_doc > len(produced):  # part of it was already written
                    status, why = "partial", f"{why} (after {n_doc - len(produced)} chunks)"
                report.append({"doc": doc, "status": status, "why": why})
                continue
            if n_doc == 0:
                report.append({"doc": doc, "status": "filtered", "why": f"all {n_removed} chunks dropped by hygiene "
                                                                        "(see data/ingest_dropped.jsonl)"}
                              if n_removed else {"doc": doc, "status": "failed", "why": "no text after clean-up"})
                continue
            tokens.update(c["n_tokens"] for c in produced)
            yield from produced
            seen[sha] = doc
            formats[fmt] += 1
            pages += len(doc_pages)
            report.append({"doc": doc, "status": "ingested", "format": fmt, "chunks": n_doc,
                           "pages": len(doc_pages) or None, **({"notes": notes} if notes else {})})

    n = write_jsonl("data/chunks.jsonl", chunks())
    report.sort(key=lambda r: r["doc"])
    write_jsonl("data/ingest_report.jsonl", report)
    write_jsonl("data/ingest_dropped.jsonl", removed)
    write_jsonl("data/ingest_pii.jsonl", pii_rows)
    status = Counter(r["status"] for r in report)
    if n == 0:
        raise PipelineError(f"{DOCS}/: none of the {len(files)} documents gave any text; "
                            "see data/ingest_report.jsonl for each file's reason.")
    total = sum(size * k for size, k in tokens.items())
    write_json("metrics/ingest.json", {
        "documents": dict(sorted(formats.items())), "pdf_pages": pages, "chunks": n,
        "max_tokens": max_tokens,
        "tokens": {"total": total, "min": min(tokens), "p50": nth_smallest(tokens, n // 2),
                   "p90": nth_smallest(tokens, int(n * 0.9)), "max": max(tokens)},
        "files": dict(sorted(status.items())),
        "not_ingested_by_reason": dict(Counter(r["why"] for r in report if r["status"] != "ingested")),
        "chunks_dropped": len(removed),
        **hygiene.metrics(),
    })
    print(f"ingest: {status['ingested']} documents -> {n} chunks, {total} tokens; "
          f"{len(report) - status['ingested']} files not ingested (see data/ingest_report.jsonl)")


if __name__ == "__main__":
    run(main)
