"""Self-curation: keep only pairs that pass the rules, are grounded in their
chunk and, when the judge is on, that the teacher judges good.

    dvc repro curate            # or: python stages/curate.py

Rejected pairs go to data/curate_dropped.jsonl with the reason; with
generate.answer_style quoted, so does a pair whose quote is not in its chunk. Each pair first
goes through hygiene (params: hygiene): personal data and secrets the teacher
wrote are redacted or the pair dropped, every action located in
data/curate_pii.jsonl; a pair in a language not kept is dropped.
"""

from collections import Counter

from faqforge.core.config import load_params
from faqforge.core.io import read_jsonl, write_json, write_jsonl
from faqforge.core.records import TEXT_FIELDS, dropped, grounding_score, pair_response
from faqforge.core.stage import check_error_rate, run, teacher_error_record
from faqforge.hygiene.check import Hygiene
from faqforge.synthesis.curate import judge_keeps, judge_messages, quote_violation, rule_violation
from faqforge.teacher.client import Teacher
from faqforge.teacher.verdict import parse_verdict


def main():
    params = load_params(sections=["curate", "hygiene", "generate", "teacher"])
    p = params["curate"]
    pairs = read_jsonl("data/qa_raw.jsonl")
    chunk_text = {c["chunk_id"]: c["text"] for c in read_jsonl("data/chunks.jsonl")}
    kept, removed, reasons, pii_rows = [], [], Counter(), []
    hygiene = Hygiene(params)
    for pair in pairs:
        fields, rows, reason, why = hygiene.check({k: pair[k] for k in TEXT_FIELDS if k in pair},
                                                  {"id": pair["id"], "chunk_id": pair["chunk_id"], "doc": pair["doc"]})
        pair.update(fields)
        pii_rows.extend(rows)
        if reason:
            removed.append(dropped(pair, "curate", reason, why))
            reasons[reason] += 1
            continue
        pair["grounding"] = round(grounding_score(pair_response(pair), chunk_text[pair["chunk_id"]]), 3)
        why = rule_violation(pair, p["rules"]) or quote_violation(pair, chunk_text[pair["chunk_id"]])
        if why:
            reason = why.split(" (")[0]  # the kind; the drop file has the details
        elif pair["grounding"] < p["min_grounding"]:
            why, reason = f"grounding {pair['grounding']} < min_grounding {p['min_grounding']}", "low grounding"
        if why:
            removed.append(dropped(pair, "curate", reason, why))
            reasons[reason] += 1
        else:
            kept.append(pair)
    teacher = Teacher(params["teacher"], cache_dir="cache/llm/curate")
    if p["judge"]["enabled"] and kept:
        replies = teacher.chat([judge_messages(x, chunk_text[x["chunk_id"]], p["judge"]) for x in kept],
                               desc="curate", max_tokens=p["judge"]["max_tokens"],
                               top_logprobs=p["judge"]["top_logprobs"])
        judged = []
        for pair, reply in zip(kept, replies):
            if reply.get("error"):
                removed.append(teacher_error_record(pair, "curate", reply))
                reasons["teacher error"] += 1
                continue
            pair["judge"] = parse_verdict(reply["text"], reply.get("logprobs"))
            if judge_keeps(pair["judge"], p["judge"]):
                judged.append(pair)
            else:
                verdict = pair["judge"]
                kind = {"YES": "judge score below min_score", "NO": "judge NO"}.get(verdict["result"],
                                                                                   "judge unparsed")
                if verdict["p_yes"] is not None and p["judge"]["min_p_yes"] is not None:
                    kind = "judge p_yes or score too low"
                removed.append(dropped(pair, "curate", kind, f"{kind} (verdict {verdict['result']}, score "
                                                             f"{verdict['score']}, p_yes {verdict['p_yes']})"))
                reasons[kind] += 1
        kept = judged
    write_jsonl("data/qa_curated.jsonl", kept)
    write_jsonl("data/curate_dropped.jsonl", removed)
    write_jsonl("data/curate_pii.jsonl", pii_rows)
    chunks_in = len(chunk_text)
    write_json("metrics/curate.json", {"pairs_in": len(pairs), "kept": len(kept), "dropped": len(removed),
                                       "chunks": chunks_in,
                                       "chunks_with_kept_pair": len({x["chunk_id"] for x in kept}),
                                       "chunk_yield": round(len({x["chunk_id"] for x in kept}) / max(chunks_in, 1), 3),
                                       "dropped_by_reason": dict(reasons.most_common()),
                                       **hygiene.metrics(),
                                       "teacher": teacher.stats})
    print(f"curate: kept {len(kept)} of {len(pairs)} pairs; dropped {len(removed)} "
          f"(see data/curate_dropped.jsonl)")
    check_error_rate("curate", teacher.stats, p["max_error_rate"])


if __name__ == "__main__":
    run(main)
