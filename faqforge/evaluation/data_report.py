"""The data report: where the pairs came from and where they were lost.

Built from the pipeline's own outputs (never from a second bookkeeping): the
funnel from documents to training pairs with the top reasons for every drop,
question and answer length distributions, pairs per source document with the
documents that yielded nothing called out, and a sample of kept and dropped
pairs, in reports/data.md; the distributions in plots/ for `dvc plots diff`.
"""

import csv
from collections import Counter

from faqforge.core.io import atomic_path, iter_jsonl, read_evalset, read_json, read_jsonl, write_text
from faqforge.core.lookup import RecordLookup
from faqforge.core.records import pair_prompt, pair_response, prompt_field, response_field
from faqforge.dataset.decisions import REVIEW_FILE, read_decisions, review_state
from faqforge.dataset.split import source_of
from faqforge.evaluation.data_render import render, render_hygiene, render_mix, render_review
from faqforge.evaluation.data_stats import (
    COUNTED,
    SAMPLE_SIZE,
    DropTally,
    funnel,
    histogram_of,
    per_document,
    percentiles_of,
    stable_sample,
    words,
    yielded,
)
from faqforge.hygiene.language import LanguageFilter
from faqforge.refinement.decontaminate import AUDIT_ANSWER_CONTAINMENT, AUDIT_QUESTION_JACCARD, audit

STAGES = ("ingest", "generate", "curate", "dedup", "decontaminate", "augment", "split")
AUDIT_BATCH = 10_000   # pairs checked against the eval set together


def write_csv(path, rows):
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)


class PairsAsSplitSawThem:
    """Every pair a training record can come from, by id: the pipeline's, the
    rescued ones, and people's own (data/review.jsonl), with the review's edits
    applied; on disk (core.lookup), read once from the files."""

    def __init__(self, augmented, pools):
        self.state = review_state(read_decisions(REVIEW_FILE))
        self.pairs = RecordLookup([*pools, augmented], "id")   # the augmented pairs win over the pools

    def __getitem__(self, pair_id):
        s = self.state.get(pair_id)
        if s and s["added"]:
            pair = {"id": pair_id, "doc": s["doc"] or REVIEW_FILE, "human": True}
        else:
            pair = self.pairs[pair_id]
        if s and (s["question"] or s["answer"]):
            pair = {**pair, prompt_field(pair): s["question"] or pair_prompt(pair),
                    response_field(pair): s["answer"] or pair_response(pair)}
        return pair

    def close(self):
        self.pairs.close()


def _count(path, by_doc=None):
    """Records in a JSON Lines file, read once; with a Counter, counted by document too."""
    n = 0
    for record in iter_jsonl(path):
        n += 1
        if by_doc is not None:
            by_doc[record["doc"]] += 1
    return n


