"""`python -m faqforge fetch` against an HTTP server on 127.0.0.1: documents of
every format imported with `dvc import-url`, a 404, a redirect, a time-out and a
flaky server; a second run does nothing; --update refreshes a changed page."""

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from faqforge.core.io import PipelineError
from faqforge.documents.fetch import read_sources, target_for
from pdf_factory import make_pdf
from project import write_params
from test_ingest import run_ingest

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
        }
        self.requests, self.flaky_failures = [], 1
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
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/notes-v2.md")
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
        {"url": f"{u}/flaky.txt"}]}))

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
        record = yaml.safe_load((docs / f"{name}.dvc").read_text())
        assert record["deps"][0]["path"].startswith(u) and record["frozen"]  # a dvc import-url record
    assert "fetch: 5 imported, 2 failed" in first.stdout

    docserver.requests.clear()
    second = fetch(project)
    assert second.returncode == 1 and "fetch: 5 present, 2 failed" in second.stdout
    asked = {path for _, path in docserver.requests}
    assert asked == {"/missing.md", "/slow.md"}  # only the failures are tried again

    docserver.pages["/notes.md"] = ("text/markdown", f"# Notes\n\nUpdated. {ENGLISH}\n".encode())
    third = fetch(project, "--update")
    assert "5 updated" in third.stdout and (docs / "notes.md").read_text().startswith("# Notes\n\nUpdated.")

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update(tokenizer=tiny_model, max_tokens=200, min_tokens=8)
    write_params(project, params)
    assert run_ingest(project).returncode == 0
    report = {json.loads(line)["doc"]: json.loads(line)["status"]
              for line in (project / "data/ingest_report.jsonl").read_text().splitlines()}
    assert report == {f"data/docs/{name}": "ingested" for name in expected}  # .dvc files are not documents


def test_sources_file_errors_name_the_file_and_entry(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - url: ftp://example.com/a.pdf\n")
    with pytest.raises(PipelineError, match=r"sources.yaml: sources\[0\]: needs a url starting with http"):
        read_sources(path)
    path.write_text("sources:\n  - url: https://example.com/a.pdf\n    folder: x\n")
    with pytest.raises(PipelineError, match="unknown key 'folder'"):
        read_sources(path)
    path.write_text("sources: [\n")
    with pytest.raises(PipelineError, match="malformed YAML at line"):
        read_sources(path)
    path.write_text("# nothing yet\nsources: []\n")
    assert read_sources(path) == []


def test_file_names_come_from_the_url_and_its_type():
    assert str(target_for({"url": "https://x.org/a/b/guide.pdf"}, "application/pdf")) == "data/docs/guide.pdf"
    assert str(target_for({"url": "https://x.org/help/faq"}, "text/html")) == "data/docs/faq.html"
    assert str(target_for({"url": "https://x.org/"}, "text/plain")) == "data/docs/index.txt"
    assert str(target_for({"url": "https://x.org/x", "source": "web", "name": "x.md"}, "")) == "data/docs/web/x.md"
    with pytest.raises(PipelineError, match="must be a folder inside data/docs"):
        target_for({"url": "https://x.org/x", "source": "../etc"}, "text/html")
