import json
import re

import pytest
import yaml

from faqforge.documents.blocks import UnreadableDocument, clean_text, detect_encoding
from faqforge.documents.chunking import chunk_blocks, chunk_id, find_documents, split_to_budget
from faqforge.documents.pdf import strip_repeated_lines
from faqforge.documents.readers import read_document, read_markdown
from tests.support.pdf_factory import make_pdf
from tests.support.project import ROOT, run_stage, write_params


def words(text):
    return len(text.split())


def blocks_of(path):
    fmt, blocks, _ = read_document(path)
    return fmt, list(blocks)


# --- clean-up -------------------------------------------------------------------

def test_clean_text_keeps_unicode_and_joins_hyphenation():
    text = "Caf\u0065\u0301 na\u00efve \u65e5\u672c\u8a9e\x00\x07 docu-\nment  with \t  spaces"
    out = clean_text(text)
    assert "Café" in out and "naïve" in out and "日本語" in out  # NFC: e + combining accent -> é
    assert "document with spaces" in out
    assert "\x00" not in out and "\x07" not in out


def test_running_headers_footers_and_page_numbers_removed():
    topics = ["install", "configure", "train", "evaluate", "serve"]
    pages = [f"ACME Manual v2\nHow to {t} stays.\nMore about {t}.\nPage {n} of 5" for n, t in enumerate(topics, 1)]
    cleaned = strip_repeated_lines(pages)
    assert all("ACME Manual" not in p and "of 5" not in p for p in cleaned)
    assert cleaned[2] == "How to train stays.\nMore about train."


# --- formats --------------------------------------------------------------------

def test_markdown_sections_carry_heading_path():
    md = "# Guide\n\nIntro.\n\n## Install\n\nRun make.\n\n```\n# not a heading\n```\n\n## Use\n\nRun it."
    blocks = list(read_markdown(md))
    sections = [b["section"] for b in blocks]
    assert sections[0] == "Guide"
    assert "Guide > Install" in sections and "Guide > Use" in sections
    assert any("# not a heading" in b["text"] for b in blocks)


def test_pdf_pages_are_kept(tmp_path):
    path = tmp_path / "m.pdf"
    path.write_bytes(make_pdf([["Header", "First page text."], ["Header", "Second page text."],
                               ["Header", "Third page text."]]))
    fmt, blocks = blocks_of(path)
    assert fmt == "pdf"
    assert [(b["page"], b["text"]) for b in blocks] == [(1, "First page text."), (2, "Second page text."),
                                                         (3, "Third page text.")]


def test_sample_pdf_reads_with_pages():
    _, blocks = blocks_of(ROOT / "data/docs/fine-tuning-guide.pdf")
    assert max(b["page"] for b in blocks) >= 2 and any("LoRA" in b["text"] for b in blocks[:5])
    assert not any("page 1" in b["text"].lower() for b in blocks)  # the running footer is gone


MARKUP = re.compile(r"\*\*|__|`|\]\(|^#|^=+$|^-{3,}$|^\.\. |:\w+:`|<[a-z/][^>]*>|!\[", re.M)

SPHINX_PAGE = """\
.. _backups:

=======
Backups
=======

.. toctree::
   :maxdepth: 2

   restore

faqforge keeps a backup of every run, see :ref:`the restore guide <restore>` and :doc:`remote-storage`.

.. note::

   A backup older than thirty days is deleted automatically.

.. warning:: Never edit ``dvc.lock`` by hand.

Restore
=======

Run the command below; :py:func:`~faqforge.core.io.write_json` writes the metrics.

.. code-block:: bash
   :caption: restore a run

   dvc pull -r storage
   dvc checkout

.. versionadded:: 0.2
   The ``--remote`` flag.

.. productlist:: A Sphinx extension docutils does not know
   Its text still matters.

+--------+---------+
| knob   | default |
+========+=========+
| rank   | 16      |
+--------+---------+

retries
   How many times a request is retried.

.. include:: /etc/passwd
"""


