"""Bring the documents listed in data/sources.yaml into data/docs/, each as a DVC import.

    python -m faqforge fetch                 # import every URL not imported yet
    python -m faqforge fetch --update        # also refresh the ones already imported (dvc update)

data/sources.yaml:

    sources:
      - url: https://example.com/handbook.pdf
      - url: https://example.com/faq            # an HTML page: saved as faq.html
        source: faq                             # sub-folder of data/docs/ (a source for split.mix)
        name: support-faq.html                  # file name (default: from the URL and its type)

Each document goes through `dvc import-url`, so it is versioned like every
other artifact: its .dvc file records the URL and the server's ETag, `dvc
update` refreshes it, `dvc repro` then reruns ingest for it alone. Before
importing, the URL is probed (redirects followed) with a time-out and
retries with backoff for time-outs, dropped connections, 429 and 5xx; a URL
that still fails is reported with its status and the others go on. A URL
already imported is left alone, so a second run does nothing.
"""

import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import yaml

from faqforge.core.io import PipelineError

SOURCES = "data/sources.yaml"
DOCS = Path("data/docs")
SUFFIX_BY_TYPE = {"application/pdf": ".pdf", "text/html": ".html", "text/markdown": ".md", "text/x-markdown": ".md",
                  "text/plain": ".txt", "text/x-rst": ".rst"}
SUPPORTED = (".pdf", ".html", ".htm", ".md", ".markdown", ".txt", ".rst")
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


