"""Documents in data/docs/ to token-budgeted chunks in data/chunks.jsonl.

    dvc repro ingest            # or: python stages/ingest.py

Every file gets a line in data/ingest_report.jsonl: ingested, duplicate,
skipped or failed, with the reason. A bad file never stops the run.
"""

import hashlib
from collections import Counter
from pathlib import Path

from faqforge.ingest import chunk_blocks, chunk_id, find_documents, read_document
from faqforge.io import PipelineError, load_params, write_json, write_jsonl
from faqforge.models import checkpoint_source, load_tokenizer
from faqforge.stage import run

DOCS = Path("data/docs")
BASE = "models/base"


def tokenizer_spec(params):
    """The tokenizer that counts chunk tokens: explicit, else the local teacher's, else the student's."""
    spec = params["ingest"]["tokenizer"]
    if spec == "auto":
        teacher = params["teacher"]
        spec = teacher["model"] if teacher["backend"] == "local" else params["student"]["model"]
    return spec


def main():
    params = load_params(sections=["ingest", "teacher", "student"])
    p = params["ingest"]
    files, report = find_documents(DOCS)
    if not files:
        raise PipelineError(f"{DOCS}/: no documents found (.pdf, .md, .txt); "
                            "put the documents the chatbot should know there and rerun `dvc repro`.")
    spec = tokenizer_spec(params)
    tokenizer = load_tokenizer(BASE if checkpoint_source(BASE) == spec else spec)
    count = lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)  # noqa: E731
    settings = {"max_tokens": p["max_tokens"], "min_tokens": p["min_tokens"],
                "tokenizer": spec}
    chunks, seen, formats, pages = [], {}, Counter(), 0
    for path in files:
        doc = str(path)
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            if sha in seen:
                report.append({"doc": doc, "status": "duplicate", "why": f"same SHA-256 as {seen[sha]}"})
                continue
            fmt, blocks = read_document(path)
        except Exception as e:  # any unreadable file is reported, and the run goes on
            report.append({"doc": doc, "status": "failed", "why": f"{type(e).__name__}: {e}"})
            continue
        seen[sha] = doc
        pieces = chunk_blocks(blocks, count, p["max_tokens"], p["min_tokens"])
        for index, piece in enumerate(pieces):
            chunks.append({"chunk_id": chunk_id(piece["text"], settings), "doc": doc, "doc_sha256": sha,
                           "pages": piece["pages"], "section": piece["section"], "index": index,
                           "text": piece["text"], "n_tokens": count(piece["text"])})
        formats[fmt] += 1
        pages += len({b["page"] for b in blocks if b["page"] is not None})
        report.append({"doc": doc, "status": "ingested", "format": fmt, "chunks": len(pieces)})
    if not chunks:
        raise PipelineError(f"{DOCS}/: none of the {len(files)} documents gave any text; "
                            "see data/ingest_report.jsonl for each file's reason.")
    write_jsonl("data/chunks.jsonl", chunks)
    write_jsonl("data/ingest_report.jsonl", report)
    tokens = sorted(c["n_tokens"] for c in chunks)
    status = Counter(r["status"] for r in report)
    write_json("metrics/ingest.json", {
        "documents": dict(sorted(formats.items())), "pdf_pages": pages, "chunks": len(chunks),
        "tokens": {"total": sum(tokens), "min": tokens[0], "median": tokens[len(tokens) // 2],
                   "max": tokens[-1]},
        "files": dict(sorted(status.items())),
        "skipped_by_reason": dict(Counter(r["why"] for r in report if r["status"] != "ingested")),
    })
    print(f"ingest: {status['ingested']} documents -> {len(chunks)} chunks, {sum(tokens)} tokens; "
          f"{len(report) - status['ingested']} files not ingested (see data/ingest_report.jsonl)")


if __name__ == "__main__":
    run(main)
