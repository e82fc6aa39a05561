"""The content-addressed answer cache every teacher call (and the evaluation's
student answers) goes through: one JSON file per answered request, keyed by a
hash of the request's content, written atomically."""

import hashlib
import json
from pathlib import Path

from faqforge.core.io import atomic_path, remove_temporaries


def request_key(model_id, messages, sampling):
    """Content hash of a request: the same request always maps to the same entry."""
    blob = json.dumps({"model": model_id, "messages": messages, "sampling": sampling},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """One JSON file per answered request, written atomically."""

    def __init__(self, directory):
        self.directory = Path(directory)
        if self.directory.is_dir():
            remove_temporaries(self.directory, recursive=True)  # left by a run killed mid-write

    def _path(self, key):
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key):
        path = self._path(key)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a damaged entry is simply asked again

    def put(self, key, entry):
        with atomic_path(self._path(key)) as tmp:
            tmp.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
