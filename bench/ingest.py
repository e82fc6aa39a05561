"""Ingest throughput and memory on a generated 500-page PDF and a 20 MB Markdown tree.

    .venv/bin/python -m bench.ingest

Baselines, measured in the same run:
  PDF       plain pypdf `extract_text()` over every page: the floor ingest cannot beat by much,
            since it does that and then cleans and chunks.
  Markdown  reading every file and counting the tokens of each paragraph once with the same
            tokenizer: the floor for any token-budgeted chunker.
faqforge's figure is the whole per-document work of the stage: read, clean,
strip headers/footers, chunk with the real tokenizer (models/base, or the embedded
model's), hash. Peak memory is traced (tracemalloc) in a separate, untimed pass.
"""

import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from faqforge.documents.chunking import TokenCounter, chunk_blocks, find_documents
from faqforge.documents.readers import read_document
from faqforge.models.checkpoints import checkpoint_source, load_tokenizer
from tests.support.pdf_factory import make_pdf

WORDS = ("model adapter chunk teacher student pipeline metric remote cache token budget prompt "
         "evaluate train split curate document section page answer question").split()


def sentence(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."


def build_corpus(root, rng):
    pdf = root / "manual.pdf"
    pdf.write_bytes(make_pdf([["ACME Manual"] + [sentence(rng) for _ in range(45)] + [f"Page {n}"]
                              for n in range(1, 501)]))
    tree = root / "md"
    size = 0
    for i in range(250):
        folder = tree / f"part{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for h in range(20):
            lines.append(f"## Topic {i}.{h}\n\n")
            lines.extend(" ".join(sentence(rng) for _ in range(6)) + "\n\n" for _ in range(8))
        text = "".join(lines)
        (folder / f"page{i}.md").write_text(text)
        size += len(text.encode())
    return pdf, tree, size


def ingest_files(paths, count):
    chunks = 0
    for path in paths:
        _, blocks, _ = read_document(path)
        chunks += sum(1 for _ in chunk_blocks(blocks, count, 320, 48, 24))
    return chunks


def pypdf_pages(path):
    from pypdf import PdfReader
    return sum(len(page.extract_text() or "") > 0 for page in PdfReader(path).pages)


def tokenize_paragraphs(paths, tokenizer):
    return sum(len(tokenizer(par, add_special_tokens=False).input_ids)
               for p in paths for par in p.read_text(encoding="utf-8").split("\n\n"))


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def peak_mib(fn, *args):
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main():
    spec = "models/base" if checkpoint_source("models/base") else "embedded:smollm2-135m-instruct"
    count = TokenCounter(load_tokenizer(spec))
    with tempfile.TemporaryDirectory() as tmp:
        pdf, tree, md_bytes = build_corpus(Path(tmp), random.Random(0))
        md_files, _ = find_documents(tree)
        mb = md_bytes / 2**20
        base_pdf, pages = timed(pypdf_pages, pdf)
        ours_pdf, pdf_chunks = timed(ingest_files, [pdf], count)
        base_md, _ = timed(tokenize_paragraphs, md_files, count.tokenizer)
        ours_md, md_chunks = timed(ingest_files, md_files, TokenCounter(count.tokenizer))
        print(f"PDF, {pages} pages ({pdf.stat().st_size / 2**20:.1f} MiB):")
        print(f"  pypdf extract_text loop (baseline): {pages / base_pdf:8.1f} pages/s")
        print(f"  faqforge ingest:                    {pages / ours_pdf:8.1f} pages/s  "
              f"({base_pdf / ours_pdf:.2f}x baseline speed, {pdf_chunks} chunks)")
        print(f"Markdown tree, {len(md_files)} files, {mb:.1f} MiB:")
        print(f"  tokenize each paragraph (baseline): {mb / base_md:8.1f} MB/s")
        print(f"  faqforge ingest:                    {mb / ours_md:8.1f} MB/s  "
              f"({base_md / ours_md:.2f}x baseline speed, {md_chunks} chunks)")
        print(f"Peak traced memory: PDF {peak_mib(ingest_files, [pdf], TokenCounter(count.tokenizer)):.0f} MiB "
              f"(pypdf alone {peak_mib(pypdf_pages, pdf):.0f} MiB); Markdown tree "
              f"{peak_mib(ingest_files, md_files, TokenCounter(count.tokenizer)):.0f} MiB "
              f"(baseline {peak_mib(tokenize_paragraphs, md_files, count.tokenizer):.0f} MiB)")


if __name__ == "__main__":
    main()
