"""Reading and writing the pipeline's files: JSON Lines, JSON, the eval set.

Every write goes to a temporary file in the same directory and is renamed into
place, so a stage killed mid-write leaves the previous file, never half of one.
"""

import contextlib
import errno
import fcntl
import glob
import json
import os
import tempfile
from pathlib import Path


class PipelineError(Exception):
    """A problem the user can fix: the message names the file and the fix."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; rename it over `path` on success.
    A full disk is a PipelineError naming the file; the previous file stays.
    Temporaries a killed earlier write of `path` left behind are removed first
    (one writer per path: DVC runs one stage at a time in a workspace)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_temporaries(path.parent, path.name)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise PipelineError(f"{path}: no space left on the device while writing it ({e.strerror}); "
                            f"the previous {path.name}, if any, is unchanged. Free some space (`df -h .`; "
                            "`dvc gc -w` drops cached versions the workspace does not use) and rerun.") from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def remove_temporaries(directory, name="*", recursive=False):
    """Delete the temporary files atomic_path leaves when a process is killed
    mid-write (`.<name>.<random>.tmp`): never valid, and inside a DVC output
    directory they would change its hash."""
    pattern = f".{name if name == '*' else glob.escape(name)}.*.tmp"
    for stale in (Path(directory).rglob(pattern) if recursive else Path(directory).glob(pattern)):
        stale.unlink(missing_ok=True)


def write_jsonl(path, records):
    """Write records as JSON Lines, atomically. Returns how many were written."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path):
    """Read a JSON Lines file; a bad line is an error naming the file and line."""
    return list(iter_jsonl(path))


def iter_jsonl(path):
    """The records of a JSON Lines file one at a time (a file of any size in
    constant memory); a bad line is an error naming the file and line."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: file not found; run the stage that writes it (`dvc repro`).")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise PipelineError(f"{path}:{lineno}: not valid JSON ({e.msg}); "
                                    "delete the file and rerun the stage that writes it.") from None
            yield record


class Spool:
    """Records put aside on disk (a temporary file, gone on close) and read back
    in order later: what a streaming stage writes after everything else."""

    def __enter__(self):
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")
        return self

    def __exit__(self, *exc):
        self.file.close()

    def append(self, record):
        self.file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def __iter__(self):
        self.file.seek(0)
        return (json.loads(line) for line in self.file)


def count_lines(path):
    """Lines in a file (records in a JSON Lines file), for progress bars; 0 when it is missing."""
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def append_jsonl_locked(path, records):
    """Append records as whole JSON lines under an exclusive lock, flushed to disk
    before the lock is let go: concurrent writers interleave lines, never bytes.
    Every non-ASCII character is escaped, so no line separator a person pasted
    (U+2028, U+0085) can break a line for a reader that splits on them."""
    data = "".join(json.dumps(r) + "\n" for r in records).encode("ascii")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_appended(path, offset=0, first_line=1):
    """([(line number, record), ...] after byte `offset`, which starts line
    `first_line`, then the offset and line number after them), read under a shared
    lock so no writer's half line is seen; lines split on newlines only. A line that
    is not JSON stops with its file and line number. A missing file reads as empty."""
    path = Path(path)
    if not path.exists():
        return [], 0, 1
    with open(path, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        f.seek(offset)
        data = f.read()
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    records = []
    for n, text in enumerate(lines, first_line):
        if not text.strip():
            continue
        try:
            records.append((n, json.loads(text)))
        except json.JSONDecodeError as e:
            raise PipelineError(f"{path}:{n}: not JSON ({e.msg}); fix or remove the line") from None
    return records, offset + len(data), first_line + len(lines)


def check_record(record, where, fields, required):
    """A record a person's tool wrote (a review decision, a grade): a JSON object with no
    field outside `fields` and every `required` one a non-empty string; PipelineError
    names `where` and what is wrong."""
    if not isinstance(record, dict):
        raise PipelineError(f"{where}: not a JSON object")
    unknown = set(record) - set(fields)
    if unknown:
        raise PipelineError(f"{where}: unknown field {sorted(unknown)[0]!r} (fields: {', '.join(sorted(fields))})")
    for key in required:
        if not isinstance(record.get(key), str) or not record[key].strip():
            raise PipelineError(f"{where}: {key} must be a non-empty string")
    return record


def read_json(path):
    """Read a JSON file; a missing or broken file is an error naming it."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: file not found; run the stage that writes it (`dvc repro`).")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PipelineError(f"{path}:{e.lineno}: not valid JSON ({e.msg}); "
                            "delete the file and rerun the stage that writes it.") from None


def write_json(path, obj):
    """Write one JSON document (metrics, manifests) atomically, pretty-printed."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_text(path, text):
    """Write a text file (a report) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_evalset(path):
    """Read the human-written eval set: a JSON array of {"question", "answer"}, each
    optionally with "docs" (the documents under data/docs/ the answer comes from) and
    "answerable" (false: the documents do not answer it, and the right answer says so)."""
    path = Path(path)
    fix = ("it must be a JSON array of {\"question\": ..., \"answer\": ..., \"docs\": [...]} objects written by "
           "hand (\"answerable\": false for a question the documents do not answer).")
    if not path.exists():
        raise PipelineError(f"{path}: eval set not found; {fix}")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise PipelineError(f"{path}: cannot read the eval set ({e}); {fix}") from None
    except json.JSONDecodeError as e:
        raise PipelineError(f"{path}: not valid JSON at line {e.lineno}, column {e.colno} ({e.msg}); {fix}") from None
    if not isinstance(items, list) or not items:
        raise PipelineError(f"{path}: expected a non-empty JSON array; {fix}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PipelineError(f"{path}: item {i} is not an object; {fix}")
        for key in ("question", "answer"):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip():
                raise PipelineError(f"{path}: item {i} has a missing or empty \"{key}\"; {fix}")
        if not isinstance(item.get("answerable", True), bool):
            raise PipelineError(f"{path}: item {i}: \"answerable\" must be true or false; {fix}")
        docs = item.get("docs", [])
        if not isinstance(docs, list) or not all(isinstance(d, str) and d.strip() for d in docs):
            raise PipelineError(f"{path}: item {i}: \"docs\" must be a list of document paths under data/docs/; {fix}")
        if docs and not item.get("answerable", True):
            raise PipelineError(f"{path}: item {i} is marked \"answerable\": false but names documents that answer "
                                f"it ({docs[0]}); remove one or the other")
    return items
