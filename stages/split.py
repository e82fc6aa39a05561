"""Deterministic train/val split by group, in chat `messages` format.

    dvc repro split             # or: python stages/split.py

First the review decisions of data/review.jsonl apply (faqforge.dataset.review:
rejected pairs leave, edits, people's own and rescued pairs join, checked
against the eval set). Then split.mix re-weights the training pairs by source (sub-folders of
data/docs/); validation keeps the natural mix. Pairs the mix leaves out are in
data/split_dropped.jsonl. With split.context raft (the default), every record
also shows the passages retrieved from data/index/ (faqforge.dataset.raft.raft_records);
closed_book gives the question alone.
"""

from collections import Counter
from pathlib import Path

from faqforge.core.config import load_config
from faqforge.core.io import read_evalset, read_jsonl
from faqforge.core.stage import finish, run
from faqforge.dataset.decisions import REVIEW_FILE, read_decisions, review_state
from faqforge.dataset.raft import attach_chunks, raft_records
from faqforge.dataset.review import apply_review
from faqforge.dataset.split import mix_sources, split_key, split_pairs, to_messages

POOLS = ("data/curate_dropped.jsonl", "data/dedup_dropped.jsonl", "data/decontaminate_dropped.jsonl")


def main():
    config = load_config(sections=["split", "review", "decontaminate", "dedup"])
    p = config["split"]
    pairs_in = read_jsonl("data/qa_augmented.jsonl")
    pools = [record for path in POOLS if Path(path).exists() for record in read_jsonl(path)]
    pairs, reviewed_out, review = apply_review(
        pairs_in, review_state(read_decisions(REVIEW_FILE)), pools, lambda: read_evalset("data/eval/evalset.json"),
        config["decontaminate"], config["dedup"], config["review"].require)
    train, val = split_pairs(pairs, p.val_fraction, p.seed, p.by)
    train, removed, mix = mix_sources(train, p.mix, p.seed, p.by)
    removed = reviewed_out + removed
    context = p.context
    if context == "raft":
        from faqforge.documents.retrieval import Retriever
        retriever = Retriever()
        train, val = attach_chunks(train, retriever), attach_chunks(val, retriever)  # people's own pairs
        train_records = raft_records(train, retriever, p.system_prompt, p.raft, p.seed, p.raft.draws)
        val_records = raft_records(val, retriever, p.system_prompt, p.raft, p.seed)
    else:
        train_records = [to_messages(x, p.system_prompt) for x in train]
        val_records = [to_messages(x, p.system_prompt) for x in val]
    metrics = {"train": len(train), "val": len(val), "by": p.by,
               "train_groups": len({split_key(x, p.by) for x in train}),
               "val_groups": len({split_key(x, p.by) for x in val}), "mix": mix, "context": context,
               "review": review}
    if context == "raft":
        metrics["raft"] = {"train_records": len(train_records), "val_records": len(val_records),
                           "train_kinds": dict(Counter(r["kind"] for r in train_records)),
                           "val_kinds": dict(Counter(r["kind"] for r in val_records))}
    finish("split", len(pairs_in), {"data/train.jsonl": train_records, "data/val.jsonl": val_records}, removed, metrics,
           summary=f"{len(train)} train, {len(val)} val (by {p.by}, {context}"
                   + (f": {len(train_records)} train records" if context == "raft" else "") + ")")


if __name__ == "__main__":
    run(main)
