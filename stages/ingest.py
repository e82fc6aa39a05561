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

from pathlib import Path

from faqforge.core.config import load_config
from faqforge.core.io import PipelineError, write_jsonl
from faqforge.core.stage import finish, run
from faqforge.documents.chunking import TokenCounter, find_documents
from faqforge.documents.ingest import Ingest, chunk_budget, tokenizer_spec
from faqforge.hygiene.check import Hygiene
from faqforge.models.checkpoints import checkpoint_source, load_tokenizer

DOCS = Path("data/docs")
BASE = "models/base"


def main():
    config = load_config(sections=["ingest", "hygiene", "generate", "teacher", "student"])
    p = config["ingest"]
    files, skipped = find_documents(DOCS)
    if not files:
        raise PipelineError(f"{DOCS}/: no documents found (.pdf, .md, .txt, .rst, .html); "
                            "put the documents the chatbot should know there and rerun `dvc repro`.")
    spec = tokenizer_spec(p, config["teacher"], config["student"])
    count = TokenCounter(load_tokenizer(BASE if checkpoint_source(BASE) == spec else spec))
    ingest = Ingest(count, Hygiene(config["hygiene"], config["generate"].language, upstream=False),
                    {"max_tokens": chunk_budget(p, config["teacher"]), "min_tokens": p.min_tokens,
                     "overlap_tokens": p.overlap_tokens, "tokenizer": spec})
    ingest.report += skipped
    n = write_jsonl("data/chunks.jsonl", ingest.chunks(files))
    write_jsonl("data/ingest_report.jsonl", sorted(ingest.report, key=lambda r: r["doc"]))
    write_jsonl("data/ingest_pii.jsonl", ingest.pii_rows)
    metrics, ingested = ingest.metrics(n), sum(r["status"] == "ingested" for r in ingest.report)
    finish("ingest", len(ingest.report), n, ingest.removed, metrics,
           summary=f"{ingested} documents -> {n} chunks, {n and metrics['tokens']['total']} tokens; "
                   f"{len(ingest.report) - ingested} files not ingested (see data/ingest_report.jsonl)")
    if n == 0:
        raise PipelineError(f"{DOCS}/: none of the {len(files)} documents gave any text; "
                            "see data/ingest_report.jsonl for each file's reason.")


if __name__ == "__main__":
    run(main)