class FetchError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def read_sources(path=SOURCES):
    """The entries of data/sources.yaml, checked: each has a http(s) url."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: not found; list the documents to fetch there (see `python -m faqforge fetch "
                            "--help`).")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", -1) + 1
        raise PipelineError(f"{path}: malformed YAML at line {line}; fix it and rerun.") from None
    entries = data.get("sources") if isinstance(data, dict) else None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise PipelineError(f"{path}: `sources` must be a list of {{url: ...}} entries.")
    for k, entry in enumerate(entries):
        if isinstance(entry, str):
            entries[k] = entry = {"url": entry}
        url = entry.get("url") if isinstance(entry, dict) else None
        if not url or urlparse(url).scheme not in ("http", "https"):
            raise PipelineError(f"{path}: sources[{k}]: needs a url starting with http:// or https://, got {url!r}.")
        unknown = set(entry) - {"url", "source", "name"}
        if unknown:
            raise PipelineError(f"{path}: sources[{k}]: unknown key {sorted(unknown)[0]!r} (url, source, name).")
    return entries


def probe(url, timeout, attempts, backoff):
    """(final URL after redirects, content type) of a reachable URL; FetchError
    with the status ("404 Not Found", "timed out", ...) otherwise."""
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "faqforge-fetch"})
            try:
                response = urllib.request.urlopen(request, timeout=timeout)
            except urllib.error.HTTPError as e:
                if e.code not in (405, 501):
                    raise
                request = urllib.request.Request(url, headers={"User-Agent": "faqforge-fetch"})  # no HEAD: GET
                response = urllib.request.urlopen(request, timeout=timeout)
            with response:
                return response.geturl(), response.headers.get_content_type()
        except urllib.error.HTTPError as e:
            status, retry = f"{e.code} {e.reason}", e.code in RETRYABLE
        except (TimeoutError, OSError) as e:  # URLError is an OSError; socket time-outs too
            reason = getattr(e, "reason", e)
            timed_out = isinstance(reason, TimeoutError) or "timed out" in str(reason)
            status, retry = ("timed out" if timed_out else f"unreachable ({reason})"), True
        if not retry or attempt == attempts:
            raise FetchError(status, f"{status} after {attempt} attempt{'s' * (attempt > 1)}")
        time.sleep(backoff * 2 ** (attempt - 1))


def target_for(entry, content_type):
    """data/docs/[source/]name for an entry: its `name`, or the URL's last path
    segment with a suffix from the content type when it has none we read."""
    name = entry.get("name")
    if not name:
        name = unquote(PurePosixPath(urlparse(entry["url"]).path).name) or "index"
        if PurePosixPath(name).suffix.lower() not in SUPPORTED:
            name += SUFFIX_BY_TYPE.get(content_type, ".html")
    if "/" in name or name.startswith("."):
        raise PipelineError(f"{SOURCES}: {entry['url']}: name {name!r} must be a plain file name.")
    source = PurePosixPath(entry.get("source") or ".")
    if source.is_absolute() or any(part == ".." or part.startswith(".") for part in source.parts):
        raise PipelineError(f"{SOURCES}: {entry['url']}: source {str(source)!r} must be a folder inside data/docs/.")
    return DOCS / source / name


def imported_url(dvc_file):
    """The URL a .dvc file imports, or None."""
    try:
        deps = (yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("deps") or []
    except (OSError, yaml.YAMLError):
        return None
    return deps[0].get("path") if deps else None


def already_imported():
    """{url: .dvc file} for the imports already in data/docs/."""
    return {url: f for f in DOCS.rglob("*.dvc") if (url := imported_url(f))}


def dvc(*args, timeout):
    result = subprocess.run(["dvc", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")] or \
            result.stderr.strip().splitlines()[-1:]
        raise FetchError("dvc failed", lines[0] if lines else f"dvc {args[0]} exited {result.returncode}")
    return result


def fetch(entries, update=False, timeout=30.0, attempts=3, backoff=1.0, out=sys.stdout):
    """Import every entry; returns [{url, result, path?, status?, error?}]:
    result is imported, updated, present or failed."""
    done = already_imported()
    results = []
    for entry in entries:
        url = entry["url"]
        if url in done:
            if update:
                try:
                    dvc("update", str(done[url]), timeout=timeout * attempts + 60)
                    results.append({"url": url, "result": "updated", "path": str(done[url])[:-4]})
                except (FetchError, subprocess.TimeoutExpired) as e:
                    results.append({"url": url, "result": "failed", "status": getattr(e, "status", "timed out"),
                                    "error": str(e)})
            else:
                results.append({"url": url, "result": "present", "path": str(done[url])[:-4]})
            print(f"{results[-1]['result']:>8}  {url}", file=out)
            continue
        try:
            _, content_type = probe(url, timeout, attempts, backoff)
            target = target_for(entry, content_type)
            if target.exists():
                raise FetchError("exists", f"{target} exists and is not an import of this URL; give the entry "
                                           "another `name` or remove the file")
            target.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(1, attempts + 1):
                try:
                    dvc("import-url", url, str(target), timeout=timeout * 4 + 60)
                    break
                except (FetchError, subprocess.TimeoutExpired) as e:
                    if attempt == attempts:
                        raise FetchError(getattr(e, "status", "timed out"), str(e)) from None
                    time.sleep(backoff * 2 ** (attempt - 1))
            results.append({"url": url, "result": "imported", "path": str(target)})
            print(f"imported  {url} -> {target}", file=out)
        except FetchError as e:
            results.append({"url": url, "result": "failed", "status": e.status, "error": str(e)})
            print(f"  failed  {url}: {e}", file=out)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m faqforge fetch", description=__doc__.split("\n")[0])
    parser.add_argument("--sources", default=SOURCES, help=f"the list of URLs (default {SOURCES})")
    parser.add_argument("--update", action="store_true", help="refresh documents already imported (dvc update)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per attempt (default 30)")
    parser.add_argument("--attempts", type=int, default=3, help="tries per URL (default 3)")
    parser.add_argument("--backoff", type=float, default=1.0, help="seconds before the first retry, doubling")
    args = parser.parse_args(argv)
    try:
        if not Path(".dvc").is_dir():
            raise PipelineError(f"{os.getcwd()}: not a DVC project; run fetch from the project's root.")
        results = fetch(read_sources(args.sources), args.update, args.timeout, args.attempts, args.backoff)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    failed = [r for r in results if r["result"] == "failed"]
    counts = {k: sum(r["result"] == k for r in results) for k in ("imported", "updated", "present", "failed")}
    print("fetch: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n) if results else "fetch: no sources listed")
    if counts["imported"] or counts["updated"]:
        print("next: git add data/docs/ (the .dvc files and .gitignore), then `dvc repro`")
    for r in failed:
        print(f"error: {r['url']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0
