"""Bring the documents listed in data/sources.yaml into data/docs/, each a DVC-tracked file.

    python -m faqforge fetch                 # fetch every URL not fetched yet
    python -m faqforge fetch --update        # also refresh the ones already fetched

data/sources.yaml:

    allow: [10.20.0.0/16]                       # intranet networks sources may live on (optional)
    sources:
      - url: https://example.com/handbook.pdf
      - url: example.com/faq                    # no scheme: https; http only when a URL says http://
        source: faq                             # sub-folder of data/docs/ (a source for split.mix)
        name: support-faq.html                  # file name (default: from the URL and its type)

Each document is downloaded by faqforge itself (faqforge.documents.web: every
address checked, on the first request and after each redirect, so the list
cannot reach this machine, its network or a cloud metadata service unless
`allow` or --allow lets it; a size cap; only types ingest reads) and tracked
with `dvc add`: the .dvc file records the URL, the server's ETag and the time
under `meta`, `fetch --update` asks again with the ETag (an unchanged page
costs a 304), and `dvc repro` then reruns ingest for a changed document
alone. A URL that fails is retried with backoff for time-outs, dropped
connections, 429 and 5xx, then reported with its status while the others go
on. A URL already fetched is left alone, so a second run does nothing.
"""

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import yaml

from faqforge.core.io import PipelineError
from faqforge.documents.web import GENERIC_TYPES, FetchError, get, parse_allow

SOURCES = "data/sources.yaml"
DOCS = Path("data/docs")
SUFFIX_BY_TYPE = {"application/pdf": ".pdf", "text/html": ".html", "text/markdown": ".md", "text/x-markdown": ".md",
                  "text/plain": ".txt", "text/x-rst": ".rst"}
SUPPORTED = (".pdf", ".html", ".htm", ".md", ".markdown", ".txt", ".rst")
def read_sources(path=SOURCES):
    """(entries, allow) of data/sources.yaml, checked: each entry has an http(s) url
    (https:// added to one without a scheme); allow lists the networks that may be fetched from."""
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
        if isinstance(url, str) and "://" not in url:
            entry["url"] = url = f"https://{url}"
        if not url or urlparse(url).scheme not in ("http", "https"):
            raise PipelineError(f"{path}: sources[{k}]: needs an http(s) url, got {url!r}.")
        unknown = set(entry) - {"url", "source", "name"}
        if unknown:
            raise PipelineError(f"{path}: sources[{k}]: unknown key {sorted(unknown)[0]!r} (url, source, name).")
    unknown = set(data) - {"sources", "allow"} if isinstance(data, dict) else set()
    if unknown:
        raise PipelineError(f"{path}: unknown key {sorted(unknown)[0]!r} (sources, allow).")
    try:
        parse_allow(data.get("allow"))
    except ValueError as e:
        raise PipelineError(f"{path}: {e}") from None
    return entries, list(data.get("allow") or [])


def readable(content_type, url):
    """Whether ingest reads a body of this type (a generic type passes when the URL's suffix is one it reads)."""
    if content_type in SUFFIX_BY_TYPE:
        return True
    return content_type in GENERIC_TYPES and PurePosixPath(urlparse(url).path).suffix.lower() in SUPPORTED


def download(url, options, etag=None):
    """web.get with retries and backoff for what may pass (time-outs, 429, 5xx)."""
    for attempt in range(1, options["attempts"] + 1):
        try:
            return get(url, options["timeout"], options["max_bytes"], options["allowed"], etag, readable)
        except FetchError as e:
            if not e.retry or attempt == options["attempts"]:
                raise FetchError(e.status, f"{e} after {attempt} attempt{'s' * (attempt > 1)}") from None
        time.sleep(options["backoff"] * 2 ** (attempt - 1))


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


def fetched_from(dvc_file):
    """(URL, ETag) a .dvc file records: fetch's `meta`, or an older `dvc import-url`'s dependency."""
    try:
        record = yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None, None
    meta = ((record.get("outs") or [{}])[0] or {}).get("meta") or {}
    if meta.get("url"):
        return meta["url"], meta.get("etag")
    deps = record.get("deps") or []
    return (deps[0].get("path"), None) if deps else (None, None)


def already_imported():
    """{url: (.dvc file, etag)} for the documents already fetched into data/docs/."""
    return {url: (f, etag) for f in DOCS.rglob("*.dvc") for url, etag in [fetched_from(f)] if url}


