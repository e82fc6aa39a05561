"""The data report's figures: the funnel, length distributions, pairs per
document, stable samples of kept and dropped pairs."""

import hashlib
from collections import Counter

LENGTH_BIN_WORDS = 5
SAMPLE_SIZE = 5
TOP_REASONS = 3


def words(text):
    return len(text.split())


def stable_sample(records, k, salt=""):
    """k records picked by a hash of their id: the same data gives the same sample."""
    def key(record):
        name = record.get("id") or record.get("chunk_id") or record.get("doc")
        return hashlib.sha256(f"{salt}:{name}".encode()).digest()
    return sorted(records, key=key)[:k]


def one_per_reason(dropped, k=SAMPLE_SIZE):
    """A dropped record for each of the k most common reasons."""
    by_reason = {}
    for d in dropped:
        by_reason.setdefault(d.get("reason") or d.get("why", "?"), []).append(d)
    ranked = sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0]))[:k]
    return [stable_sample(records, 1, reason)[0] for reason, records in ranked]


def top_reasons(dropped, k=TOP_REASONS):
    """'reason (count)' for the k most common reasons, most common first."""
    counts = Counter(d.get("reason") or d.get("why", "?") for d in dropped)
    return "; ".join(f"{reason} ({n})" for reason, n in counts.most_common(k))


def funnel(steps):
    """Rows of the funnel table. `steps`: (stage, what goes in, n in, what comes out,
    n out, dropped records)."""
    return [{"stage": stage, "in": f"{n_in} {what_in}", "out": f"{n_out} {what_out}",
             "dropped": len(dropped), "top reasons": top_reasons(dropped) or "-"}
            for stage, what_in, n_in, what_out, n_out, dropped in steps]


def percentiles(values, points=(0, 10, 50, 90, 100)):
    """Nearest-rank percentiles of a list of numbers; zeros for an empty list."""
    ordered = sorted(values)
    if not ordered:
        return {p: 0 for p in points}
    return {p: ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] for p in points}


def length_histogram(questions, answers, width=LENGTH_BIN_WORDS):
    """Rows {"words": bin start, "questions": n, "answers": n} covering every bin
    from 0 to the longest text, empty bins included, so runs line up in plots."""
    q_bins = Counter(words(t) // width * width for t in questions)
    a_bins = Counter(words(t) // width * width for t in answers)
    top = max([*q_bins, *a_bins], default=0)
    return [{"words": start, "questions": q_bins.get(start, 0), "answers": a_bins.get(start, 0)}
            for start in range(0, top + width, width)]


COUNTED = ("chunks", "raw", "curated", "train", "val")


def per_document(ingest_report, **records):
    """Rows per source document, documents that yielded nothing first: its
    ingest status and how many records of each kind in `records` (chunks=...,
    raw=..., curated=..., train=..., val=...) came from it."""
    counts = {row["doc"]: {"doc": row["doc"], "status": row["status"], **dict.fromkeys(COUNTED, 0),
                           **({"notes": row["notes"]} if row.get("notes") else {})}
              for row in ingest_report}
    for name, items in records.items():
        for record in items:
            row = counts.setdefault(record["doc"], {"doc": record["doc"], "status": "ingested",
                                                   **dict.fromkeys(COUNTED, 0)})
            row[name] += 1
    return sorted(counts.values(), key=lambda r: (yielded(r) > 0, r["train"], r["doc"]))


def yielded(row):
    """Pairs a document gave to training or validation."""
    return row["train"] + row["val"]
