"""Self-curation: keep only pairs that pass the rules, are grounded in their
chunk and, when the judge is on, that the teacher judges good.

    dvc repro curate            # or: python stages/curate.py

Rejected pairs go to data/curate_dropped.jsonl with the reason; with
generate.answer_style quoted, so does a pair whose quote is not in its chunk. Each pair first
goes through hygiene (params: hygiene): personal data and secrets the teacher
wrote are redacted or the pair dropped, every action located in
data/curate_pii.jsonl; a pair in a language not kept is dropped.
"""

from faqforge.core.config import load_params
from faqforge.core.io import read_jsonl, write_jsonl
from faqforge.core.stage import finish, run
from faqforge.hygiene.check import Hygiene
from faqforge.synthesis.curate import check_pairs, judge_pairs
from faqforge.teacher.client import Teacher


def main():
    params = load_params(sections=["curate", "hygiene", "generate", "teacher"])
    p = params["curate"]
    pairs = read_jsonl("data/qa_raw.jsonl")
    chunk_text = {c["chunk_id"]: c["text"] for c in read_jsonl("data/chunks.jsonl")}
    hygiene = Hygiene(params)
    kept, removed, pii_rows = check_pairs(pairs, chunk_text, hygiene, p)
    teacher = Teacher(params["teacher"], cache_dir="cache/llm/curate")
    if p["judge"]["enabled"] and kept:
        kept, judged_out = judge_pairs(teacher, kept, chunk_text, p["judge"])
        removed += judged_out
    write_jsonl("data/curate_pii.jsonl", pii_rows)
    with_pair = len({x["chunk_id"] for x in kept})
    finish("curate", len(pairs), {"data/qa_curated.jsonl": kept}, removed,
           {"chunks": len(chunk_text), "chunks_with_kept_pair": with_pair,
            "chunk_yield": round(with_pair / max(len(chunk_text), 1), 3), **hygiene.metrics()},
           teacher, p["max_error_rate"])


if __name__ == "__main__":
    run(main)