def dvc(*args, timeout):
    result = subprocess.run(["dvc", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")] or \
            result.stderr.strip().splitlines()[-1:]
        raise FetchError("dvc failed", lines[0] if lines else f"dvc {args[0]} exited {result.returncode}")
    return result


def store(entry, page, target, old_record=None, timeout=120):
    """Write the body (atomically), track it with `dvc add` and record under the output's
    `meta` where it came from; an older `dvc import-url` record of it is replaced."""
    if old_record is not None and (yaml.safe_load(old_record.read_text(encoding="utf-8")) or {}).get("deps"):
        old_record.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(page.body)
    os.replace(partial, target)
    dvc("add", str(target), timeout=timeout)
    record_path = target.with_name(target.name + ".dvc")
    record = yaml.safe_load(record_path.read_text(encoding="utf-8"))
    record["outs"][0]["meta"] = {"url": entry["url"], "final_url": page.url, "etag": page.etag,
                                 "content_type": page.content_type,
                                 "fetched": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    record_path.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")


def fetch(entries, options, update=False, out=sys.stdout):
    """Fetch every entry; returns [{url, result, path?, status?, error?}]: result is
    fetched, updated, unchanged, present or failed. `options`: timeout, attempts,
    backoff, max_bytes and allowed (faqforge.documents.web.parse_allow)."""
    done = already_imported()
    results = []
    for entry in entries:
        url = entry["url"]
        try:
            if url in done:
                record, etag = done[url]
                target = record.with_name(record.name[:-4])
                result = "present"
                if update:
                    page = download(url, options, etag)
                    result = "unchanged"
                    if page.status == 200 and not (target.exists() and target.read_bytes() == page.body):
                        store(entry, page, target, record)
                        result = "updated"
                results.append({"url": url, "result": result, "path": str(target)})
                print(f"{result:>9}  {url}", file=out)
                continue
            page = download(url, options)
            target = target_for(entry, page.content_type)
            if target.exists():
                raise FetchError("exists", f"{target} exists and was not fetched from this URL; give the entry "
                                           "another `name` or remove the file")
            store(entry, page, target)
            results.append({"url": url, "result": "fetched", "path": str(target)})
            print(f"  fetched  {url} -> {target}", file=out)
        except (FetchError, subprocess.TimeoutExpired) as e:
            status = getattr(e, "status", "timed out")
            results.append({"url": url, "result": "failed", "status": status, "error": str(e)})
            print(f"   failed  {url}: {e}", file=out)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m faqforge fetch", description=__doc__.split("\n")[0])
    parser.add_argument("--sources", default=SOURCES, help=f"the list of URLs (default {SOURCES})")
    parser.add_argument("--update", action="store_true", help="refresh documents already fetched")
    parser.add_argument("--allow", nargs="*", default=[], metavar="NETWORK[:PORT]",
                        help="intranet networks or addresses that may be fetched from, besides the list's `allow`")
    parser.add_argument("--max-bytes", type=int, default=50 << 20, help="the largest document (default 50 MiB)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per attempt (default 30)")
    parser.add_argument("--attempts", type=int, default=3, help="tries per URL (default 3)")
    parser.add_argument("--backoff", type=float, default=1.0, help="seconds before the first retry, doubling")
    args = parser.parse_args(argv)
    try:
        if not Path(".dvc").is_dir():
            raise PipelineError(f"{os.getcwd()}: not a DVC project; run fetch from the project's root.")
        entries, allow = read_sources(args.sources)
        try:
            allowed = parse_allow([*allow, *args.allow])
        except ValueError as e:
            raise PipelineError(f"--allow: {e}") from None
        options = {"timeout": args.timeout, "attempts": args.attempts, "backoff": args.backoff,
                   "max_bytes": args.max_bytes, "allowed": allowed}
        results = fetch(entries, options, args.update)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    failed = [r for r in results if r["result"] == "failed"]
    counts = {k: sum(r["result"] == k for r in results)
              for k in ("fetched", "updated", "unchanged", "present", "failed")}
    print("fetch: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n) if results else "fetch: no sources listed")
    if counts["fetched"] or counts["updated"]:
        print("next: git add data/docs/ (the .dvc files and .gitignore), then `dvc repro`")
    for r in failed:
        print(f"error: {r['url']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0
