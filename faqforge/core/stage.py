"""What every stage script shares: clean error exits and the shared tail that writes
a stage's records, its drops and its metrics (and has the teacher check its errors)."""

import contextlib
import json
import sys
import time
from collections import Counter

from faqforge.core.io import PipelineError, atomic_path, write_json, write_jsonl


def run(main):
    """Run a stage's main(); a PipelineError ends it with its message, not a traceback."""
    start = time.monotonic()
    try:
        main()
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"  ({time.monotonic() - start:.1f} s)", file=sys.stderr)


class Outputs:
    """A streaming stage's files written record by record as the stage goes: the
    files it keeps records in and data/<stage>_dropped.jsonl. Each appears whole,
    in place of the previous one, only when the stage's block ends without an
    error (nothing half-written is ever read). `kept` counts the records kept,
    `reasons` the dropped ones by reason; `finish` takes both."""

    def __init__(self, stage, *paths):
        self.stage, self.paths = stage, paths
        self.kept, self.reasons = 0, Counter()

    def __enter__(self):
        self.stack = contextlib.ExitStack()
        self.files = {}
        for path in (*self.paths, f"data/{self.stage}_dropped.jsonl"):
            tmp = self.stack.enter_context(atomic_path(path))
            self.files[path] = self.stack.enter_context(open(tmp, "w", encoding="utf-8"))
        return self

    def __exit__(self, *exc):
        return self.stack.__exit__(*exc)

    def write(self, path, record):
        """Write a record to one of the stage's files (kept records: `keep`)."""
        self.files[path].write(json.dumps(record, ensure_ascii=False) + "\n")

    def keep(self, record, path=None):
        self.write(path or self.paths[0], record)
        self.kept += 1

    def drop(self, record):
        self.write(f"data/{self.stage}_dropped.jsonl", record)
        self.reasons[record.get("reason", "unknown")] += 1


def finish(stage, records_in, kept, dropped, details=None, teacher=None, max_error_rate=None, summary=None):
    """The end every record stage shares. Writes what the stage `kept`
    ({path: records}, streamed; or the count of records a stage that streams its
    output has written already), data/<stage>_dropped.jsonl (every dropped
    record with its `reason`; or, from a streaming stage, the Counter of the reasons
    of those it wrote) and metrics/<stage>.json, whose first keys are
    the same in every stage: records_in (what the stage read: files for ingest,
    chunks for generate, pairs after), kept (records written), dropped and
    dropped_by_reason; then the stage's own `details` and the teacher's counts.
    Prints a one-line summary, then fails the stage, after everything is
    written, when too many teacher calls failed. Returns the metrics."""
    reasons = Counter()

    def counted(records):
        for record in records:
            reasons[record.get("reason", "unknown")] += 1
            yield record

    if teacher is not None:
        teacher.close()
    if isinstance(kept, dict):
        kept = sum(write_jsonl(path, records) for path, records in kept.items())
    if isinstance(dropped, Counter):   # written already by a streaming stage (Outputs)
        reasons, n_dropped = dropped, sum(dropped.values())
    else:
        n_dropped = write_jsonl(f"data/{stage}_dropped.jsonl", counted(dropped))
    metrics = {"records_in": records_in, "kept": kept, "dropped": n_dropped,
               "dropped_by_reason": dict(reasons.most_common()), **(details or {})}
    if teacher is not None:
        metrics["teacher"] = teacher.stats
    write_json(f"metrics/{stage}.json", metrics)
    line = summary or f"kept {kept} of {records_in}"
    print(f"{stage}: {line}; dropped {n_dropped} (see data/{stage}_dropped.jsonl)"
          + (f"; teacher {teacher.stats['calls']} calls, {teacher.stats['cache_hits']} cached, "
             f"${teacher.stats['cost_usd']:.4f}" if teacher is not None else ""))
    if teacher is not None:
        teacher.check_errors(stage, max_error_rate)
    return metrics
