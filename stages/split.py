"""Deterministic train/val split by group, in chat `messages` format.

    dvc repro split             # or: python stages/split.py

Then split.mix re-weights the training pairs by source (sub-folders of
data/docs/); validation keeps the natural mix. Pairs the mix leaves out are in
data/split_dropped.jsonl.
"""

from faqforge.io import load_params, read_jsonl, write_json, write_jsonl
from faqforge.split import mix_sources, split_key, split_pairs, to_messages
from faqforge.stage import run


def main():
    p = load_params(sections=["split"])["split"]
    pairs = read_jsonl("data/qa_augmented.jsonl")
    train, val = split_pairs(pairs, p["val_fraction"], p["seed"], p["by"])
    train, removed, mix = mix_sources(train, p.get("mix"), p["seed"], p["by"])
    write_jsonl("data/train.jsonl", (to_messages(x, p["system_prompt"]) for x in train))
    write_jsonl("data/split_dropped.jsonl", removed)
    write_jsonl("data/val.jsonl", (to_messages(x, p["system_prompt"]) for x in val))
    write_json("metrics/split.json", {"train": len(train), "val": len(val), "by": p["by"],
                                      "train_groups": len({split_key(x, p['by']) for x in train}),
                                      "val_groups": len({split_key(x, p['by']) for x in val}),
                                      "mix": mix})
    print(f"split: {len(train)} train, {len(val)} val (by {p['by']})")


if __name__ == "__main__":
    run(main)
