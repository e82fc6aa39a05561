"""reports/data.md as Markdown: the funnel with the top reasons for every drop,
the length distributions, pairs per document, the hygiene and source-mix
sections, and the samples of kept and dropped pairs."""

from collections import Counter

from faqforge.core.records import pair_prompt, pair_response
from faqforge.evaluation.data_stats import COUNTED, LENGTH_BIN_WORDS, yielded


def table(rows, columns):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]).replace("|", "\\|").replace("\n", " ") for c in columns) + " |")
    return "\n".join(lines)


def bar(n, most, width=30):
    return "#" * (round(width * n / most) if most else 0)


def clip(text, limit=160):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def render_hygiene(pii_rows, language_drops, keep, limit=40):
    """The personal data / secrets and language sections. `pii_rows`: {stage:
    rows of data/<stage>_pii.jsonl} (locations and kinds, never the values; any
    iterable, read once); `language_drops`: {stage: Counter of the language codes
    of the records dropped for their language}."""
    counted, located, total = {}, [], 0
    for stage, rows in pii_rows.items():
        counted[stage] = Counter()
        for r in rows:
            counted[stage][r["kind"], r["action"]] += 1
            total += 1
            if len(located) < limit:
                located.append((stage, r))
    kinds = sorted({kind for counts in counted.values() for kind, _ in counts})
    out = ["## Personal data and secrets", ""]
    if not kinds:
        out += ["None found (hygiene.pii in params.yaml says what is looked for).", ""]
    else:
        counts = [{"kind": kind, **{f"{stage} ({action})": counted[stage][kind, action]
                                    for stage in counted for action in sorted({a for _, a in counted[stage]})}}
                  for kind in kinds]
        out += [table(counts, list(counts[0])), "",
                "Where (the values themselves are never written; every row is in data/<stage>_pii.jsonl):", ""]
        for stage, r in located:
            where = (f"`{r['doc']}`, section \"{r.get('section') or ''}\", chunk {r.get('index')}" if stage == "ingest"
                     else f"pair `{r['id']}` of `{r['doc']}`, {r['field']}")
            out.append(f"- {stage}: {where}, characters {r['start']}-{r['end']}: **{r['kind']}**, {r['action']}")
        if total > limit:
            out.append(f"- ... and {total - limit} more")
        out.append("")
    out += ["## Languages", "", f"Kept: {', '.join(keep) if isinstance(keep, list) else keep}."]
    for stage, by_code in language_drops.items():
        unit = "chunks" if stage == "ingest" else "pairs"
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(by_code.items()))
        out.append(f"- {stage}: {sum(by_code.values())} {unit} dropped" + (f" ({codes})" if by_code else ""))
    return "\n".join(out) + "\n"


def render_mix(table_by_source, val_by_source):
    """The source mix section: training pairs per source before and after split.mix."""
    before = sum(r["pairs_before"] for r in table_by_source.values()) or 1
    after = sum(r["pairs_after"] for r in table_by_source.values()) or 1
    rows = [{"source": source, "train before": r["pairs_before"], "share before": f"{r['pairs_before'] / before:.0%}",
             "weight": f"{r['weight']:g}", "max_pairs": r["max_pairs"] if r["max_pairs"] is not None else "",
             "train after": r["pairs_after"], "share after": f"{r['pairs_after'] / after:.0%}",
             "val": val_by_source.get(source, 0)} for source, r in sorted(table_by_source.items())]
    return "\n".join(["## Source mix", "",
                      "Sources are the sub-folders of data/docs/ (`docs`: files directly in it); `split.mix` in "
                      "params.yaml re-weights the training pairs, validation keeps the natural mix.", "",
                      table(rows, list(rows[0]) if rows else ["source"]), ""])


def render_review(review):
    """The review section: what people decided (data/review.jsonl) and what came of it."""
    if not review:
        return ""
    rejected = review.get("rejected") or {}
    rows = [{"": "pairs with a decision", "count": review.get("reviewed", 0)},
            {"": "approved (edits, additions and rescues included)", "count": review.get("approved", 0)},
            {"": "rejected", "count": sum(rejected.values())},
            *({"": f"rejected: {reason}", "count": n} for reason, n in sorted(rejected.items())),
            {"": "edited", "count": review.get("edited", 0)},
            {"": "added by hand", "count": review.get("added", 0)},
            {"": "rescued from a drop", "count": review.get("rescued", 0)},
            {"": "training pairs nobody reviewed", "count": review.get("not_reviewed", 0)}]
    out = ["## Review", "", "Decisions people made in data/review.jsonl, as the split stage applied them.", "",
           table(rows, ["", "count"]), ""]
    if review.get("refused"):
        out += ["Rescues refused:", *(f"- `{r['pair_id']}`: {r['why']}" for r in review["refused"]), ""]
    if review.get("orphaned"):
        out += ["Decisions whose pair no longer exists (its document changed or was removed); review them again "
                "or leave them:", *(f"- `{o['pair_id']}`: {o['action']} by {o['reviewer']}, {o['time']}"
                                    for o in review["orphaned"]), ""]
    return "\n".join(out)


