"""Records of a JSON Lines file looked up by a field, kept on disk instead of in
a dict: a stage joining a million pairs to their chunks holds neither in memory.

    with RecordLookup("data/chunks.jsonl", "chunk_id") as chunks:
        text = chunks[pair["chunk_id"]]["text"]

The records go into SQLite in a temporary directory (deleted on close), read
once, in one transaction; the later records (of the file, or of the later file)
win over earlier ones with the same key, as a dict would.
"""

import json
import sqlite3
import tempfile
from pathlib import Path

from faqforge.core.io import PipelineError, iter_jsonl

BATCH = 10_000


class RecordLookup:
    """`path` one file or a list of them, read in order."""

    def __init__(self, path, key):
        self.key = key
        self.directory = tempfile.TemporaryDirectory(prefix="faqforge-lookup-")
        self.db = sqlite3.connect(Path(self.directory.name) / "records.sqlite")
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, record TEXT, marked INTEGER DEFAULT 0)")
        batch = []
        for one in [path] if isinstance(path, (str, Path)) else path:
            for n, record in enumerate(iter_jsonl(one), 1):
                if key not in record:
                    raise PipelineError(f"{one}: record {n} has no {key!r}; rerun the stage that writes the file.")
                batch.append((str(record[key]), json.dumps(record, ensure_ascii=False)))
                if len(batch) == BATCH:
                    self._insert(batch)
        self._insert(batch)
        self.db.commit()

    def _insert(self, batch):
        self.db.executemany("INSERT OR REPLACE INTO records (key, record) VALUES (?, ?)", batch)
        batch.clear()

    def __getitem__(self, key):
        row = self.db.execute("SELECT record FROM records WHERE key = ?", (str(key),)).fetchone()
        if row is None:
            raise KeyError(key)
        return json.loads(row[0])

    def __contains__(self, key):
        return self.db.execute("SELECT 1 FROM records WHERE key = ?", (str(key),)).fetchone() is not None

    def __len__(self):
        return self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def mark(self, key):
        """Remember `key` (say, a chunk that kept a pair) without holding it in memory."""
        self.db.execute("UPDATE records SET marked = 1 WHERE key = ?", (str(key),))

    def marked(self):
        return self.db.execute("SELECT COUNT(*) FROM records WHERE marked = 1").fetchone()[0]

    def close(self):
        self.db.close()
        self.directory.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
