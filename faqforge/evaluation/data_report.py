"""The data report: where the pairs came from and where they were lost.

Built from the pipeline's own outputs (never from a second bookkeeping): the
funnel from documents to training pairs with the top reasons for every drop,
question and answer length distributions, pairs per source document with the
documents that yielded nothing called out, and a sample of kept and dropped
pairs, in reports/data.md; the distributions in plots/ for `dvc plots diff`.
"""

import csv
from collections import Counter

from faqforge.core.io import atomic_path, read_evalset, read_json, read_jsonl, write_text
from faqforge.core.records import pair_prompt, pair_response, prompt_field, response_field
from faqforge.core.review import REVIEW_FILE, read_decisions, review_state
from faqforge.evaluation.data_render import render, render_hygiene, render_mix, render_review
from faqforge.evaluation.data_stats import (
    COUNTED,
    SAMPLE_SIZE,
    funnel,
    length_histogram,
    one_per_reason,
    per_document,
    percentiles,
    stable_sample,
    words,
    yielded,
)
from faqforge.hygiene.language import LanguageFilter
from faqforge.refinement.decontaminate import AUDIT_ANSWER_CONTAINMENT, AUDIT_QUESTION_JACCARD, audit
from faqforge.training.split import source_of

STAGES = ("ingest", "generate", "curate", "dedup", "decontaminate", "augment", "split")


def write_csv(path, rows):
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)


def pairs_as_split_saw_them(augmented, pools):
    """{id: pair} of every pair a training record can come from: the pipeline's, the
    rescued ones, and people's own (data/review.jsonl), with the review's edits applied."""
    state = review_state(read_decisions(REVIEW_FILE))
    by_id = {p["id"]: p for p in [*pools, *augmented]}
    for pair_id, s in state.items():
        if s["added"]:
            by_id[pair_id] = {"id": pair_id, "doc": s["doc"] or REVIEW_FILE, "human": True}
        if pair_id in by_id and (s["question"] or s["answer"]):
            pair = by_id[pair_id]
            by_id[pair_id] = {**pair, prompt_field(pair): s["question"] or pair_prompt(pair),
                              response_field(pair): s["answer"] or pair_response(pair)}
    return by_id


def write_report(params):
    """reports/data.md and the plots of the data from the pipeline's outputs; returns its summary line."""
    ingest_report = read_jsonl("data/ingest_report.jsonl")
    chunks = read_jsonl("data/chunks.jsonl")
    stages = {"generate": "data/qa_raw.jsonl", "curate": "data/qa_curated.jsonl", "dedup": "data/qa_deduped.jsonl",
              "decontaminate": "data/qa_clean.jsonl", "augment": "data/qa_augmented.jsonl"}
    out = {stage: read_jsonl(path) for stage, path in stages.items()}
    dropped = {stage: read_jsonl(f"data/{stage}_dropped.jsonl") for stage in STAGES}
    by_id = pairs_as_split_saw_them(out["augment"], [*dropped["curate"], *dropped["dedup"]])
    # RAFT refusal examples (split.raft.refusal_share) and further draws of a pair (split.raft.draws)
    # reuse a pair's question: counted apart, not as pairs.
    records = {name: read_jsonl(f"data/{name}.jsonl") for name in ("train", "val")}
    train = [by_id[r.get("copy_of", r["id"])] for r in records["train"] if r.get("kind") != "refusal"
             and "draw" not in r]
    val = [by_id[r["id"]] for r in records["val"] if r.get("kind") != "refusal"]
    refusals = sum(r.get("kind") == "refusal" for r in records["train"])
    ingested = [r for r in ingest_report if r["status"] == "ingested"]
    not_ingested = [{**r, "reason": r["status"]} for r in ingest_report if r["status"] != "ingested"]
    paraphrases = len(out["augment"]) - len(out["decontaminate"])
    rows = funnel([
        ("ingest", "files", len(ingest_report), "chunks", len(chunks), not_ingested + dropped["ingest"]),
        ("generate", "chunks", len(chunks), "raw pairs", len(out["generate"]), dropped["generate"]),
        ("curate", "pairs", len(out["generate"]), "pairs", len(out["curate"]), dropped["curate"]),
        ("dedup", "pairs", len(out["curate"]), "pairs", len(out["dedup"]), dropped["dedup"]),
        ("decontaminate", "pairs", len(out["dedup"]), "pairs", len(out["decontaminate"]), dropped["decontaminate"]),
        ("augment", "pairs", len(out["decontaminate"]), f"pairs ({paraphrases} paraphrases)", len(out["augment"]),
         dropped["augment"]),
        ("split", "pairs", len(out["augment"]),
         f"train, {len(val)} val" + (f", {refusals} RAFT refusal examples besides" if refusals else ""), len(train),
         dropped["split"]),
    ])
    questions = [pair_prompt(p) for p in train]
    answers = [pair_response(p) for p in train]
    histogram = length_histogram(questions, answers)
    lengths = {"questions": percentiles([words(q) for q in questions]),
               "answers": percentiles([words(a) for a in answers])}
    documents = per_document(ingest_report, chunks=chunks, raw=out["generate"], curated=out["curate"], train=train,
                             val=val)
    flagged = audit(train + val, read_evalset("data/eval/evalset.json"))
    rule = (f"character trigrams of the lower-cased texts, every pair against every eval item: a question "
            f"with trigram Jaccard >= {AUDIT_QUESTION_JACCARD} against an eval question, or an answer holding "
            f">= {AUDIT_ANSWER_CONTAINMENT:.0%} of an eval answer's trigrams; independent of the decontaminate "
            f"stage's rule")
    split = {"mix": {}, **read_json("metrics/split.json")}
    write_text("reports/data.md", render(
        rows, histogram, lengths, documents, stable_sample(train, SAMPLE_SIZE),
        {**{s: one_per_reason(x) for s, x in dropped.items()},
         "ingest": one_per_reason(not_ingested + dropped["ingest"])},
        (len(train) + len(val), flagged, rule),
        sections=[render_mix(split["mix"], Counter(source_of(p["doc"]) for p in val)),
                  render_review(split.get("review")),
                  render_hygiene({s: read_jsonl(f"data/{s}_pii.jsonl") for s in ("ingest", "curate")},
                                 {s: [x for x in dropped[s] if x["reason"] == "language"]
                                  for s in ("ingest", "curate")},
                                 LanguageFilter(params["hygiene"], params["generate"]["language"]).languages_kept())]))
    write_csv("plots/data_funnel.csv", [{"stage": r["stage"], "pairs_out": int(r["out"].split()[0]),
                                         "dropped": r["dropped"]} for r in rows])
    write_csv("plots/data_lengths.csv", histogram)
    write_csv("plots/data_per_doc.csv", [{k: d[k] for k in ("doc", *COUNTED)} for d in documents])
    barren = sum(yielded(d) == 0 for d in documents)
    return (f"reports/data.md ({len(ingested)} documents, {len(chunks)} chunks -> {len(train)} train pairs; "
            f"{barren} documents gave no pair; {len(flagged)} pairs flagged by the eval-set audit)")
