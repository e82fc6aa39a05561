"""The retrieval index over the chunks: data/index/ (faqforge.documents.retrieval).

    dvc repro index             # or: python stages/index.py

Rebuilt only when data/chunks.jsonl or the index params change. Writes the
passages with their provenance, the index itself (bm25s files, and with dense
retrieval the passage embeddings) and index.json, which records how it was
built; metrics/index.json has the counts and the build time.
"""

import time

from faqforge.core.config import load_config
from faqforge.core.io import read_jsonl, write_json
from faqforge.core.stage import run
from faqforge.documents.retrieval import build_index


def main():
    params = load_config(sections=["index"])["index"]
    chunks = read_jsonl("data/chunks.jsonl")
    start = time.monotonic()
    manifest = build_index(chunks, params)
    seconds = time.monotonic() - start
    write_json("metrics/index.json", {"method": manifest["method"], "chunks": manifest["chunks"],
                                      "passages": manifest["passages"],
                                      "passage_words": manifest["passage_words"], "seconds": round(seconds, 2)})
    print(f"index: {manifest['chunks']} chunks -> {manifest['passages']} passages ({manifest['method']}, "
          f"{seconds:.1f} s)")


if __name__ == "__main__":
    run(main)
