"""The pairs the review screen shows, loaded once and filtered in memory: every pair
curate kept (with what dedup and decontaminate then did with it), every pair
curate dropped, and the pairs people added, each with its chunk, the judge's
verdict, its grounding, its duplicate cluster and the review's decisions.

Filtering walks a list of small rows with their search text lower-cased once,
which answers in tens of milliseconds at 100,000 pairs (bench/review.py).
"""

import os
import re
import threading
from collections import Counter
from pathlib import Path

from faqforge.core.io import PipelineError, read_evalset, read_jsonl
from faqforge.core.reasons import REASONS
from faqforge.core.records import grounding_score, pair_prompt, pair_response
from faqforge.core.sections import Decontaminate
from faqforge.dataset.decisions import (
    REVIEW_FILE,
    append_decisions,
    human_pair_id,
    make_decision,
    read_decisions_from,
    review_state,
)
from faqforge.dataset.review import rescue_refusal
from faqforge.dataset.split import source_of
from faqforge.refinement.decontaminate import contamination

DEFAULT_RULE = Decontaminate()   # the decontaminate section's defaults, for a Store made without params.yaml

SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def _read(path):
    return read_jsonl(path) if Path(path).exists() else []


class Store:
    """The pairs of a project directory and its review file; `decide` and `add` write
    decisions (atomically appended) and update the rows in place."""

    def __init__(self, root=".", reviewer=None, decontaminate=DEFAULT_RULE):
        """`decontaminate`: the section whose rule refuses a person's pair too close to the eval set."""
        root = Path(root)
        self.root, self.review_path = root, root / REVIEW_FILE
        self.reviewer = reviewer or os.environ.get("FAQFORGE_REVIEWER") or os.environ.get("USER") or "reviewer"
        self.decontaminate = decontaminate
        self.lock = threading.Lock()
        self.chunks = {c["chunk_id"]: c for c in _read(root / "data/chunks.jsonl")}
        evalset = root / "data/eval/evalset.json"
        self.evalset = read_evalset(evalset) if evalset.exists() else []
        fate = {}
        for stage in ("dedup", "decontaminate"):
            for d in _read(root / f"data/{stage}_dropped.jsonl"):
                fate[d["id"]] = d
        members = {}
        for d in fate.values():
            if d.get("duplicate_of"):
                members.setdefault(d["duplicate_of"], []).append(d["id"])
        self.rows, self.by_id = [], {}
        for pair in _read(root / "data/qa_curated.jsonl"):
            self._add_row(pair, fate.get(pair["id"]), members.get(pair["id"], []))
        for pair in _read(root / "data/curate_dropped.jsonl"):
            self._add_row(pair, pair, [])
        self.state, self.offset, self.line = {}, 0, 1
        for row in self.rows:
            self._apply_state(row)
        self.refresh()

    def refresh(self):
        """Fold in the decisions appended to the review file since the last look (by this
        server or another one on the same project)."""
        with self.lock:
            decisions, self.offset, self.line = read_decisions_from(self.review_path, self.offset, self.line)
            review_state(decisions, self.state)
            for pair_id in dict.fromkeys(d["pair_id"] for d in decisions):
                s = self.state[pair_id]
                if s["added"] and pair_id not in self.by_id:
                    self._add_row({"id": pair_id, "chunk_id": None, "doc": s["doc"], "question": s["question"],
                                   "answer": s["answer"], "human": True}, None, [])
                if pair_id in self.by_id:
                    self._apply_state(self.by_id[pair_id])

    def _add_row(self, pair, drop, duplicates):
        chunk = self.chunks.get(pair.get("chunk_id")) or {}
        judge = pair.get("judge") or {}
        row = {"id": pair["id"], "question": pair_prompt(pair), "answer": pair_response(pair), "doc": pair.get("doc"),
               "source": "person" if pair.get("human") or not pair.get("doc") else source_of(pair["doc"]),
               "section": chunk.get("section"), "pages": chunk.get("pages"), "chunk_id": pair.get("chunk_id"),
               "verdict": judge.get("result"), "score": judge.get("score"), "judge_reason": judge.get("reason"),
               "grounding": pair.get("grounding"), "duplicates": duplicates, "human": bool(pair.get("human")),
               "dropped_by": drop.get("dropped_by") if drop else None, "drop_reason": drop.get("reason") if drop
               else None, "drop_why": drop.get("why") if drop else None,
               "drop_meaning": REASONS.get(drop.get("reason")) if drop else None,
               "duplicate_of": drop.get("duplicate_of") if drop else None}
        row["rescuable"] = not row["human"] and row["dropped_by"] is not None and rescue_refusal(drop or {}) is None
        self.rows.append(row)
        self.by_id[row["id"]] = row

    def _apply_state(self, row):
        s = self.state.get(row["id"])
        row["review"] = None if s is None else {
            "status": s["status"], "reason": s["reason"], "question": s["question"], "answer": s["answer"],
            "rescued": s["rescued"], "reviewer": s["reviewer"], "time": s["time"], "decisions": len(s["history"])}
        row["text"] = " ".join(filter(None, [row["question"], row["answer"], row["doc"], row["id"],
                                             s and s["question"], s and s["answer"]])).lower()

    # --- reading ---------------------------------------------------------------------------------

    def facets(self):
        docs, sources = {}, {}
        for row in self.rows:
            docs[row["doc"]] = docs.get(row["doc"], 0) + 1
            sources[row["source"]] = sources.get(row["source"], 0) + 1
        reasons = Counter(row["drop_reason"] for row in self.rows if row["drop_reason"])
        return {"docs": sorted((d, n) for d, n in docs.items() if d), "sources": sorted(sources.items()),
                "reasons": [(code, n, REASONS.get(code)) for code, n in reasons.most_common()],
                "total": len(self.rows), "reviewer": self.reviewer}

    def query(self, q="", doc=None, source=None, verdict=None, min_score=None, max_score=None, reviewed=None,
              state=None, page=1, size=50, reason=None):
        """(matching rows of the page, how many match). `state`: kept | dropped | any;
        `reason`: the code a pipeline stage dropped it with (faqforge.core.reasons);
        `reviewed`: yes | no | approved | rejected; `verdict`: YES | NO | none."""
        found = self.rows
        for word in q.lower().split():  # each filter narrows the list in one comprehension: no call per row
            found = [r for r in found if word in r["text"]]
        if doc:
            found = [r for r in found if r["doc"] == doc]
        if source:
            found = [r for r in found if r["source"] == source]
        if verdict:
            want = None if verdict == "none" else verdict
            found = [r for r in found if r["verdict"] == want]
        if min_score is not None:
            found = [r for r in found if r["score"] is not None and r["score"] >= min_score]
        if max_score is not None:
            found = [r for r in found if r["score"] is not None and r["score"] <= max_score]
        if reason:
            found = [r for r in found if r["drop_reason"] == reason]
        if state == "kept":
            found = [r for r in found if r["dropped_by"] is None]
        elif state == "dropped":
            found = [r for r in found if r["dropped_by"] is not None]
        if reviewed == "yes":
            found = [r for r in found if r["review"] is not None]
        elif reviewed == "no":
            found = [r for r in found if r["review"] is None]
        elif reviewed in ("approved", "rejected"):
            found = [r for r in found if r["review"] is not None and r["review"]["status"] == reviewed]
        start = (max(page, 1) - 1) * size
        return [_public(r) for r in found[start:start + size]], len(found)

    def detail(self, pair_id):
        row = self.by_id.get(pair_id)
        if row is None:
            raise KeyError(pair_id)
        chunk = self.chunks.get(row["chunk_id"]) or {}
        text = chunk.get("text") or ""
        answer = (row["review"] or {}).get("answer") or row["answer"]
        spans = [[m.start(), m.end()] for m in SENTENCE.finditer(text)
                 if m.group().strip() and grounding_score(answer, m.group()) >= 0.5]
        s = self.state.get(pair_id)
        return {**_public(row), "chunk": text, "highlight": spans, "history": s["history"] if s else [],
                "duplicates_of_it": [_public(self.by_id[i]) for i in row["duplicates"] if i in self.by_id]}

    # --- writing ---------------------------------------------------------------------------------

    def decide(self, pair_id, action, reason=None, question=None, answer=None):
        """Record one decision about an existing pair; PipelineError (a clear message) when refused."""
        row = self.by_id.get(pair_id)
        if row is None:
            raise PipelineError(f"no pair {pair_id!r}")
        if action == "rescue":
            if row["dropped_by"] is None:
                raise PipelineError(f"{pair_id} was not dropped: approve it instead")
            if not row["rescuable"]:
                why = ("it is too close to the eval set" if row["dropped_by"] == "decontaminate"
                       else "it holds personal data")
                raise PipelineError(f"{pair_id} cannot be rescued: {why}; a pair like it can never train")
        if action in ("rescue", "edit"):
            self._check_eval(pair_id, question or (row["review"] or {}).get("question") or row["question"],
                             answer or (row["review"] or {}).get("answer") or row["answer"])
        return self._write(make_decision(pair_id, action, self.reviewer, reason, question, answer), row)

    def add(self, question, answer, doc=None):
        """A person's own pair; refused when it is too close to the eval set or already there."""
        question, answer = " ".join((question or "").split()), (answer or "").strip()
        if not question or not answer:
            raise PipelineError("a pair needs a question and an answer")
        pair_id = human_pair_id(question)
        if pair_id in self.by_id:
            raise PipelineError(f"this question is already there ({pair_id})")
        self._check_eval(pair_id, question, answer)
        decision = make_decision(pair_id, "add", self.reviewer, question=question, answer=answer, doc=doc or None)
        return self._write(decision, {"id": pair_id})

    def _check_eval(self, pair_id, question, answer):
        if not self.evalset:
            return
        _, leaked = contamination([{"id": pair_id, "question": question, "answer": answer}], self.evalset,
                                  self.decontaminate)
        if leaked:
            raise PipelineError(f"refused: too close to the eval set: {leaked[0]['why']} "
                                f"({leaked[0]['eval_question']!r}); training on it would make the evaluation "
                                "measure memory, not answers")

    def _write(self, decision, row):
        append_decisions(self.review_path, [decision])
        self.refresh()  # folds in this decision and any another writer appended before it
        return _public(self.by_id[row["id"]])


def _public(row):
    return {k: v for k, v in row.items() if k != "text"}
