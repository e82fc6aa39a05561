"""Remove pairs that leak the human-written eval set.

    dvc repro decontaminate     # or: python stages/decontaminate.py
"""

from collections import Counter

from faqforge.core.config import load_params
from faqforge.core.io import read_evalset, read_jsonl, write_json, write_jsonl
from faqforge.core.stage import run
from faqforge.refinement.decontaminate import contamination

EVALSET = "data/eval/evalset.json"


def main():
    p = load_params(sections=["decontaminate"])["decontaminate"]
    evalset = read_evalset(EVALSET)
    pairs = read_jsonl("data/qa_deduped.jsonl")
    clean, dropped = contamination(pairs, evalset, **p)
    write_jsonl("data/qa_clean.jsonl", clean)
    write_jsonl("data/decontaminate_dropped.jsonl", dropped)
    evidence = Counter(d["reason"].removeprefix("eval leak: ") for d in dropped)
    write_json("metrics/decontaminate.json", {"pairs_in": len(pairs), "kept": len(clean),
                                              "dropped": len(dropped), "dropped_by_evidence": dict(evidence),
                                              "eval_items_hit": len({d["eval_index"] for d in dropped})})
    print(f"decontaminate: kept {len(clean)} of {len(pairs)} pairs; dropped {len(dropped)} "
          f"too close to {EVALSET} (see data/decontaminate_dropped.jsonl)")


if __name__ == "__main__":
    run(main)