def test_rst_sphinx_page_keeps_directive_bodies_and_code_without_markup(tmp_path):
    path = tmp_path / "backups.rst"
    path.write_text(SPHINX_PAGE)
    fmt, blocks, notes = read_document(path)
    blocks = list(blocks)
    assert fmt == "rst"
    texts = {b["text"]: b["section"] for b in blocks}
    assert texts["Note: A backup older than thirty days is deleted automatically."] == "Backups"
    assert texts["Warning: Never edit dvc.lock by hand."] == "Backups"
    assert texts["faqforge keeps a backup of every run, see the restore guide and remote-storage."] == "Backups"
    assert texts["Run the command below; write_json writes the metrics."] == "Backups > Restore"
    assert texts["dvc pull -r storage\ndvc checkout"] == "Backups > Restore"  # code kept line by line
    assert "New in version 0.2: The --remote flag." in texts
    assert "Its text still matters." in texts
    assert "rank | 16" in texts and "retries: How many times a request is retried." in texts
    assert not [b["text"] for b in blocks if MARKUP.search(b["text"])]
    assert not any("root:" in b["text"] for b in blocks)  # an include is never read
    assert any("'toctree'" in n for n in notes) and any('"productlist"' in n for n in notes)
    assert any("include" in n.lower() for n in notes)


def test_rst_headings_and_markup(tmp_path):
    path = tmp_path / "guide.rst"
    path.write_text("=====\nGuide\n=====\n\nIntro with ``code`` and `a link <http://x>`_.\n\n"
                    "Install\n-------\n\nRun *make*.\n\n.. note::\n\n   A directive body.\n\n"
                    "Use\n---\n\nRun **it**.\n")
    fmt, blocks = blocks_of(path)
    assert fmt == "rst"
    assert [(b["section"], b["text"]) for b in blocks] == [
        ("Guide", "Intro with code and a link."), ("Guide > Install", "Run make."),
        ("Guide > Install", "Note: A directive body."), ("Guide > Use", "Run it.")]


DOCS_PAGE = """<!DOCTYPE html><html lang="en"><head><title>Backups - faqforge docs</title>
<style>body {font: 14px sans-serif}</style><script>window.analytics = {};</script></head><body>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience on our site.
<button>Accept all cookies</button> <a href="/privacy">Privacy policy</a></div>
<header class="site-header"><a href="/">faqforge</a><form role="search"><input name="q"
placeholder="Search the docs"><button>Search</button></form></header>
<nav class="sidebar"><ul><li><a href="/install">Installation</a></li><li><a href="/backups">Backups</a></li>
<li><a href="/remote">Remote storage</a></li></ul></nav>
<main><article><h1>Backups</h1>
<p>faqforge keeps a backup of every run in the DVC cache. A backup older than thirty days is deleted
automatically, so push the runs you want to keep.</p>
<h2>Restore a run</h2><p>Run <code>dvc pull</code> on a fresh clone, then <code>dvc checkout</code>; the
outputs come back byte for byte.</p>
<pre><code>dvc pull -r storage
dvc checkout</code></pre>
<ul><li>Pull needs read access to the remote.</li><li>Checkout needs no network at all.</li></ul>
</article>
<aside class="related"><h3>Related pages</h3><p>You may also like: Remote storage, Experiments.</p></aside></main>
<footer class="site-footer"><p>&copy; 2026 Example Corp. All rights reserved.</p>
<p><a href="/terms">Terms</a> &middot; <a href="/imprint">Imprint</a></p></footer></body></html>"""


def test_html_page_yields_only_the_articles_text(tmp_path):
    path = tmp_path / "backups.html"
    path.write_text(DOCS_PAGE)
    fmt, blocks = blocks_of(path)
    assert fmt == "html"
    text = "\n".join(b["text"] for b in blocks)
    for boilerplate in ("cookies", "Search", "Installation", "Related pages", "You may also like", "Example Corp",
                        "Terms", "analytics", "font:"):
        assert boilerplate not in text
    assert [(b["section"], b["text"]) for b in blocks] == [
        ("Backups", "faqforge keeps a backup of every run in the DVC cache. A backup older than thirty days is "
                    "deleted automatically, so push the runs you want to keep."),
        ("Backups > Restore a run", "Run dvc pull on a fresh clone, then dvc checkout; the outputs come back "
                                    "byte for byte."),
        ("Backups > Restore a run", "dvc pull -r storage\ndvc checkout"),
        ("Backups > Restore a run", "Pull needs read access to the remote."),
        ("Backups > Restore a run", "Checkout needs no network at all.")]


