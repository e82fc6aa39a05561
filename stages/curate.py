"""Self-curation: keep only pairs that pass the rules, are grounded in their
chunk and, when the judge is on, that the teacher judges good.

    dvc repro curate            # or: python stages/curate.py

Rejected pairs go to data/curate_dropped.jsonl with the reason; with
generate.answer_style quoted, so does a pair whose quote is not in its chunk. Each pair first
goes through hygiene (params: hygiene): personal data and secrets the teacher
wrote are redacted or the pair dropped, every action located in
data/curate_pii.jsonl; a pair in a language not kept is dropped.
"""

from faqforge.core.config import load_config
from faqforge.core.io import count_lines, iter_jsonl
from faqforge.core.lookup import RecordLookup
from faqforge.core.stage import Outputs, finish, run
from faqforge.hygiene.check import Hygiene
from faqforge.synthesis.curate import check_pair, judge_request, judged_out
from faqforge.teacher.client import Teacher


def main():
    config = load_config(sections=["curate", "hygiene", "generate", "teacher"])
    p = config["curate"]
    hygiene = Hygiene(config["hygiene"], config["generate"].language)
    teacher = Teacher(config["teacher"], cache_dir="cache/llm/curate")
    with RecordLookup("data/chunks.jsonl", "chunk_id") as chunks, \
            Outputs("curate", "data/qa_curated.jsonl", "data/curate_pii.jsonl") as out:

        def checked():
            for pair in iter_jsonl("data/qa_raw.jsonl"):
                text = chunks[pair["chunk_id"]]["text"]
                pair, pii_rows, removed = check_pair(pair, text, hygiene, p)
                for row in pii_rows:
                    out.write("data/curate_pii.jsonl", row)
                yield pair, text, removed

        judge = p.judge.enabled
        replies = teacher.map(checked(), lambda x: judge_request(x[0], x[1], p.judge) if judge and not x[2]
                              else None, "curate", total=count_lines("data/qa_raw.jsonl"))
        pairs = 0
        for (pair, _, removed), reply in replies:
            pairs += 1
            removed = removed or (reply and judged_out(pair, reply, p.judge))
            if removed:
                out.drop(removed)
            else:
                out.keep(pair)
                chunks.mark(pair["chunk_id"])
        with_pair, n_chunks = chunks.marked(), len(chunks)
    finish("curate", pairs, out.kept, out.reasons,
           {"chunks": n_chunks, "chunks_with_kept_pair": with_pair,
            "chunk_yield": round(with_pair / max(n_chunks, 1), 3), **hygiene.metrics()},
           teacher, p.max_error_rate)


if __name__ == "__main__":
    run(main)
