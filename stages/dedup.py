"""Remove near-duplicate pairs: each dropped pair duplicates the pair kept in its place.

    dvc repro dedup             # or: python stages/dedup.py

Streams data/qa_curated.jsonl: memory holds each pair's question, not the pair.
"""

from faqforge.core.config import load_config
from faqforge.core.stage import finish, run
from faqforge.refinement.dedup import dedup_stream


def main():
    kept, dropped, counts = dedup_stream("data/qa_curated.jsonl", load_config(sections=["dedup"])["dedup"])
    finish("dedup", counts.pop("pairs_in"), {"data/qa_deduped.jsonl": kept}, dropped, counts)


if __name__ == "__main__":
    run(main)
