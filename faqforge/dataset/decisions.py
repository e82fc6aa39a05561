"""The review decisions file, data/review.jsonl: what people decided about the
pairs, one decision a line, kept in git and read by the split stage.

A decision names a pair by its stable id (`<chunk id>-<n>`: the same chunk text
gives the same ids, so regenerating other documents keeps every decision), an
action, who decided and when:

    {"pair_id": "fcfc46d7c7ef4135-0", "action": "reject", "reason": "wrong",
     "reviewer": "ana", "time": "2026-12-06T01:10:00+00:00"}

Actions: approve; reject (with a reason); edit (a new question and/or answer;
the pipeline's original stays in its own files); add (a pair written by a
person: question, answer and optionally the document it comes from); rescue (a
pair the pipeline dropped, brought back). The file only grows: every write is
kept, and per pair the latest status (approved or rejected) and the latest
edit win. Writers append whole lines under an exclusive lock, so two browser
tabs or two reviewers never garble or lose a line.
"""

import datetime
import hashlib

from faqforge.core.io import PipelineError, append_jsonl_locked, check_record, read_appended

REVIEW_FILE = "data/review.jsonl"
ACTIONS = ("approve", "reject", "edit", "add", "rescue")
REASONS = ("wrong", "not in the documents", "unclear question", "duplicate", "personal data", "off topic")
FIELDS = {"pair_id", "action", "reviewer", "time", "reason", "question", "answer", "doc"}


def human_pair_id(question):
    """The stable id of a pair a person added: the same question text gives the same id."""
    return "human-" + hashlib.sha256(" ".join(question.split()).lower().encode("utf-8")).hexdigest()[:16]


def make_decision(pair_id, action, reviewer, reason=None, question=None, answer=None, doc=None, when=None):
    """A checked decision record; PipelineError says what is wrong with it."""
    record = {"pair_id": pair_id, "action": action, "reviewer": reviewer,
              "time": when or datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    for key, value in (("reason", reason), ("question", question), ("answer", answer), ("doc", doc)):
        if value is not None:
            record[key] = value
    return check_decision(record)


def check_decision(record, where="decision"):
    check_record(record, where, FIELDS, ("pair_id", "action", "reviewer", "time"))
    action = record["action"]
    if action not in ACTIONS:
        raise PipelineError(f"{where}: action {action!r} is not one of {', '.join(ACTIONS)}")
    for key in ("reason", "question", "answer", "doc"):
        if key in record and (not isinstance(record[key], str) or not record[key].strip()):
            raise PipelineError(f"{where}: {key} must be a non-empty string when given")
    if action == "reject" and "reason" not in record:
        raise PipelineError(f"{where}: a reject needs a reason (one of {', '.join(REASONS)}, or your own words)")
    if action == "edit" and not ({"question", "answer"} & set(record)):
        raise PipelineError(f"{where}: an edit needs a new question or answer")
    if action == "add" and not {"question", "answer"} <= set(record):
        raise PipelineError(f"{where}: an added pair needs a question and an answer")
    return record


def append_decisions(path, decisions):
    """Append checked decisions as whole lines (faqforge.core.io.append_jsonl_locked)."""
    append_jsonl_locked(path, [check_decision(d) for d in decisions])


def read_decisions(path):
    """Every decision in file order; an empty list when the file does not exist. A line
    that is not a valid decision stops with its file and line number."""
    return read_decisions_from(path)[0]


def read_decisions_from(path, offset=0, first_line=1):
    """(the decisions after byte `offset`, which starts line `first_line`, and the offset
    and line number after them): a reader that keeps its place sees what other writers
    appended since, whole lines only."""
    records, offset, line = read_appended(path, offset, first_line)
    return [check_decision(record, f"{path}:{n}") for n, record in records], offset, line


def review_state(decisions, state=None):
    """Per pair id, what the decisions add up to: `status` (approved, rejected or None:
    the latest approve or reject wins; an edit, an addition or a rescue approves a pair
    nobody has rejected), `reason`, the latest edited `question` and
    `answer`, `added` (a person's own pair, with its `doc`), `rescued`, `reviewer` and
    `time` of the latest decision, and `history` (every decision, in order). With `state`,
    the decisions are folded into it (a writer adding one decision)."""
    state = {} if state is None else state
    for d in decisions:
        s = state.setdefault(d["pair_id"], {"status": None, "reason": None, "question": None, "answer": None,
                                            "added": False, "rescued": False, "doc": None, "history": []})
        s["history"].append(d)
        s["reviewer"], s["time"] = d["reviewer"], d["time"]
        if d["action"] in ("approve", "reject"):
            s["status"] = "approved" if d["action"] == "approve" else "rejected"
            s["reason"] = d.get("reason") if d["action"] == "reject" else None
        if d["action"] in ("edit", "add"):
            s["question"] = d.get("question", s["question"])
            s["answer"] = d.get("answer", s["answer"])
            s["status"] = s["status"] or "approved"  # who rewrote it vetted it, unless it was rejected
        if d["action"] == "add":
            s["added"], s["doc"] = True, d.get("doc")
        if d["action"] == "rescue":
            s["rescued"] = True
            s["status"] = "approved"
    return state
