from faqforge.evaluation.data_render import render
from faqforge.evaluation.data_stats import (
    funnel,
    length_histogram,
    one_per_reason,
    per_document,
    percentiles,
    stable_sample,
    top_reasons,
)


def pair(i, doc="data/docs/a.md", q="How do I push data?", a="Run dvc push to upload the cache."):
    return {"id": f"p{i}", "doc": doc, "question": q, "answer": a}


def test_top_reasons_counts_the_short_kind_not_the_details():
    dropped = [{"reason": "low grounding", "why": f"grounding 0.{k} < 0.5"} for k in range(3)]
    dropped += [{"reason": "judge NO", "why": "judge NO (p_yes 0.1)"}, {"why": "an old record without a reason"}]
    assert top_reasons(dropped, 2) == "low grounding (3); judge NO (1)"
    assert top_reasons(dropped, 3).endswith("an old record without a reason (1)")
    assert top_reasons([]) == ""


def test_one_dropped_record_per_reason_is_stable():
    dropped = [{"id": f"d{k}", "reason": "dup" if k % 3 else "leak", "why": "x"} for k in range(9)]
    sample = one_per_reason(dropped)
    assert [d["reason"] for d in sample] == ["dup", "leak"] and sample == one_per_reason(list(reversed(dropped)))


def test_histogram_bins_cover_every_length_and_count_every_text():
    rows = length_histogram(["one two three"], ["w " * 12, "w " * 3])
    assert rows == [{"words": 0, "questions": 1, "answers": 1}, {"words": 5, "questions": 0, "answers": 0},
                    {"words": 10, "questions": 0, "answers": 1}]
    assert percentiles([5, 1, 3]) == {0: 1, 10: 1, 50: 3, 90: 5, 100: 5}
    assert percentiles([])[50] == 0


def test_documents_without_pairs_come_first_and_stand_out():
    ingest = [{"doc": "data/docs/a.md", "status": "ingested"}, {"doc": "data/docs/b.md", "status": "ingested"},
              {"doc": "data/docs/c.docx", "status": "skipped"}, {"doc": "data/docs/v.md", "status": "ingested"}]
    chunks = [{"doc": "data/docs/a.md"}, {"doc": "data/docs/b.md"}, {"doc": "data/docs/v.md"}]
    train = [pair(0), pair(1)]
    rows = per_document(ingest, chunks=chunks, raw=[pair(0), pair(1), pair(2, "data/docs/b.md")], curated=train,
                        train=train, val=[pair(3, "data/docs/v.md")])
    assert [r["doc"] for r in rows] == ["data/docs/b.md", "data/docs/c.docx", "data/docs/v.md", "data/docs/a.md"]
    assert rows[0] == {"doc": "data/docs/b.md", "status": "ingested", "chunks": 1, "raw": 1, "curated": 0,
                       "train": 0, "val": 0}
    steps = [("generate", "chunks", 3, "raw pairs", 3, []),
             ("curate", "pairs", 3, "pairs", 2, [{**pair(2, "data/docs/b.md"), "reason": "low grounding",
                                                   "why": "grounding 0.1 < min_grounding 0.5"}])]
    markdown = render(funnel(steps), length_histogram(["q a b"], ["x y"]),
                      {"questions": percentiles([3]), "answers": percentiles([2])}, rows, stable_sample(train, 5),
                      {"curate": one_per_reason(steps[1][5])}, (3, [], "the rule"))
    assert "| curate | 3 pairs | 2 pairs | 1 | low grounding (1) |" in markdown
    assert "**2 of 4 documents gave no training or validation pair:** `data/docs/b.md`" in markdown
    assert "| **data/docs/b.md** | ingested | 1 | 1 | 0 | 0 | 0 |" in markdown
    assert "| data/docs/v.md | ingested | 1 | 0 | 0 | 0 | 1 |" in markdown  # a validation-only document is fine
    assert "*low grounding*: grounding 0.1 < min_grounding 0.5" in markdown
    assert "An independent check (the rule), run over the 3 training and validation pairs, flags **0**." in markdown


def test_reader_notes_are_listed_under_the_documents():
    ingest = [{"doc": "data/docs/a.rst", "status": "ingested",
               "notes": ["line 4: directive 'toctree' has no text of its own (navigation or code); left out"]},
              {"doc": "data/docs/b.md", "status": "ingested"}]
    rows = per_document(ingest, chunks=[], raw=[], curated=[], train=[pair(0, "data/docs/a.rst")], val=[])
    markdown = render(funnel([]), [], {"questions": percentiles([]), "answers": percentiles([])}, rows, [], {},
                      (0, [], "the check"))
    assert "- `data/docs/a.rst`: line 4: directive 'toctree' has no text of its own" in markdown
    assert "`data/docs/b.md`:" not in markdown
