"""Remove pairs that leak the human-written eval set.

    dvc repro decontaminate     # or: python stages/decontaminate.py
"""

from faqforge.core.config import load_params
from faqforge.core.io import read_evalset, read_jsonl
from faqforge.core.stage import finish, run
from faqforge.refinement.decontaminate import contamination

EVALSET = "data/eval/evalset.json"


def main():
    p = load_params(sections=["decontaminate"])["decontaminate"]
    evalset = read_evalset(EVALSET)
    pairs = read_jsonl("data/qa_deduped.jsonl")
    clean, dropped = contamination(pairs, evalset, **p)
    finish("decontaminate", len(pairs), {"data/qa_clean.jsonl": clean}, dropped,
           {"eval_items_hit": len({d["eval_index"] for d in dropped})},
           summary=f"kept {len(clean)} of {len(pairs)} pairs, the others too close to {EVALSET}")

if __name__ == "__main__":
    run(main)
