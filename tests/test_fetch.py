"""`python -m faqforge fetch` against HTTP servers on 127.0.0.1: documents of
every format fetched and tracked with `dvc add`, a 404, a redirect, a time-out
and a flaky server; a second run does nothing; --update refreshes a changed
page. And what keeps fetch from being turned against the network: loopback and
private addresses refused on the first URL and after a redirect, the address
filter on every private, link-local and metadata range, size and type caps."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from faqforge.core.io import PipelineError
from faqforge.documents.fetch import download, read_sources, target_for
from faqforge.documents.web import FetchError, parse_allow, resolve, why_refused
from tests.support.pdf_factory import make_pdf
from tests.support.project import ROOT, run_stage, write_params

ENGLISH = "The teacher writes questions and answers from every chunk of every document in the folder."


class DocServer:
    """Serves documents with ETags; /moved redirects, /slow never answers in time,
    /flaky fails with 503 once, anything else is a 404."""

    def __init__(self):
        self.pages = {
            "/handbook.pdf": ("application/pdf", make_pdf([["Handbook", ENGLISH], ["Handbook", "Run dvc push to "
                                                                                   "upload the cache to the remote."]])),
            "/support/faq": ("text/html", f"<html><body><h1>FAQ</h1><p>{ENGLISH}</p></body></html>".encode()),
            "/notes.md": ("text/markdown", f"# Notes\n\n{ENGLISH}\n".encode()),
            "/notes-v2.md": ("text/markdown", f"# Notes, second edition\n\n{ENGLISH}\n".encode()),
            "/flaky.txt": ("text/plain", f"{ENGLISH}\n".encode()),
            "/logo.png": ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
            "/big.txt": ("text/plain", ENGLISH.encode() * 100),
        }
        self.requests, self.flaky_failures, self.not_modified, self.elsewhere = [], 1, 0, None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.answer(head=True)

            def do_GET(self):
                self.answer(head=False)

            def answer(self, head):
                server.requests.append((self.command, self.path))
                if self.path in ("/moved", "/away"):
                    self.send_response(302)
                    self.send_header("Location", server.elsewhere if self.path == "/away" else "/notes-v2.md")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/slow.md":
                    time.sleep(3)
                    return
                if self.path == "/flaky.txt" and server.flaky_failures:
                    server.flaky_failures -= 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path not in server.pages:
                    self.send_response(404)
                    self.send_header("Content-Length", "9")
                    self.end_headers()
                    if not head:
                        self.wfile.write(b"not found")
                    return
                kind, body = server.pages[self.path]
                etag = f'"{hashlib.md5(body).hexdigest()}"'
                if self.headers.get("If-None-Match") == etag:
                    server.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def docserver():
    server = DocServer()
    yield server
    server.close()


def fetch(project, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    return subprocess.run([sys.executable, "-m", "faqforge", "fetch", "--timeout", "1", "--attempts", "2",
                           "--backoff", "0.1", *args], cwd=project, env=env, capture_output=True, text=True)


def port_of(url):
    return int(url.rsplit(":", 1)[1])


@pytest.mark.slow
def test_fetch_imports_every_reachable_document_reports_each_failure_and_reruns_as_a_no_op(
        tmp_path, tiny_model, docserver):
    project = tmp_path
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "-q"], cwd=project, check=True)
    (project / "data/docs").mkdir(parents=True)
    u = docserver.url
    (project / "data/sources.yaml").write_text(yaml.safe_dump({"sources": [
        {"url": f"{u}/handbook.pdf"}, {"url": f"{u}/support/faq", "source": "faq"}, f"{u}/notes.md",
        {"url": f"{u}/moved", "name": "moved.md"}, {"url": f"{u}/missing.md"}, {"url": f"{u}/slow.md"},
        {"url": f"{u}/flaky.txt"}], "allow": [f"127.0.0.1:{port_of(u)}"]}))

    first = fetch(project)
    assert first.returncode == 1
    assert f"error: {u}/missing.md: 404 Not Found after 1 attempt" in first.stderr
    assert f"error: {u}/slow.md: timed out after 2 attempts" in first.stderr
    docs = project / "data/docs"
    expected = {"handbook.pdf", "faq/faq.html", "notes.md", "moved.md", "flaky.txt"}
    assert {str(p.relative_to(docs)) for p in docs.rglob("*") if p.is_file() and p.suffix not in (".dvc", "")
            and p.name != ".gitignore"} == expected
    assert (docs / "moved.md").read_bytes() == docserver.pages["/notes-v2.md"][1]  # the redirect was followed
    assert (docs / "faq/faq.html").read_bytes() == docserver.pages["/support/faq"][1]
    for name in expected:
        [out] = yaml.safe_load((docs / f"{name}.dvc").read_text())["outs"]
        assert out["meta"]["url"].startswith(u) and out["md5"] and out["meta"]["etag"]  # tracked, and where from
    assert "fetch: 5 fetched, 2 failed" in first.stdout

    docserver.requests.clear()
    second = fetch(project)
    assert second.returncode == 1 and "fetch: 5 present, 2 failed" in second.stdout
    asked = {path for _, path in docserver.requests}
    assert asked == {"/missing.md", "/slow.md"}  # only the failures are tried again

    docserver.pages["/notes.md"] = ("text/markdown", f"# Notes\n\nUpdated. {ENGLISH}\n".encode())
    third = fetch(project, "--update")
    assert "1 updated, 4 unchanged" in third.stdout
    assert (docs / "notes.md").read_text().startswith("# Notes\n\nUpdated.")
    assert docserver.not_modified == 4  # the unchanged pages were answered 304 to their ETags
    status = subprocess.run([str(Path(sys.executable).parent / "dvc"), "status", "data/docs/notes.md.dvc"],
                            cwd=project, capture_output=True, text=True)
    assert status.returncode == 0 and "up to date" in status.stdout.lower()

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update(tokenizer=tiny_model, max_tokens=200, min_tokens=8)
    write_params(project, params)
    assert run_stage(project, "ingest").returncode == 0
    report = {json.loads(line)["doc"]: json.loads(line)["status"]
              for line in (project / "data/ingest_report.jsonl").read_text().splitlines()}
    assert report == {f"data/docs/{name}": "ingested" for name in expected}  # .dvc files are not documents


def test_sources_file_errors_name_the_file_and_entry(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - url: ftp://example.com/a.pdf\n")
    with pytest.raises(PipelineError, match=r"sources.yaml: sources\[0\]: needs an http\(s\) url"):
        read_sources(path)
    path.write_text("sources:\n  - url: https://example.com/a.pdf\n    folder: x\n")
    with pytest.raises(PipelineError, match="unknown key 'folder'"):
        read_sources(path)
    path.write_text("sources: [\n")
    with pytest.raises(PipelineError, match="malformed YAML at line"):
        read_sources(path)
    path.write_text("sources: []\nallow: [intranet]\n")
    with pytest.raises(PipelineError, match="sources.yaml: allow entry 'intranet': give a network"):
        read_sources(path)
    path.write_text("# nothing yet\nsources: []\n")
    assert read_sources(path) == ([], [])
    path.write_text("sources: [example.com/faq, http://intranet.example/a.md]\nallow: [10.20.0.0/16]\n")
    entries, allow = read_sources(path)  # https unless a URL says http
    assert [e["url"] for e in entries] == ["https://example.com/faq", "http://intranet.example/a.md"]
    assert allow == ["10.20.0.0/16"]


def test_file_names_come_from_the_url_and_its_type():
    assert str(target_for({"url": "https://x.org/a/b/guide.pdf"}, "application/pdf")) == "data/docs/guide.pdf"
    assert str(target_for({"url": "https://x.org/help/faq"}, "text/html")) == "data/docs/faq.html"
    assert str(target_for({"url": "https://x.org/"}, "text/plain")) == "data/docs/index.txt"
    assert str(target_for({"url": "https://x.org/x", "source": "web", "name": "x.md"}, "")) == "data/docs/web/x.md"
    with pytest.raises(PipelineError, match="must be a folder inside data/docs"):
        target_for({"url": "https://x.org/x", "source": "../etc"}, "text/html")


OPTIONS = {"timeout": 2.0, "attempts": 1, "backoff": 0.0, "max_bytes": 50 << 20, "allowed": []}


def test_fetch_refuses_loopback_on_the_first_url_and_after_a_redirect(docserver):
    """No traffic beyond 127.0.0.1: the first server is allowed by its port only; it redirects
    to another 127.0.0.1 port, which is refused before any connection is made to it."""
    other = DocServer()
    try:
        with pytest.raises(FetchError, match=r"refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address"):
            download(f"{docserver.url}/notes.md", OPTIONS)
        assert docserver.requests == []  # refused before connecting
        allowed = {**OPTIONS, "allowed": parse_allow([f"127.0.0.1:{port_of(docserver.url)}"])}
        assert download(f"{docserver.url}/notes.md", allowed).body == docserver.pages["/notes.md"][1]
        docserver.elsewhere = f"{other.url}/notes.md"
        with pytest.raises(FetchError, match=rf"refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address.*"
                                             rf"--allow 127.0.0.1:{port_of(other.url)}"):
            download(f"{docserver.url}/away", allowed)
        assert ("GET", "/away") in docserver.requests and other.requests == []
    finally:
        other.close()


def test_fetch_caps_size_and_refuses_types_ingest_cannot_read(docserver):
    allowed = {**OPTIONS, "allowed": parse_allow([f"127.0.0.1:{port_of(docserver.url)}"])}
    with pytest.raises(FetchError, match="refused: .*/logo.png is image/png, not a document type"):
        download(f"{docserver.url}/logo.png", allowed)
    with pytest.raises(FetchError, match="too large: .* over the cap of 1000"):
        download(f"{docserver.url}/big.txt", {**allowed, "max_bytes": 1000})
    assert len(download(f"{docserver.url}/big.txt", allowed).body) == len(ENGLISH) * 100


REFUSED = {  # address: what kind it is said to be
    "127.0.0.1": "loopback", "127.8.9.10": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
    "0.0.0.0": "unspecified", "::": "unspecified",
    "10.1.2.3": "private", "172.16.0.1": "private", "172.31.255.254": "private", "192.168.1.1": "private",
    "169.254.169.254": "link-local", "169.254.170.2": "link-local", "fe80::1": "link-local",
    "100.100.100.200": "shared address space", "100.64.0.1": "shared address space",
    "fd00:ec2::254": "unique-local", "fc00::1": "unique-local", "::ffff:10.0.0.1": "private",
    "224.0.0.1": "multicast", "ff02::1": "multicast", "240.0.0.1": "reserved", "192.0.2.10": "private",
}


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_the_address_filter_refuses_every_private_link_local_and_metadata_range(address):
    """Resolved addresses are checked without connecting: a stand-in resolver answers."""
    def answer(host, port, **kwargs):
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
    with pytest.raises(FetchError, match=f"a {REFUSED[address]}"):
        resolve("docs.example.com", 443, getaddrinfo=answer)
    assert why_refused(address, 443, parse_allow([address])) is None  # the allow-list lets it through
    assert why_refused(address, 443, parse_allow([f"[{address}]:8443" if ":" in address else f"{address}:8443"]))


def test_a_public_address_passes_and_a_mixed_dns_answer_is_refused():
    def answer(*addresses):
        return lambda host, port, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]
    assert resolve("docs.example.com", 443, getaddrinfo=answer("93.184.216.34")) == ["93.184.216.34"]
    assert why_refused("2606:4700::6810:84e5", 443) is None
    with pytest.raises(FetchError, match="resolves to 10.0.0.5, a private address"):
        resolve("docs.example.com", 443, getaddrinfo=answer("93.184.216.34", "10.0.0.5"))
    allowed = parse_allow(["10.20.0.0/16", "192.168.1.20:8080", "[fd00::1]:443"])
    assert why_refused("10.20.3.4", 80, allowed) is None and why_refused("10.21.0.1", 80, allowed) == "private"
    assert why_refused("192.168.1.20", 8080, allowed) is None and why_refused("192.168.1.20", 22, allowed)
    assert why_refused("fd00::1", 443, allowed) is None
