"""Remove near-duplicate pairs: each dropped pair duplicates the pair kept in its place.

    dvc repro dedup             # or: python stages/dedup.py

Streams data/qa_curated.jsonl: memory holds each pair's question, not the pair.
"""

from faqforge.core.config import load_params
from faqforge.core.io import write_json
from faqforge.core.stage import run
from faqforge.refinement.dedup import dedup_file


def main():
    p = load_params(sections=["dedup"])["dedup"]
    counts = dedup_file("data/qa_curated.jsonl", "data/qa_deduped.jsonl", "data/dedup_dropped.jsonl",
                        p["scorer"], p["threshold"], p["answer_threshold"], p["prefer"])
    write_json("metrics/dedup.json", counts)
    print(f"dedup: kept {counts['kept']} of {counts['pairs_in']} pairs; dropped {counts['dropped']} duplicates "
          f"(see data/dedup_dropped.jsonl)")


if __name__ == "__main__":
    run(main)
