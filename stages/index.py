"""The retrieval index over the chunks: data/index/ (faqforge.documents.retrieval),
and the bot's abstention threshold chosen on it (faqforge.documents.evidence).

    dvc repro index             # or: python stages/index.py

Rebuilt only when data/chunks.jsonl, the encoder, the calibration questions or
the index params change. Writes the passages with their provenance, the index
itself (bm25s files, and with dense retrieval the passage embeddings) and
index.json, which records how it was built and the support below which the bot
refuses: chosen on data/eval/calibration.json, questions a person wrote, some
the documents do not answer, so that at most retriever.max_false_refusals of its
answerable ones are refused (the file holding [] instead: the bot never refuses).
metrics/index.json has the counts, the threshold with what it refuses of the
calibration questions, and the build time.
"""

import time
from pathlib import Path

from faqforge.core.config import load_config
from faqforge.core.io import read_evalset, read_json, read_jsonl, write_json
from faqforge.core.stage import run
from faqforge.documents.evidence import choose_abstention
from faqforge.documents.retrieval import INDEX, Retriever, build_index

CALIBRATION = Path("data/eval/calibration.json")


def main():
    config = load_config(sections=["index", "retriever", "split"])
    chunks = read_jsonl("data/chunks.jsonl")
    never = CALIBRATION.exists() and read_json(CALIBRATION) == []
    items = [] if never else read_evalset(CALIBRATION)   # missing or malformed: an error naming the file
    start = time.monotonic()
    manifest = build_index(chunks, config["index"])
    seconds = time.monotonic() - start
    abstention = {"calibration": None}
    if items:
        threshold, figures = choose_abstention(Retriever(INDEX), items, config["split"].raft.passages,
                                               config["retriever"].max_false_refusals)
        abstention = {"calibration": str(CALIBRATION), "threshold": threshold, **figures}
        write_json(Path(INDEX) / "index.json", {**manifest, "abstain_below": threshold, "abstention": abstention})
    write_json("metrics/index.json", {"method": manifest["method"], "chunks": manifest["chunks"],
                                      "passages": manifest["passages"], "passage_words": manifest["passage_words"],
                                      "abstention": abstention, "seconds": round(seconds, 2)})
    refuses = (f"; refuses below support {abstention['threshold']}" if abstention.get("threshold") is not None
               else "; never refuses")
    print(f"index: {manifest['chunks']} chunks -> {manifest['passages']} passages ({manifest['method']}, "
          f"{seconds:.1f} s){refuses}")


if __name__ == "__main__":
    run(main)
