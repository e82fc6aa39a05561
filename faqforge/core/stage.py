"""What every stage script shares: clean error exits, the teacher's error checks and the
shared tail that writes a stage's records, its drops and its metrics."""

import sys
import time
from collections import Counter

from faqforge.core.io import PipelineError, write_json, write_jsonl


def run(main):
    """Run a stage's main(); a PipelineError ends it with its message, not a traceback."""
    start = time.monotonic()
    try:
        main()
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"  ({time.monotonic() - start:.1f} s)", file=sys.stderr)


def teacher_error_record(record, stage, reply):
    """A record dropped because its teacher request failed, with the (redacted) server message."""
    return {**record, "dropped_by": stage, "reason": "teacher error", "why": f"teacher error {reply['error']}",
            "message": reply.get("message")}


def check_error_rate(stage, stats, max_error_rate):
    """Fail the stage, after its outputs are written, when too many calls failed."""
    calls = stats["calls"]
    unsent = stats["errors_by_kind"].get("BudgetExhausted", 0)
    if unsent:
        raise PipelineError(
            f"{stage}: stopped at teacher.budget_usd (${stats['cost_usd']:.4f} spent); {unsent} requests were not "
            f"sent. Everything answered is written and cached: raise the budget and rerun `dvc repro`.")
    if calls and stats["errors"] / calls > max_error_rate:
        raise PipelineError(
            f"{stage}: {stats['errors']} of {calls} teacher calls failed "
            f"({stats['errors_by_kind']}), above max_error_rate {max_error_rate}; the answered ones are cached, "
            f"see data/{stage}_dropped.jsonl for the errors, fix the teacher endpoint and rerun `dvc repro`.")


def finish(stage, records_in, kept, dropped, details=None, teacher=None, max_error_rate=None, summary=None):
    """The end every record stage shares. Writes what the stage `kept`
    ({path: records}, streamed; or the count of records a stage that streams its
    output has written already), data/<stage>_dropped.jsonl (every dropped
    record with its `reason`) and metrics/<stage>.json, whose first keys are
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

    if isinstance(kept, dict):
        kept = sum(write_jsonl(path, records) for path, records in kept.items())
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
        check_error_rate(stage, teacher.stats, max_error_rate)
    return metrics