def write_report(hygiene, language):
    """reports/data.md and the plots of the data from the pipeline's outputs, each
    file read once and nothing held in proportion to it; returns its summary line.
    `hygiene` (the section) and `language` (generate.language) say which languages were kept."""
    ingest_report = read_jsonl("data/ingest_report.jsonl")   # a row per file
    docs = {name: Counter() for name in COUNTED}
    n = {"chunks": _count("data/chunks.jsonl", docs["chunks"]), "generate": _count("data/qa_raw.jsonl", docs["raw"]),
         "curate": _count("data/qa_curated.jsonl", docs["curated"]), "dedup": _count("data/qa_deduped.jsonl"),
         "decontaminate": _count("data/qa_clean.jsonl"), "augment": _count("data/qa_augmented.jsonl")}
    dropped, languages = {stage: DropTally() for stage in STAGES}, {"ingest": Counter(), "curate": Counter()}
    ingested = [r for r in ingest_report if r["status"] == "ingested"]
    not_ingested = DropTally({**r, "reason": r["status"]} for r in ingest_report if r["status"] != "ingested")
    for stage in STAGES:
        for record in iter_jsonl(f"data/{stage}_dropped.jsonl"):
            dropped[stage].add(record)
            if stage == "ingest":
                not_ingested.add(record)   # the funnel's ingest row: files not read, then chunks dropped
            if stage in languages and record["reason"] == "language":
                languages[stage][record["language"]] += 1
    # RAFT refusal examples (split.raft.refusal_share) and further draws of a pair (split.raft.draws)
    # reuse a pair's question: counted apart, not as pairs.
    by_id = PairsAsSplitSawThem("data/qa_augmented.jsonl", ["data/curate_dropped.jsonl", "data/dedup_dropped.jsonl"])
    lengths = {"questions": Counter(), "answers": Counter()}
    flagged, batch, evalset, kept = [], [], read_evalset("data/eval/evalset.json"), {"train": 0, "val": 0}
    val_sources, refusals = Counter(), 0

    def pairs(name):
        nonlocal refusals
        for r in iter_jsonl(f"data/{name}.jsonl"):
            if r.get("kind") == "refusal":
                refusals += name == "train"
                continue
            if name == "train" and "draw" in r:
                continue
            pair = by_id[r.get("copy_of", r["id"]) if name == "train" else r["id"]]
            kept[name] += 1
            docs[name][pair["doc"]] += 1
            if name == "train":
                lengths["questions"][words(pair_prompt(pair))] += 1
                lengths["answers"][words(pair_response(pair))] += 1
            else:
                val_sources[source_of(pair["doc"])] += 1
            batch.append(pair)
            if len(batch) == AUDIT_BATCH:
                flagged.extend(audit(batch, evalset))
                batch.clear()
            yield pair

    try:
        train_sample = stable_sample(pairs("train"), SAMPLE_SIZE)
        for _ in pairs("val"):
            pass
    finally:
        by_id.close()
    flagged.extend(audit(batch, evalset) if batch else [])
    paraphrases = n["augment"] - n["decontaminate"]
    rows = funnel([
        ("ingest", "files", len(ingest_report), "chunks", n["chunks"], not_ingested),
        ("generate", "chunks", n["chunks"], "raw pairs", n["generate"], dropped["generate"]),
        ("curate", "pairs", n["generate"], "pairs", n["curate"], dropped["curate"]),
        ("dedup", "pairs", n["curate"], "pairs", n["dedup"], dropped["dedup"]),
        ("decontaminate", "pairs", n["dedup"], "pairs", n["decontaminate"], dropped["decontaminate"]),
        ("augment", "pairs", n["decontaminate"], f"pairs ({paraphrases} paraphrases)", n["augment"],
         dropped["augment"]),
        ("split", "pairs", n["augment"],
         f"train, {kept['val']} val" + (f", {refusals} RAFT refusal examples besides" if refusals else ""),
         kept["train"], dropped["split"]),
    ])
    histogram = histogram_of(lengths["questions"], lengths["answers"])
    documents = per_document(ingest_report, **docs)
    rule = (f"character trigrams of the lower-cased texts, every pair against every eval item: a question "
            f"with trigram Jaccard >= {AUDIT_QUESTION_JACCARD} against an eval question, or an answer holding "
            f">= {AUDIT_ANSWER_CONTAINMENT:.0%} of an eval answer's trigrams; independent of the decontaminate "
            f"stage's rule")
    split = {"mix": {}, **read_json("metrics/split.json")}
    write_text("reports/data.md", render(
        rows, histogram, {name: percentiles_of(counts) for name, counts in lengths.items()}, documents, train_sample,
        {**{s: x.samples() for s, x in dropped.items()}, "ingest": not_ingested.samples()},
        (kept["train"] + kept["val"], flagged, rule),
        sections=[render_mix(split["mix"], val_sources),
                  render_review(split.get("review")),
                  render_hygiene({s: iter_jsonl(f"data/{s}_pii.jsonl") for s in ("ingest", "curate")}, languages,
                                 LanguageFilter(hygiene, language).languages_kept())]))
    write_csv("plots/data_funnel.csv", [{"stage": r["stage"], "pairs_out": r["n_out"],
                                         "dropped": r["dropped"]} for r in rows])
    write_csv("plots/data_lengths.csv", histogram)
    write_csv("plots/data_per_doc.csv", [{k: d[k] for k in ("doc", *COUNTED)} for d in documents])
    barren = sum(yielded(d) == 0 for d in documents)
    return (f"reports/data.md ({len(ingested)} documents, {n['chunks']} chunks -> {kept['train']} train pairs; "
            f"{barren} documents gave no pair; {len(flagged)} pairs flagged by the eval-set audit)")