def render(funnel_rows, histogram, lengths, documents, kept_sample, dropped_samples, audit, sections=()):
    """The markdown of reports/data.md. `audit`: (pairs checked, pairs the
    independent eval-set check flags among them, the check in words); `sections`:
    more markdown sections, placed before the samples."""
    out = ["# Data report", "",
           "Written by `dvc repro report` from the pipeline's outputs (data/*.jsonl); "
           "the same numbers are in metrics/*.json and the distributions in plots/data_*.csv "
           "(`dvc plots diff` compares runs).", "", "## Funnel", "",
           table(funnel_rows, ["stage", "in", "out", "dropped", "top reasons"]), "",
           "Every dropped record is in data/<stage>_dropped.jsonl with `reason` and `why`.", "",
           "## Eval-set audit", "",
           f"An independent check ({audit[2]}), run over the {audit[0]} training and validation pairs, "
           f"flags **{len(audit[1])}**." + "".join(f"\n- `{d['id']}`: {clip(d['why'], 200)}" for d in audit[1]), "",
           "## Lengths of the training pairs (words)", "",
           table([{"": name, **{f"p{p}": v for p, v in lengths[name].items()}} for name in ("questions", "answers")],
                 ["", "p0", "p10", "p50", "p90", "p100"]), "", "```"]
    most = max([max(r["questions"], r["answers"]) for r in histogram], default=0)
    for r in histogram:
        label = f"{r['words']:>3}-{r['words'] + LENGTH_BIN_WORDS - 1:<3}"
        out.append(f"{label} q {r['questions']:>5} {bar(r['questions'], most):<30}  "
                   f"a {r['answers']:>5} {bar(r['answers'], most)}")
    out += ["```", "", "## Pairs per source document", ""]
    barren = [d for d in documents if yielded(d) == 0]
    if barren:
        out += [f"**{len(barren)} of {len(documents)} documents gave no training or validation pair:** "
                + ", ".join(f"`{d['doc']}` ({d['status']}, {d['chunks']} chunks, {d['raw']} raw pairs)"
                            for d in barren), ""]
    else:
        out += [f"Every one of the {len(documents)} documents gave pairs.", ""]
    out += [table([{**d, "doc": f"**{d['doc']}**" if yielded(d) == 0 else d["doc"]} for d in documents],
                  ["doc", "status", *COUNTED]), ""]
    noted = [d for d in documents if d.get("notes")]
    if noted:
        out += ["What the readers left out or could not interpret (`notes` in data/ingest_report.jsonl):", ""]
        out += [f"- `{d['doc']}`: " + "; ".join(clip(n, 160) for n in d["notes"][:5])
                + (f"; and {len(d['notes']) - 5} more" if len(d["notes"]) > 5 else "") for d in noted]
        out += [""]
    for section in sections:
        if section:
            out += [section.rstrip(), ""]
    out += ["## Sample of training pairs", ""]
    out += [f"- **Q:** {clip(pair_prompt(p))}  \n  **A:** {clip(pair_response(p))}  \n  ({p['doc']})"
            for p in kept_sample]
    out += ["", "## Sample of dropped records", ""]
    for stage, sample in dropped_samples.items():
        if not sample:
            continue
        out += [f"### {stage}", ""]
        for d in sample:
            what = (f"**Q:** {clip(pair_prompt(d))}  \n  **A:** {clip(pair_response(d))}"
                    if "question" in d or "instruction" in d
                    else f"chunk `{d.get('chunk_id', d.get('index'))}` of {d.get('doc')}")
            reason, why = d.get("reason"), clip(d.get("why", ""), 200)
            out.append(f"- {what}  \n  " + (f"*{reason}*: {why}" if reason and reason != d.get("why") else f"*{why}*"))
        out.append("")
    return "\n".join(out).rstrip() + "\n"
