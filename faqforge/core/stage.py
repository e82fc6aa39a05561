"""What every stage script shares: clean error exits and the closing summary."""

import sys
import time

from faqforge.core.io import PipelineError


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
