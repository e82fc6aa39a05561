"""The content-addressed answer cache every teacher call (and the evaluation's
student answers) goes through, keyed by a hash of the request's content.

A stage's cache is a directory of a few large segment files, not a file per
request (a million chunks would make millions of files for DVC to hash, commit
and push one by one):

    seg-<time>-<pid>-<random>.jsonl      one answered request a line:
                                         {"key": <sha256 hex>, "entry": {...}}
    seg-<time>-<pid>-<random>.idx.npy    the segment's keys, sorted, with each
                                         line's offset and length (a sealed segment)

A run appends to its own segment, one whole line per answer written as soon as
it arrives, so an answer received before a crash (even SIGKILL) is read back
and never asked again; a segment is sealed (its index written) when the run
ends or the segment reaches `segment_bytes`, and never changes afterwards, so
`dvc push` sends only new segments. The next run seals a segment a killed run
left: its whole lines are kept and a line cut off mid-write is dropped (that
request is asked again; nothing partial is read back). Each writer holds a lock
on its segment, so several processes (or Ray workers) may write one cache at
once. Lookups binary-search the memory-mapped indexes: memory does not grow
with the cache. A directory in the old layout (`<key[:2]>/<key>.json`) is moved
into a segment on first use.
"""

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import sys
import threading
import time
from pathlib import Path

import numpy as np

from faqforge.core.io import atomic_path, remove_temporaries

INDEX_DTYPE = np.dtype([("key", "S16"), ("offset", "<u8"), ("length", "<u4")])
SEGMENT_BYTES = 256 * 2**20  # a segment is sealed and a new one started past this size


