"""The data report's figures: the funnel, length distributions, pairs per
document, stable samples of kept and dropped pairs."""

import heapq
from collections import Counter

from faqforge.core.records import stable_unit

LENGTH_BIN_WORDS = 5
SAMPLE_SIZE = 5
TOP_REASONS = 3


def words(text):
    return len(text.split())


def sample_key(record, salt=""):
    name = record.get("id") or record.get("chunk_id") or record.get("doc")
    return stable_unit(salt, name)


def stable_sample(records, k, salt=""):
    """k records picked by a hash of their id: the same data gives the same sample.
    Reads any iterable once, holding k records."""
    return heapq.nsmallest(k, records, key=lambda record: sample_key(record, salt))


class DropTally:
    """What the report keeps of a stage's dropped records, read once in any number:
    how many, how many per reason, and per reason the record stable_sample would pick."""

    def __init__(self, records=()):
        self.count, self.reasons, self.best = 0, Counter(), {}
        for record in records:
            self.add(record)

    def add(self, record):
        reason = record.get("reason") or record.get("why", "?")
        self.count += 1
        self.reasons[reason] += 1
        key = sample_key(record, reason)
        if reason not in self.best or key < self.best[reason][0]:
            self.best[reason] = (key, record)

    def samples(self, k=SAMPLE_SIZE):
        """A dropped record for each of the k most common reasons."""
        ranked = sorted(self.reasons.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [self.best[reason][1] for reason, _ in ranked]

    def top(self, k=TOP_REASONS):
        """'reason (count)' for the k most common reasons, most common first."""
        return "; ".join(f"{reason} ({n})" for reason, n in self.reasons.most_common(k))


def one_per_reason(dropped, k=SAMPLE_SIZE):
    """A dropped record for each of the k most common reasons."""
    return DropTally(dropped).samples(k)


def top_reasons(dropped, k=TOP_REASONS):
    """'reason (count)' for the k most common reasons, most common first."""
    return DropTally(dropped).top(k)


def funnel(steps):
    """Rows of the funnel table (and `n_out`, the count for plots). `steps`: (stage,
    what goes in, n in, what comes out, n out, dropped records or their DropTally)."""
    rows = []
    for stage, what_in, n_in, what_out, n_out, dropped in steps:
        tally = dropped if isinstance(dropped, DropTally) else DropTally(dropped)
        rows.append({"stage": stage, "in": f"{n_in} {what_in}", "out": f"{n_out} {what_out}",
                     "dropped": tally.count, "top reasons": tally.top() or "-", "n_out": n_out})
    return rows


def percentiles(values, points=(0, 10, 50, 90, 100)):
    """Nearest-rank percentiles of a list of numbers; zeros for an empty list."""
    return percentiles_of(Counter(values), points)


def percentiles_of(counts, points=(0, 10, 50, 90, 100)):
    """percentiles() of the numbers a Counter holds (value -> how often), read in one pass."""
    n = sum(counts.values())
    if not n:
        return {p: 0 for p in points}
    ordered = sorted(counts.items())
    found = {}
    for p in points:
        rank, seen = min(n - 1, round(p / 100 * (n - 1))), 0
        for value, times in ordered:
            seen += times
            if seen > rank:
                found[p] = value
                break
    return found


def length_histogram(questions, answers, width=LENGTH_BIN_WORDS):
    """Rows {"words": bin start, "questions": n, "answers": n} covering every bin
    from 0 to the longest text, empty bins included, so runs line up in plots."""
    return histogram_of(Counter(map(words, questions)), Counter(map(words, answers)), width)


def histogram_of(question_words, answer_words, width=LENGTH_BIN_WORDS):
    """length_histogram() from Counters of word counts (words -> texts)."""
    q_bins, a_bins = Counter(), Counter()
    for counts, bins in ((question_words, q_bins), (answer_words, a_bins)):
        for n, times in counts.items():
            bins[n // width * width] += times
    top = max([*q_bins, *a_bins], default=0)
    return [{"words": start, "questions": q_bins.get(start, 0), "answers": a_bins.get(start, 0)}
            for start in range(0, top + width, width)]


COUNTED = ("chunks", "raw", "curated", "train", "val")


def per_document(ingest_report, **records):
    """Rows per source document, documents that yielded nothing first: its
    ingest status and how many records of each kind in `records` (chunks=...,
    raw=..., curated=..., train=..., val=...; records, or a Counter of them by
    document) came from it."""
    counts = {row["doc"]: {"doc": row["doc"], "status": row["status"], **dict.fromkeys(COUNTED, 0),
                           **({"notes": row["notes"]} if row.get("notes") else {})}
              for row in ingest_report}
    for name, items in records.items():
        by_doc = items if isinstance(items, Counter) else Counter(record["doc"] for record in items)
        for doc, n in by_doc.items():
            row = counts.setdefault(doc, {"doc": doc, "status": "ingested", **dict.fromkeys(COUNTED, 0)})
            row[name] += n
    return sorted(counts.values(), key=lambda r: (yielded(r) > 0, r["train"], r["doc"]))


def yielded(row):
    """Pairs a document gave to training or validation."""
    return row["train"] + row["val"]
