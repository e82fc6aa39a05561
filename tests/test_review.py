"""The review decisions file: checked records, appends that never garble or lose a
line under concurrent writers, and what the decisions add up to per pair."""

import json
import multiprocessing

import pytest

from faqforge.core.io import PipelineError
from faqforge.dataset.decisions import (
    append_decisions,
    human_pair_id,
    make_decision,
    read_decisions,
    review_state,
)


def _write_many(path, writer, n):
    for k in range(n):
        # one append per decision, as a browser posting them one by one does
        append_decisions(path, [make_decision(f"{writer}-{k}", "edit", writer,
                                              answer=f"Ünïcode answer {k} from {writer} " + "x" * (k % 300))])


def test_two_concurrent_writers_keep_every_line_whole(tmp_path):
    path = tmp_path / "review.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_many, args=(path, name, 500)) for name in ("ana", "bo")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    decisions = read_decisions(path)  # every line parses as a whole decision
    assert len(decisions) == 1000
    assert sorted(d["pair_id"] for d in decisions) == sorted(f"{w}-{k}" for w in ("ana", "bo") for k in range(500))
    assert all(d["answer"].startswith("Ünïcode answer") for d in decisions)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [d["pair_id"] for d in decisions if d["reviewer"] == "ana"] == [f"ana-{k}" for k in range(500)]
    assert len(lines) == 1000 and all(json.loads(line) for line in lines)


def test_decisions_are_checked_and_a_bad_line_names_its_file_and_line(tmp_path):
    with pytest.raises(PipelineError, match="a reject needs a reason"):
        make_decision("a-0", "reject", "ana")
    with pytest.raises(PipelineError, match="action 'delete' is not one of approve, reject, edit, add, rescue"):
        make_decision("a-0", "delete", "ana")
    with pytest.raises(PipelineError, match="an edit needs a new question or answer"):
        make_decision("a-0", "edit", "ana")
    with pytest.raises(PipelineError, match="reviewer must be a non-empty string"):
        make_decision("a-0", "approve", " ")
    path = tmp_path / "review.jsonl"
    append_decisions(path, [make_decision("a-0", "approve", "ana")])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"pair_id": "a-1", "action": "approve"\n')
    with pytest.raises(PipelineError, match=r"review.jsonl:2: not JSON"):
        read_decisions(path)
    path.write_text('{"pair_id": "a-1", "action": "approve", "reviewer": "ana", "time": "t", "score": 3}\n')
    with pytest.raises(PipelineError, match=r"review.jsonl:1: unknown field 'score'"):
        read_decisions(path)
    assert read_decisions(tmp_path / "none.jsonl") == []


def test_the_latest_status_and_the_latest_edit_win_and_every_write_is_kept():
    when = iter(f"2026-12-06T01:0{k}:00+00:00" for k in range(10))
    decisions = [make_decision("p-1", "edit", "ana", question="How do I add documents?", when=next(when)),
                 make_decision("p-1", "reject", "bo", reason="wrong", when=next(when)),
                 make_decision("p-1", "approve", "ana", when=next(when)),  # a second look wins
                 make_decision("p-1", "edit", "bo", answer="Put them in data/docs/.", when=next(when)),
                 make_decision("p-2", "approve", "ana", when=next(when)),
                 make_decision("p-2", "reject", "ana", reason="not in the documents", when=next(when)),
                 make_decision(human_pair_id("Where is the cache?"), "add", "ana", question="Where is the cache?",
                               answer="In cache/llm/.", when=next(when)),
                 make_decision("p-3", "rescue", "bo", when=next(when))]
    state = review_state(decisions)
    assert state["p-1"]["status"] == "approved" and state["p-1"]["reviewer"] == "bo"
    assert (state["p-1"]["question"], state["p-1"]["answer"]) == ("How do I add documents?", "Put them in data/docs/.")
    assert len(state["p-1"]["history"]) == 4
    assert (state["p-2"]["status"], state["p-2"]["reason"]) == ("rejected", "not in the documents")
    added = state[human_pair_id("where is  the cache?")]  # the id ignores case and spacing
    assert added["added"] and added["status"] == "approved" and added["answer"] == "In cache/llm/."
    assert state["p-3"]["rescued"] and state["p-3"]["status"] == "approved"


# --- the split stage's side: decisions applied to the pairs --------------------------------------

def _pairs():
    return [
        {"id": "c1-0", "chunk_id": "c1", "doc": "data/docs/remote-storage.txt",
         "question": "How do I upload the cache to a remote?", "answer": "Run dvc push after adding a remote."},
        {"id": "c1-0-p1", "chunk_id": "c1", "doc": "data/docs/remote-storage.txt", "variant_of": "c1-0",
         "group": "c1-0", "question": "How is the cache sent to remote storage?",
         "answer": "Run dvc push after adding a remote."},
        {"id": "c2-0", "chunk_id": "c2", "doc": "data/docs/installation.txt",
         "question": "Which Python version does faqforge need?", "answer": "Python 3.11."},
        {"id": "c3-0", "chunk_id": "c3", "doc": "data/docs/configuration.md",
         "question": "Where do the knobs live?", "answer": "In params.yaml."},
        {"id": "c4-1", "chunk_id": "c4", "doc": "data/docs/faq.txt",
         "question": "Où mettre mes documents ?", "answer": "Dans data/docs/."},
    ]