def request_key(model_id, messages, sampling):
    """Content hash of a request: the same request always maps to the same entry."""
    blob = json.dumps({"model": model_id, "messages": messages, "sampling": sampling},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _digest(key):
    """The 16 bytes a key is indexed under."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


def _index_path(segment):
    return segment.with_name(segment.name.removesuffix(".jsonl") + ".idx.npy")


def _lines(path):
    """(offset, length, record) of each whole, readable line of a segment, in
    order; stops at a line cut off by a crash (and anything after it)."""
    offset = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return
            try:
                record = json.loads(line)
                _digest(record["key"])
            except (ValueError, KeyError, TypeError):
                return
            yield offset, len(line), record
            offset += len(line)


def _whole_lines(path):
    """(key, offset, length) of every whole line of a segment, and the bytes they cover."""
    found = [(record["key"], offset, length) for offset, length, record in _lines(path)]
    return found, sum(length for _, _, length in found)


def cached_entries(directory):
    """Every entry in a cache directory, one per line of its segments (a key
    written twice appears twice), read-only: for audits and tests."""
    for segment in sorted(Path(directory).glob("seg-*.jsonl")):
        for _, _, record in _lines(segment):
            yield record["entry"]


def _index(lines):
    """A segment's index from its (key, offset, length) lines; where a key was
    written twice (a reply rewritten by a new redaction policy) the later line wins."""
    latest = {key: (offset, length) for key, offset, length in lines}
    index = np.array([(_digest(k), o, n) for k, (o, n) in latest.items()], dtype=INDEX_DTYPE)
    index.sort(order="key")
    return index


def _write_index(segment, lines):
    index = _index(lines)
    with atomic_path(_index_path(segment)) as tmp, open(tmp, "wb") as f:
        np.save(f, index)


class ResponseCache:
    """get/get_many/put over a directory of segments; `close()` seals this run's
    segment (also done at exit)."""

    def __init__(self, directory, segment_bytes=SEGMENT_BYTES):
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.sealed = []          # (segment path, memory-mapped index), newest first
        self.writing = None       # this run's open segment: file object, lock and in-memory index
        self.files = {}           # open read handles by segment path
        self.replaced = set()     # keys whose older versions leave their segments at close
        self.mine = set()         # segments this process wrote
        self.lock_fd = None
        self.lock = threading.RLock()   # a stage's reader and its transport's thread share the cache
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._exclusive():
            remove_temporaries(self.directory, recursive=True)  # left by a run killed mid-write
            self._migrate_file_per_request()
            self._seal_abandoned()
        self._load_indexes()

    @contextlib.contextmanager
    def _exclusive(self):
        """Hold the directory's lock: every change but appending to one's own
        segment happens under it, so a temporary or an unlocked segment seen under
        it belongs to a process that is gone."""
        if self.lock_fd is not None:
            yield
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.lock_fd = fd
            yield
        finally:
            self.lock_fd = None
            os.close(fd)

    def get(self, key):
        return self.get_many([key])[0]

    def get_many(self, keys):
        """The entries cached under `keys` (None where there is none), in order;
        the newest entry wins where a key was written twice."""
        with self.lock:
            return self._get_many(keys)

    def _get_many(self, keys):
        found = [None] * len(keys)
        if self.writing:
            for i, key in enumerate(keys):
                where = self.writing["index"].get(key)
                if where:
                    found[i] = self._read(self.writing["path"], key, *where)
        digests = np.array([_digest(k) for k in keys], dtype="S16") if keys else None
        for segment, index in self.sealed:
            todo = [i for i, entry in enumerate(found) if entry is None]
            if not todo:
                break
            if not len(index):
                continue
            wanted = digests[todo]
            at = np.minimum(np.searchsorted(index["key"], wanted), len(index) - 1)
            hits = index["key"][at] == wanted
            for i, j, hit in zip(todo, at, hits):
                if hit:
                    found[i] = self._read(segment, keys[i], int(index["offset"][j]), int(index["length"][j]))
        return found

    def _read(self, segment, key, offset, length):
        f = self.files.get(segment)
        if f is None:
            f = self.files[segment] = open(segment, "rb")
        try:
            line = json.loads(os.pread(f.fileno(), length, offset))
        except (ValueError, UnicodeDecodeError):
            return None  # a damaged entry is simply asked again
        return line["entry"] if line.get("key") == key else None

    def put(self, key, entry):
        """Append one answer as one whole line, handed to the OS at once (a SIGKILL
        right after loses nothing)."""
        with self.lock:
            self._append(key, entry)

    def _append(self, key, entry):
        if self.writing is None:
            self._start_segment()
        line = (json.dumps({"key": key, "entry": entry}, ensure_ascii=False) + "\n").encode("utf-8")
        w = self.writing
        w["file"].write(line)
        w["file"].flush()
        w["index"][key] = (w["size"], len(line))
        w["size"] += len(line)
        if w["size"] >= self.segment_bytes:
            self._seal()

    def replace(self, key, entry):
        """Put a new version of a cached entry; the old one is removed from its
        segment when this run's segment is sealed (a reply rewritten by a stricter
        redaction policy must not stay on disk)."""
        self.put(key, entry)
        self.replaced.add(key)

    def _start_segment(self):
        now = time.time_ns()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}"
        path = self.directory / f"seg-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        with self._exclusive():   # nobody sees the segment before it is locked
            f = open(path, "xb")
            fcntl.flock(f, fcntl.LOCK_EX)
        self.writing = {"path": path, "file": f, "index": {}, "size": 0}
        self.mine.add(path)
        atexit.register(self.close)

    def close(self):
        """Seal this run's segment: write its index; it never changes again."""
        with self.lock:
            self._seal()

    def _seal(self):
        w, self.writing = self.writing, None
        if w is None or not self.directory.exists():   # nothing written, or the directory deleted under us
            return
        atexit.unregister(self.close)
        with self._exclusive():
            if w["size"]:
                _write_index(w["path"], [(k, o, n) for k, (o, n) in w["index"].items()])
                self.sealed.insert(0, (w["path"], np.load(_index_path(w["path"]), mmap_mode="r")))
            else:
                w["path"].unlink(missing_ok=True)
            w["file"].close()  # releases the segment's lock, sealed
            self._purge_replaced()

    def _purge_replaced(self):
        """Rewrite each older segment holding a replaced entry without it."""
        if not self.replaced:
            return
        gone = np.array([_digest(k) for k in self.replaced], dtype="S16")
        for n, (segment, index) in enumerate(self.sealed):
            if segment in self.mine or not np.isin(index["key"], gone).any():
                continue
            kept = []
            with atomic_path(segment) as tmp, open(tmp, "wb") as out, open(segment, "rb") as f:
                for offset, length, record in _lines(segment):
                    if record["key"] not in self.replaced:
                        f.seek(offset)
                        kept.append((record["key"], out.tell(), length))
                        out.write(f.read(length))
            _write_index(segment, kept)
            self.files.pop(segment, None)
            self.sealed[n] = (segment, np.load(_index_path(segment), mmap_mode="r"))
        self.replaced.clear()

    def segments(self):
        return sorted(self.directory.glob("seg-*.jsonl"), reverse=True)   # newest first: names start with the time

    def _load_indexes(self):
        for segment in self.segments():
            if _index_path(segment).exists():
                self.sealed.append((segment, np.load(_index_path(segment), mmap_mode="r")))
            else:   # still being written by a live process: read what it has written so far
                lines, _ = _whole_lines(segment)
                self.sealed.append((segment, _index(lines)))

    def _seal_abandoned(self):
        """Seal every segment without an index whose writer is gone (its lock is
        free): keep its whole lines, drop a line cut off mid-write."""
        for segment in self.segments():
            if _index_path(segment).exists():
                continue
            with open(segment, "rb") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer
                lines, whole = _whole_lines(segment)
                if not lines:
                    segment.unlink()
                    continue
                if whole < segment.stat().st_size:
                    print(f"{self.directory}: {segment.name} was cut off mid-write; kept its {len(lines)} whole "
                          f"answers, the rest will be asked again", file=sys.stderr)
                    with atomic_path(segment) as tmp, open(tmp, "wb") as out:
                        f.seek(0)
                        out.write(f.read(whole))
                _write_index(segment, lines)

    def _migrate_file_per_request(self):
        """Move entries of the old layout (one `<key[:2]>/<key>.json` file each) into
        a sealed segment, then delete the files."""
        old = sorted(self.directory.glob("??/*.json"))
        if not old:
            return
        moved = 0
        for path in old:
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue  # a damaged entry is asked again, as before
            self.put(path.stem, entry)
            moved += 1
        self.close()
        for path in old:
            path.unlink()
        for folder in {path.parent for path in old}:
            if not any(folder.iterdir()):
                folder.rmdir()
        print(f"{self.directory}: moved {moved} cached answers from one file each into "
              f"{len(self.sealed)} segment file(s)", file=sys.stderr)
        self.sealed.clear()  # loaded again with the rest