MARKDOWN_PAGE = """---
title: Backups
tags: [ops]
---

Backups
=======

faqforge keeps a **backup** of every run in the [DVC cache](https://dvc.org/doc) (see `dvc gc`).
![a diagram of the cache](cache.png)

## Restore a run

Run `dvc pull` on a *fresh* clone:

```bash
# pull, then check out
dvc pull -r storage

dvc checkout
```

| knob | default | meaning |
|------|---------|---------|
| `remote` | storage | where **pushes** go |

<details><summary>Older versions</summary>Before 0.2 there was no restore.</details>

* Pull needs read access.
* Checkout needs __no__ network.
"""


def test_markdown_chunks_contain_no_markup_and_keep_code(tmp_path):
    path = tmp_path / "backups.md"
    path.write_text(MARKDOWN_PAGE)
    fmt, blocks = blocks_of(path)
    assert fmt == "markdown"
    assert [(b["section"], b["text"]) for b in blocks] == [
        ("Backups", "faqforge keeps a backup of every run in the DVC cache (see dvc gc). a diagram of the cache"),
        ("Backups > Restore a run", "Run dvc pull on a fresh clone:"),
        ("Backups > Restore a run", "# pull, then check out\ndvc pull -r storage\ndvc checkout"),
        ("Backups > Restore a run", "knob | default | meaning"),
        ("Backups > Restore a run", "remote | storage | where pushes go"),
        ("Backups > Restore a run", "Older versions Before 0.2 there was no restore."),
        ("Backups > Restore a run", "Pull needs read access."),
        ("Backups > Restore a run", "Checkout needs no network.")]
    assert not [b["text"] for b in blocks if b["text"] != blocks[2]["text"] and MARKUP.search(b["text"])]


def test_the_sample_corpus_reaches_the_chunks_without_markup():
    """Every Markdown page of data/docs: no emphasis, link or heading markup in any block."""
    for path in sorted((ROOT / "data/docs").glob("*.md")):
        _, blocks, _ = read_document(path)
        prose = [b["text"] for b in blocks if "\n" not in b["text"]]  # code blocks keep their lines
        assert prose and not [t for t in prose if re.search(r"\*\*|\]\(|^#+ |`", t)], path


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-16-le", "utf-8-sig"])
def test_text_encodings(tmp_path, encoding):
    path = tmp_path / "note.txt"
    path.write_bytes("Crème brûlée für Ärzte.\n\nSecond paragraph.\n".encode(encoding))
    _, blocks = blocks_of(path)
    assert [b["text"] for b in blocks] == ["Crème brûlée für Ärzte.", "Second paragraph."]


# --- bad input --------------------------------------------------------------------

def _status(path):
    with pytest.raises(UnreadableDocument) as err:
        blocks_of(path)
    return err.value.status, err.value.why