def _pools():
    return [
        {"id": "c5-0", "chunk_id": "c5", "doc": "data/docs/faq.txt", "question": "How do I stop a run?",
         "answer": "Press Ctrl-C; the caches keep what is done.", "dropped_by": "curate", "reason": "judge NO",
         "why": "judge said no"},
        {"id": "c6-0", "chunk_id": "c6", "doc": "data/docs/faq.txt", "question": "What does faqforge do?",
         "answer": "It writes a chatbot.", "dropped_by": "decontaminate", "reason": "eval leak: fuzzy question",
         "why": "question token_sort_ratio 100 >= 85 with eval item 0"},
        {"id": "c7-0", "chunk_id": "c7", "doc": "data/docs/faq.txt", "question": "Who runs operations?",
         "answer": "Write to ops.lead@example.org.", "dropped_by": "curate", "reason": "personal data",
         "why": "email"},
    ]


def _apply(decisions, require=False):
    from faqforge.core.io import read_evalset
    from faqforge.dataset.review import apply_review
    from tests.support.project import ROOT
    from tests.support.sections import section
    return apply_review(_pairs(), review_state(decisions), _pools(),
                        lambda: read_evalset(ROOT / "data/eval/evalset.json"), section("decontaminate"),
                        section("dedup"), require)


def test_rejects_edits_additions_and_rescues_reach_the_pairs_with_their_reasons():
    added = "Wie lade ich den Cache hoch?"
    decisions = [make_decision("c1-0", "edit", "ana", answer="Run dvc push; dvc remote add sets the remote first."),
                 make_decision("c2-0", "reject", "bo", reason="not in the documents"),
                 make_decision("c3-0", "approve", "ana"),
                 make_decision(human_pair_id(added), "add", "ana", question=added,
                               answer="Mit dvc push, nachdem ein Remote eingerichtet ist."),
                 make_decision(human_pair_id("Where do the knobs live?"), "add", "bo",
                               question="Where do the knobs live?", answer="In params.yaml, by stage."),
                 make_decision("c5-0", "rescue", "bo"),
                 make_decision("c6-0", "rescue", "bo"),
                 make_decision("c7-0", "rescue", "bo"),
                 make_decision("gone-3", "approve", "ana")]
    pairs, removed, summary = _apply(decisions)
    by_id = {p["id"]: p for p in pairs}
    edited = by_id["c1-0"]
    assert edited["answer"].startswith("Run dvc push; dvc remote add") and edited["original"]["answer"] == \
        "Run dvc push after adding a remote." and edited["question"] == "How do I upload the cache to a remote?"
    assert by_id["c1-0-p1"]["answer"] == edited["answer"]  # the paraphrase takes the edited answer
    assert by_id["c1-0-p1"]["question"] == "How is the cache sent to remote storage?"  # and keeps its question
    why = {r["id"]: (r["reason"], r["why"]) for r in removed}
    assert why["c2-0"] == ("rejected in review", "not in the documents (bo)")
    assert why["c3-0"][0] == "duplicate of a person's pair"  # the generated twin of a person's question leaves
    assert by_id[human_pair_id(added)]["human"] and by_id[human_pair_id(added)]["question"] == added
    assert by_id["c5-0"]["rescued_from"] == "curate" and "dropped_by" not in by_id["c5-0"]
    assert "c6-0" not in by_id and "c7-0" not in by_id
    refused = {r["pair_id"]: r["why"] for r in summary["refused"]}
    assert refused == {"c6-0": "not rescued: it is too close to the eval set",
                       "c7-0": "not rescued: it holds personal data"}
    assert summary["orphaned"] == [{"pair_id": "gone-3", "action": "approve", "reviewer": "ana",
                                    "time": decisions[-1]["time"]}]
    assert (summary["added"], summary["rescued"], summary["rejected"]) == (2, 1, {"not in the documents": 1})


def test_a_persons_text_that_leaks_the_eval_set_leaves_and_require_keeps_only_approved_pairs():
    from faqforge.core.io import read_evalset
    from tests.support.project import ROOT
    leak = read_evalset(ROOT / "data/eval/evalset.json")[3]
    decisions = [make_decision("c3-0", "edit", "ana", question=leak["question"], answer=leak["answer"]),
                 make_decision("c4-1", "approve", "bo")]
    pairs, removed, _ = _apply(decisions)
    assert "c3-0" not in {p["id"] for p in pairs}
    [out] = [r for r in removed if r["id"] == "c3-0"]
    assert out["reason"] == "eval leak after review" and "eval item 3" in out["why"]
    pairs, removed, summary = _apply(decisions, require=True)
    assert [p["id"] for p in pairs] == ["c4-1"] and summary["not_reviewed"] == 0
    assert {r["id"] for r in removed if r["reason"] == "not reviewed"} == {"c1-0", "c1-0-p1", "c2-0"}


def test_the_report_lists_orphaned_decisions_and_refused_rescues():
    """A decision whose pair no longer exists (its document changed) is listed, not dropped silently."""
    from faqforge.evaluation.data_render import render_review
    decisions = [make_decision("gone-3", "edit", "ana", answer="Still right?", when="2026-12-06T01:00:00+00:00"),
                 make_decision("c6-0", "rescue", "bo"), make_decision("c2-0", "reject", "bo", reason="wrong")]
    _, _, summary = _apply(decisions)
    text = render_review(summary)
    assert "| rejected: wrong | 1 |" in text
    assert "- `gone-3`: edit by ana, 2026-12-06T01:00:00+00:00" in text
    assert "- `c6-0`: not rescued: it is too close to the eval set" in text
    assert render_review({}) == ""
