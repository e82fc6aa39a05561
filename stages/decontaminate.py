"""Remove pairs that leak the human-written eval set.

    dvc repro decontaminate     # or: python stages/decontaminate.py
"""

import itertools

from faqforge.core.config import load_config
from faqforge.core.io import iter_jsonl, read_evalset
from faqforge.core.stage import Outputs, finish, run
from faqforge.refinement.decontaminate import contamination

EVALSET = "data/eval/evalset.json"
BATCH = 10_000   # pairs checked against the eval set together: memory holds one batch


def main():
    rule = load_config(sections=["decontaminate"])["decontaminate"]
    evalset = read_evalset(EVALSET)
    pairs, hit = iter_jsonl("data/qa_deduped.jsonl"), set()
    n = 0
    with Outputs("decontaminate", "data/qa_clean.jsonl") as out:
        while batch := list(itertools.islice(pairs, BATCH)):
            n += len(batch)
            clean, dropped = contamination(batch, evalset, rule)
            for pair in clean:
                out.keep(pair)
            for record in dropped:
                out.drop(record)
                hit.add(record["eval_index"])
    finish("decontaminate", n, out.kept, out.reasons, {"eval_items_hit": len(hit)},
           summary=f"kept {out.kept} of {n} pairs, the others too close to {EVALSET}")


if __name__ == "__main__":
    run(main)
