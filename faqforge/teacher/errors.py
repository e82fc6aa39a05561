"""The teacher's error policy: a failed request becomes a drop record with the
server's (redacted) message, and a stage fails, after its outputs are written,
when too many of its requests failed or the budget stopped it."""

from faqforge.core.io import PipelineError
from faqforge.core.records import dropped


def teacher_error_record(record, stage, reply):
    """A record dropped because its teacher request failed, with the (redacted) server message."""
    return dropped(record, stage, "teacher error", f"teacher error {reply['error']}", message=reply.get("message"))


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