def test_corrupt_pdf(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage garbage")
    status, why = _status(path)
    assert status == "failed" and why.startswith("corrupt PDF")


def test_encrypted_pdf(tmp_path):
    from pypdf import PdfReader, PdfWriter
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(make_pdf([["Secret text."]]))
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="s3cret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with open(path, "wb") as f:
        writer.write(f)
    status, why = _status(path)
    assert status == "failed" and why.startswith("encrypted PDF")


def test_scanned_pdf_without_text(tmp_path):
    from pypdf import PdfWriter
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    path = tmp_path / "scan.pdf"
    with open(path, "wb") as f:
        writer.write(f)
    status, why = _status(path)
    assert status == "failed" and "no extractable text" in why and "OCR" in why


def test_empty_file(tmp_path):
    path = tmp_path / "empty.md"
    path.write_bytes(b"")
    assert _status(path) == ("skipped", "empty file")


def test_binary_file_with_text_extension(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(bytes(range(256)) * 40)
    status, why = _status(path)
    assert status == "failed" and "binary content" in why


def test_detect_encoding_cut_utf8_character_at_window_edge():
    assert detect_encoding("aé".encode()[:-1]) == "utf-8"


def test_symlink_outside_docs_is_not_read(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    (docs / "inside.md").write_text("# A\n\ntext")
    (docs / "link.txt").symlink_to(tmp_path / "secret.txt")
    (docs / "inner-link.md").symlink_to(docs / "inside.md")
    (docs / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    found, skipped = find_documents(docs)
    assert sorted(p.name for p in found) == ["inner-link.md", "inside.md"]
    reasons = {r["doc"].split("/")[-1]: r["why"] for r in skipped}
    assert "outside" in reasons["link.txt"] and reasons["dangling.txt"] == "broken symlink"


def test_find_documents_lists_unsupported_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("# A\n\ntext")
    (tmp_path / "b.docx").write_bytes(b"PK")
    found, skipped = find_documents(tmp_path)
    assert [p.name for p in found] == ["a.md"]
    assert skipped[0]["why"] == "unsupported extension .docx"


# --- chunking -------------------------------------------------------------------

def test_split_to_budget_prefers_sentences():
    text = "One two three four. Five six seven eight. Nine ten eleven twelve."
    assert split_to_budget(text, words, 8) == ["One two three four. Five six seven eight.",
                                               "Nine ten eleven twelve."]


def test_split_to_budget_splits_overlong_sentence_by_words():
    pieces = split_to_budget(" ".join(["w"] * 25), words, 10)
    assert all(words(p) <= 10 for p in pieces) and sum(words(p) for p in pieces) == 25


def test_chunks_respect_budget_and_sections():
    blocks = [{"section": "A", "page": None, "text": "a " * 30},
              {"section": "A", "page": None, "text": "b " * 30},
              {"section": "B", "page": None, "text": "c " * 5}]
    chunks = list(chunk_blocks(blocks, words, max_tokens=50))
    assert [c["section"] for c in chunks] == ["A", "A", "B"]
    assert all(words(c["text"]) <= 50 for c in chunks)


def test_overlap_repeats_last_sentences_within_budget():
    sentences = [f"Sentence number {i} is here." for i in range(40)]
    blocks = [{"section": None, "page": 1, "text": " ".join(sentences)}]
    chunks = list(chunk_blocks(blocks, words, max_tokens=60, overlap_tokens=10))
    assert len(chunks) > 2 and all(words(c["text"]) <= 60 for c in chunks)
    assert chunks[0]["overlap"] == 0
    for before, after in zip(chunks, chunks[1:]):
        prefix = after["text"][:after["overlap"]].strip()
        assert prefix and before["text"].endswith(prefix)
        assert words(prefix) <= 10


def test_small_tail_merges_or_borrows_and_never_exceeds_budget():
    blocks = [{"section": None, "page": 1, "text": "a " * 15}, {"section": None, "page": 2, "text": "tail piece"}]
    merged = list(chunk_blocks(blocks, words, max_tokens=20, min_tokens=5))
    assert len(merged) == 1 and merged[0]["pages"] == [1, 2]
    long = " ".join(f"Word{i} is here." for i in range(6))  # 18 words in 6 sentences
    blocks = [{"section": None, "page": 1, "text": long}, {"section": None, "page": 2, "text": "Tiny tail."}]
    chunks = list(chunk_blocks(blocks, words, max_tokens=19, min_tokens=6))
    assert len(chunks) == 2 and all(words(c["text"]) <= 19 for c in chunks)
    assert words(chunks[1]["text"]) >= 6 and chunks[1]["text"].endswith("Tiny tail.")
    assert chunks[1]["pages"] == [1, 2]


def test_chunk_id_depends_on_text_and_settings():
    assert chunk_id("x", {"max_tokens": 1}) == chunk_id("x", {"max_tokens": 1})
    assert chunk_id("x", {"max_tokens": 1}) != chunk_id("x", {"max_tokens": 2})
    assert chunk_id("x", {"max_tokens": 1}) != chunk_id("y", {"max_tokens": 1})


# --- the stage, on a messy folder ----------------------------------------------------

@pytest.fixture
def messy_project(tmp_path, tiny_model):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update(tokenizer=tiny_model, max_tokens=64, overlap_tokens=8, min_tokens=8)
    params["hygiene"]["languages"] = "any"  # the French and Japanese file is about Unicode, not language
    write_params(tmp_path, params)
    docs = tmp_path / "data" / "docs"
    (docs / "sub dir").mkdir(parents=True)
    (docs / "guide.md").write_text("# Guide\n\n" + "Install faqforge with make run. " * 30 + "\n\n## Use\n\nRun it.\n")
    (docs / "sub dir" / "guide.md").write_text((docs / "guide.md").read_text())
    (docs / "sub dir" / "Ünïcode naïve file.txt").write_text("Crème brûlée, 日本語のテキスト。Done.\n")
    (docs / "latin.txt").write_bytes("Für Ärzte: café.\n".encode("latin-1"))
    (docs / "manual.pdf").write_bytes(make_pdf([["Manual", f"How to {verb} the model."]
                                                for verb in ("install", "train", "serve")]))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "blob.md").write_bytes(bytes(range(256)) * 8)
    (docs / "notes.docx").write_bytes(b"PK\x03\x04")
    (docs / "sphinx.rst").write_text("Backups\n=======\n\n.. toctree::\n\n   restore\n\n.. note::\n\n"
                                     "   A backup older than thirty days is deleted automatically.\n")
    (tmp_path / "outside.txt").write_text("secret outside the docs folder")
    (docs / "escape.txt").symlink_to(tmp_path / "outside.txt")
    return tmp_path


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_stage_reports_every_file_and_goes_on(messy_project):
    result = run_stage(messy_project, "ingest")
    assert result.returncode == 0, result.stderr
    report = {r["doc"].removeprefix("data/docs/"): r for r in read_lines(messy_project / "data/ingest_report.jsonl")}
    assert {k: v["status"] for k, v in report.items()} == {
        "guide.md": "ingested", "sub dir/guide.md": "duplicate", "sub dir/Ünïcode naïve file.txt": "ingested",
        "latin.txt": "ingested", "manual.pdf": "ingested", "broken.pdf": "failed", "empty.txt": "skipped",
        "blob.md": "failed", "notes.docx": "skipped", "escape.txt": "skipped", "sphinx.rst": "ingested"}
    assert report["sphinx.rst"]["notes"] == ["line 4: directive 'toctree' has no text of its own (navigation or "
                                             "code); left out"]
    assert "same SHA-256 as data/docs/guide.md" in report["sub dir/guide.md"]["why"]
    chunks = read_lines(messy_project / "data/chunks.jsonl")
    assert not any("secret outside" in c["text"] for c in chunks)
    assert all(c["n_tokens"] <= 64 for c in chunks)
    by_doc = {}
    for c in chunks:
        by_doc.setdefault(c["doc"], []).append(c)
    assert [c["index"] for c in by_doc["data/docs/guide.md"]] == list(range(len(by_doc["data/docs/guide.md"])))
    assert {c["section"] for c in by_doc["data/docs/guide.md"]} == {"Guide", "Guide > Use"}
    assert [c["pages"] for c in by_doc["data/docs/manual.pdf"]] == [[1, 2, 3]]
    assert "Manual" not in by_doc["data/docs/manual.pdf"][0]["text"]
    assert "日本語のテキスト" in by_doc["data/docs/sub dir/Ünïcode naïve file.txt"][0]["text"]
    sources = {doc: (messy_project / doc).read_bytes().decode("utf-8", "ignore") for doc in by_doc
               if not doc.endswith((".pdf", "latin.txt", ".rst"))}
    for doc, text in sources.items():  # no chunk carries text from another document
        for chunk in by_doc[doc]:
            assert all(" ".join(sentence.split()).strip(" .") in " ".join(text.split())
                       for sentence in chunk["text"].split(". "))
    assert by_doc["data/docs/latin.txt"][0]["text"] == "Für Ärzte: café."
    metrics = json.loads((messy_project / "metrics/ingest.json").read_text())
    assert by_doc["data/docs/sphinx.rst"][0]["text"] == "Note: A backup older than thirty days is deleted automatically."
    assert metrics["documents"] == {"markdown": 1, "pdf": 1, "rst": 1, "text": 2}
    assert metrics["files"]["failed"] == 2 and metrics["chunks"] == len(chunks)


def test_rerun_is_byte_identical_and_one_change_touches_one_document(messy_project):
    assert run_stage(messy_project, "ingest").returncode == 0
    first = (messy_project / "data/chunks.jsonl").read_bytes()
    assert run_stage(messy_project, "ingest").returncode == 0
    assert (messy_project / "data/chunks.jsonl").read_bytes() == first
    latin = messy_project / "data/docs/latin.txt"
    latin.write_bytes("Für Ärzte: thé.\n".encode("latin-1"))
    assert run_stage(messy_project, "ingest").returncode == 0
    before = {c["chunk_id"]: c["doc"] for c in (json.loads(x) for x in first.decode().splitlines())}
    after = {c["chunk_id"]: c["doc"] for c in read_lines(messy_project / "data/chunks.jsonl")}
    assert {before[k] for k in before.keys() - after.keys()} == {"data/docs/latin.txt"}
    assert {after[k] for k in after.keys() - before.keys()} == {"data/docs/latin.txt"}


def test_stage_fails_only_when_nothing_gives_text(messy_project):
    docs = messy_project / "data/docs"
    for path in sorted(docs.rglob("*"), reverse=True):
        if path.is_file() and path.suffix not in (".pdf", ".docx") or path.is_symlink():
            path.unlink()
    (docs / "manual.pdf").unlink()
    result = run_stage(messy_project, "ingest")
    assert result.returncode == 1
    assert "none of the 1 documents gave any text" in result.stderr and "Traceback" not in result.stderr


def test_50mb_text_file_is_streamed_with_bounded_memory(tmp_path):
    import tracemalloc
    path = tmp_path / "huge.txt"
    paragraph = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 8 + "\n\n").encode()
    with open(path, "wb") as f:
        for _ in range(50 * 2**20 // len(paragraph) + 1):
            f.write(paragraph)
    assert path.stat().st_size >= 50 * 2**20
    tracemalloc.start()
    _, blocks, _ = read_document(path)
    n, biggest = 0, 0
    for chunk in chunk_blocks(blocks, words, max_tokens=300, min_tokens=20):
        n += 1
        biggest = max(biggest, words(chunk["text"]))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n > 10_000 and biggest <= 300
    assert peak < 5 * 2**20, f"peak {peak / 2**20:.1f} MiB while reading 50 MiB"


def test_hostile_markup_is_reported_never_a_crash(tmp_path):
    """A malformed RST table and a bad directive option are noted and their text
    kept; a page with nothing but navigation gives no text;
    an unclosed fence or tag ends at the end of the file."""
    (tmp_path / "bad.rst").write_text("Title\n=====\n\n+----+----+\n| a  | b\n+----+----+\n\nText after.\n\n"
                                      ".. image:: x.png\n   :width: banana\n\n`unclosed literal\n")
    _, blocks, notes = read_document(tmp_path / "bad.rst")
    assert [b["text"] for b in blocks] == ["| a | b", "Text after.", "`unclosed literal"]
    assert any("Malformed table" in n for n in notes) and any('"image" directive' in n for n in notes)
    (tmp_path / "nav.html").write_text("<html><body><nav><a href='/'>Home</a> <a href='/docs'>Docs</a></nav></body></html>")
    assert blocks_of(tmp_path / "nav.html")[1] == []  # the stage reports it: "no text after clean-up"
    (tmp_path / "open.html").write_text("<html><body><main><p>Unclosed <b>bold<p>Next para</main>")
    assert [b["text"] for b in blocks_of(tmp_path / "open.html")[1]] == ["Unclosed bold", "Next para"]
    (tmp_path / "open.md").write_text("# T\n\n```\nunclosed fence\n\n## not a heading\n")
    assert [(b["section"], b["text"]) for b in blocks_of(tmp_path / "open.md")[1]] == [
        ("T", "unclosed fence\n## not a heading")]
