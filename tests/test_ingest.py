from faqforge.ingest import (chunk_blocks, chunk_id, clean_text, find_documents, read_document,
                             read_markdown, split_to_budget)


def words(text):
    return len(text.split())


def test_clean_text_keeps_unicode_and_joins_hyphenation():
    text = "Caf\u0065\u0301 na\u00efve \u65e5\u672c\u8a9e\x00\x07 docu-\nment  with   spaces"
    out = clean_text(text)
    assert "Café" in out and "naïve" in out and "日本語" in out
    assert "document with spaces" in out
    assert "\x00" not in out and "\x07" not in out


def test_markdown_sections_carry_heading_path():
    md = "# Guide\n\nIntro.\n\n## Install\n\nRun make.\n\n```\n# not a heading\n```\n\n## Use\n\nRun it."
    blocks = read_markdown(md)
    sections = [b["section"] for b in blocks]
    assert sections[0] == "Guide"
    assert "Guide > Install" in sections and "Guide > Use" in sections
    assert any("# not a heading" in b["text"] for b in blocks)


def test_split_to_budget_prefers_sentences():
    text = "One two three four. Five six seven eight. Nine ten eleven twelve."
    pieces = split_to_budget(text, words, 8)
    assert pieces == ["One two three four. Five six seven eight.", "Nine ten eleven twelve."]


def test_split_to_budget_splits_overlong_sentence_by_words():
    pieces = split_to_budget(" ".join(["w"] * 25), words, 10)
    assert all(words(p) <= 10 for p in pieces) and sum(words(p) for p in pieces) == 25


def test_chunks_respect_budget_and_sections():
    blocks = [{"section": "A", "page": None, "text": "a " * 30},
              {"section": "A", "page": None, "text": "b " * 30},
              {"section": "B", "page": None, "text": "c " * 5}]
    chunks = chunk_blocks(blocks, words, max_tokens=50)
    assert [c["section"] for c in chunks] == ["A", "A", "B"]
    assert all(words(c["text"]) <= 50 for c in chunks)


def test_small_trailing_piece_merges_into_previous():
    blocks = [{"section": None, "page": 1, "text": "a " * 20},
              {"section": None, "page": 2, "text": "tail piece"}]
    chunks = chunk_blocks(blocks, words, max_tokens=20, min_tokens=5)
    assert len(chunks) == 1 and chunks[0]["pages"] == [1, 2]
    chunks = chunk_blocks(blocks, words, max_tokens=20, min_tokens=2)
    assert len(chunks) == 2


def test_chunk_id_depends_on_text_and_settings():
    assert chunk_id("x", {"max_tokens": 1}) == chunk_id("x", {"max_tokens": 1})
    assert chunk_id("x", {"max_tokens": 1}) != chunk_id("x", {"max_tokens": 2})
    assert chunk_id("x", {"max_tokens": 1}) != chunk_id("y", {"max_tokens": 1})


def test_pdf_pages_are_kept():
    fmt, blocks = read_document("data/docs/fine-tuning-guide.pdf")
    assert fmt == "pdf"
    assert [b["page"] for b in blocks] == sorted(b["page"] for b in blocks)
    assert max(b["page"] for b in blocks) >= 2
    assert "LoRA" in blocks[0]["text"]


def test_find_documents_lists_unsupported_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("# A\n\ntext")
    (tmp_path / "b.docx").write_bytes(b"PK")
    found, skipped = find_documents(tmp_path)
    assert [p.name for p in found] == ["a.md"]
    assert skipped[0]["why"] == "unsupported extension .docx"
