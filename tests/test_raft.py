"""RAFT training records (faqforge.dataset.raft.raft_records) and split.context."""

import json
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from faqforge.core.chat_format import REFUSAL, citations, question_messages
from faqforge.core.config import parse_section
from faqforge.core.io import PipelineError
from faqforge.core.records import grounding_score
from faqforge.core.sections import Index, Raft
from faqforge.documents.retrieval import Retriever, build_index
from tests.support.project import ROOT, write_params
from tests.support.sections import changed, section

INDEX = Index(method="bm25", passage_words=40, with_section=True, rrf_k=60,
              bm25={"k1": 1.5, "b": 0.75, "stopwords": "en", "stemmer": "english"},
              dense={"model": None, "base_url": None, "api_key_env": "X", "batch_size": 8})
RAFT = Raft(passages=3, oracle_p=0.8, refusal_share=0.05, target="answer", draws=1, order="shuffled")
SYSTEM = "You are the help assistant."
TOPICS = {"backup": "snapshots are copied to the cold storage vault",
          "upload": "files larger than the quota are rejected by the gateway",
          "login": "passwords expire and single sign-on renews the session",
          "export": "reports leave the system as spreadsheets with formulas",
          "printing": "the queue sends pages to the nearest office printer",
          "billing": "invoices are issued monthly with the tax breakdown",
          "search": "the index refreshes so new articles become findable",
          "sharing": "links grant read access to colleagues outside the team",
          "alerts": "notifications are pushed to phones during an outage",
          "themes": "colours and fonts follow the brand guidelines"}


def corpus():
    """Three documents about the same ten topics, so other documents hold hard distractors."""
    chunks, pairs = [], []
    for d, doc in enumerate(["admin-guide.md", "user-manual.pdf", "faq.txt"]):
        for t, (topic, what) in enumerate(TOPICS.items()):
            chunk_id = f"{doc}#{t}"
            fact = f"For {topic}, {what} every {d * 100 + t + 7} minutes."
            chunks.append({"chunk_id": chunk_id, "doc": f"data/docs/{doc}", "section": topic.title(), "pages": None,
                           "text": f"This part covers {topic}. {fact} Ask the administrator to change the {topic} "
                                   f"settings when the team needs it."})
            for q in range(4):
                pairs.append({"id": f"{chunk_id}/{q}", "group": f"{chunk_id}/{q}", "doc": f"data/docs/{doc}",
                              "chunk_id": chunk_id, "question": f"How often does {topic} happen? ({q})",
                              "answer": fact})
    return chunks, pairs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    chunks, pairs = corpus()
    directory = tmp_path_factory.mktemp("index")
    build_index(chunks, INDEX, directory)
    return Retriever(directory), pairs


def test_raft_records_hold_the_oracle_at_its_share_with_distractors_from_other_documents(built):
    from faqforge.dataset.raft import raft_records
    retriever, pairs = built
    records = raft_records(pairs, retriever, SYSTEM, RAFT, seed=0)
    by_id = {p["passage_id"]: p for p in retriever.passages}
    answered = [r for r in records if r["kind"] != "refusal"]
    assert len(answered) == len(pairs)
    assert 0.7 < sum(r["kind"] == "oracle" for r in answered) / len(answered) < 0.9   # oracle_p 0.8
    positions = set()
    for record, pair in zip(answered, pairs):
        shown = [by_id[i] for i in record["passages"]]
        assert len(shown) == RAFT.passages
        own = [n for n, p in enumerate(shown, start=1) if p["chunk_id"] == pair["chunk_id"]]
        others = [p for p in shown if p["chunk_id"] != pair["chunk_id"]]
        assert all(p["doc"] != pair["doc"] for p in others)      # distractors come from other documents
        answer = record["messages"][-1]["content"]
        if record["kind"] == "oracle":
            assert own == [record["oracle"]] and citations(answer) == own   # the answer cites the oracle
            assert answer == f"{pair['answer']} [{own[0]}]"
            positions.add(own[0])
        else:
            assert own == [] and citations(answer) == [] and answer == pair["answer"]
        # The very prompt chat and serve build for these passages: one layout everywhere.
        assert record["messages"][:-1] == question_messages(pair["question"], SYSTEM, shown)
    assert positions == {1, 2, 3}                                  # shuffled: the oracle is not always first


def test_refusal_records_show_passages_that_do_not_answer(built):
    from faqforge.dataset.raft import raft_records
    retriever, pairs = built
    records = raft_records(pairs, retriever, SYSTEM, RAFT, seed=0)
    refusals = [r for r in records if r["kind"] == "refusal"]
    assert 0.01 < len(refusals) / len(pairs) < 0.12                # refusal_share 0.05 of 120 pairs
    by_id = {p["passage_id"]: p for p in retriever.passages}
    for record in refusals:
        assert record["messages"][-1]["content"] == REFUSAL and record["id"].endswith("~refusal")
        shown = [by_id[i] for i in record["passages"]]
        answer = next(p["answer"] for p in pairs if p["id"] == record["id"].removesuffix("~refusal"))
        assert len(shown) == RAFT.passages and all(p["doc"] != record["doc"] for p in shown)
        assert all(grounding_score(answer, p["text"]) < 0.5 for p in shown)   # none of them answers


def test_raft_records_are_deterministic_and_follow_the_seed(built):
    from faqforge.dataset.raft import raft_records
    retriever, pairs = built
    first = raft_records(pairs, retriever, SYSTEM, RAFT, seed=0)
    assert first == raft_records(pairs, retriever, SYSTEM, RAFT, seed=0)
    assert [r["kind"] for r in first] != [r["kind"] for r in raft_records(pairs, retriever, SYSTEM, RAFT, seed=1)]
    always = raft_records(pairs, retriever, SYSTEM, changed(RAFT, oracle_p=1.0, refusal_share=0.0), seed=0)
    assert {r["kind"] for r in always} == {"oracle"}


def test_quoted_pairs_answer_with_the_quote_and_the_passage_that_holds_it(built):
    from faqforge.dataset.raft import raft_records
    retriever, pairs = built
    quoted = [{**p, "quote": p["answer"].split(",")[1].strip()} for p in pairs[:40]]
    records = raft_records(quoted, retriever, SYSTEM, changed(RAFT, refusal_share=0), seed=0)
    by_id = {p["passage_id"]: p for p in retriever.passages}
    oracles = [(r, p) for r, p in zip(records, quoted) if r["kind"] == "oracle"]
    assert oracles
    for record, pair in oracles:
        n = record["oracle"]
        assert record["messages"][-1]["content"] == f'"{pair["quote"]}" [{n}] {pair["answer"]}'
        assert pair["quote"] in by_id[record["passages"][n - 1]]["text"]
    for record, pair in zip(records, quoted):
        if record["kind"] == "no_oracle":   # the quote is not shown: the answer alone
            assert record["messages"][-1]["content"] == pair["answer"]


def test_evidence_is_the_passage_sentences_that_state_the_answer_verbatim():
    from faqforge.dataset.raft import evidence
    passage = ("Run make setup once. A vLLM server started without --api-key accepts any key, so you do not "
               "need to set the environment variable. Logs go to stderr.")
    garbled = "The server is started with --api-key. The server accepts any key. You need the variable."
    assert evidence(garbled, passage) == ("A vLLM server started without --api-key accepts any key, so you do "
                                          "not need to set the environment variable.")
    # A second sentence joins only when it adds two words of the answer the first lacks; passage order kept.
    two = "Übersetzungen laufen über Nacht. Der Export startet um 6 Uhr als CSV-Datei."
    assert evidence("Der Export ist eine CSV-Datei, Übersetzungen laufen nachts über Nacht.", two) == two
    assert evidence("Der Export ist eine CSV-Datei.", two) == "Der Export startet um 6 Uhr als CSV-Datei."
    assert evidence("Nothing in common here.", passage) is None


def test_evidence_targets_copy_the_oracle_sentence_and_cite_it(built):
    from faqforge.dataset.raft import raft_records
    retriever, pairs = built
    reworded = [{**p, "answer": p["answer"].replace("For ", "Regarding ").replace(" every ", " about every ")}
                for p in pairs[:40]]
    records = raft_records(reworded, retriever, SYSTEM, changed(RAFT, target="evidence", refusal_share=0), seed=0)
    by_id = {p["passage_id"]: p for p in retriever.passages}
    assert {r["kind"] for r in records} == {"oracle", "no_oracle"}
    for record, pair in zip(records, pairs[:40]):
        answer = record["messages"][-1]["content"]
        fact = pair["answer"]                      # the chunk's own sentence, not the re-worded answer
        if record["kind"] == "oracle":
            n = record["oracle"]
            assert answer == f"{fact} [{n}]" and fact in by_id[record["passages"][n - 1]]["text"]
        else:
            assert answer == fact
    with pytest.raises(PipelineError, match=r"params.yaml: split.raft.target: input should be 'answer' or 'evidence'"):
        parse_section("params.yaml", "split", {"raft": {"target": "quote"}})


def test_further_draws_show_the_pair_again_with_other_distractors_and_order(built):
    from faqforge.dataset.raft import raft_records
    retriever, pairs = built
    one = raft_records(pairs, retriever, SYSTEM, changed(RAFT, refusal_share=0), seed=0)
    two = raft_records(pairs, retriever, SYSTEM, changed(RAFT, refusal_share=0), seed=0, draws=2)
    assert [r for r in two if "draw" not in r] == one                  # the first draw is the single draw
    again = [r for r in two if r.get("draw") == 2]
    assert len(again) == len(pairs) and all(r["id"] == f"{r['pair_id']}~draw2" for r in again)
    first = {r["id"]: r for r in one}
    redrawn = sum(r["passages"] != first[r["pair_id"]]["passages"] for r in again)
    assert redrawn > 0.5 * len(again)                                   # other distractors or another order
    for record in again:
        pair = next(p for p in pairs if p["id"] == record["pair_id"])
        assert record["messages"][:-1][-1]["content"].endswith(f"Question: {pair['question']}")
        if record["kind"] == "oracle":
            assert citations(record["messages"][-1]["content"]) == [record["oracle"]]


def test_retrieved_order_shows_the_passages_as_the_retriever_ranks_them(built):
    from faqforge.dataset.raft import raft_records
    retriever, pairs = built
    records = raft_records(pairs, retriever, SYSTEM, changed(RAFT, order="retrieved", refusal_share=0.2), seed=0)
    ranking = retriever.search([p["question"] for p in pairs], len(retriever.passages))
    rank = {p["question"]: {h["passage_id"]: h["rank"] for h in hits} for p, hits in zip(pairs, ranking)}
    kinds = Counter()
    for record in records:
        ranks = [rank[record["question"]].get(i, len(retriever.passages)) for i in record["passages"]]  # unranked: last
        if record["kind"] == "oracle" and ranks[record["oracle"] - 1] > RAFT.passages:
            del ranks[record["oracle"] - 1]    # an oracle outside the retriever's top k: placed at random
            kinds["oracle missed"] += 1
        else:
            kinds[record["kind"]] += 1
        assert ranks == sorted(ranks), record["id"]
    # These questions name their topic, so the oracle is in the retriever's top k and kept in its place.
    assert kinds["oracle"] > 0.9 * (kinds["oracle"] + kinds["oracle missed"])
    assert kinds["no_oracle"] >= 10 and kinds["refusal"] >= 10
    with pytest.raises(PipelineError, match=r"params.yaml: split.raft.order: input should be 'retrieved' or 'shuffled'"):
        parse_section("params.yaml", "split", {"raft": {"order": "random"}})


def test_an_oracle_the_retriever_misses_is_not_always_shown_last(built):
    """Shown last, it would teach the model that the last passage answers; at answer time
    the retriever does not show it at all."""
    from faqforge.dataset.raft import raft_records
    retriever, pairs = built
    vague = [{**p, "question": f"What should I know? ({p['id']})"} for p in pairs]   # matches no passage
    records = raft_records(vague, retriever, SYSTEM, changed(RAFT, order="retrieved", oracle_p=1.0,
                                                              refusal_share=0), seed=0)
    assert {r["oracle"] for r in records} == {1, 2, 3}
    assert max(sum(r["oracle"] == n for r in records) for n in (1, 2, 3)) < 0.5 * len(records)


def run_split(tmp_path, context):
    """The split stage in a scratch directory, on a small qa_augmented.jsonl."""
    pairs = [{"id": "a1", "group": "a", "doc": "data/docs/a.md", "chunk_id": "a.md#0", "question": "How do I back up?",
              "answer": "Run the backup job nightly."},
             {"id": "a2", "group": "a", "doc": "data/docs/a.md", "chunk_id": "a.md#0", "copy_of": "a1",
              "question": "What is the way to back up?", "answer": "Run the backup job nightly."},
             {"id": "b1", "group": "b", "doc": "data/docs/b.md", "chunk_id": "b.md#0",
              "instruction": "Summarise the upload rules.", "input": "Uploads over 2 GB fail.",
              "output": "Uploads must stay under 2 GB."}]
    pairs += [{"id": f"c{i}", "group": f"c{i}", "doc": "data/docs/c.md", "chunk_id": "c.md#0",
               "question": f"Question {i}?", "answer": f"Answer {i}."} for i in range(12)]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "qa_augmented.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["split"]["context"] = context
    write_params(tmp_path, params)
    return subprocess.run([sys.executable, str(ROOT / "stages" / "split.py")], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})


def test_closed_book_gives_the_question_alone_exactly_as_before(tmp_path):
    result = run_split(tmp_path, "closed_book")                     # no data/index/ needed
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for name in ("train", "val")
               for line in (tmp_path / "data" / f"{name}.jsonl").read_text().splitlines()]
    system = section("split").system_prompt
    assert len(records) == 15
    by_id = {r["id"]: r for r in records}
    assert by_id["a2"] == {"id": "a2", "group": "a", "copy_of": "a1", "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": "What is the way to back up?"},
        {"role": "assistant", "content": "Run the backup job nightly."}]}
    assert by_id["b1"] == {"id": "b1", "group": "b", "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": "Summarise the upload rules.\n\nUploads over 2 GB fail."},
        {"role": "assistant", "content": "Uploads must stay under 2 GB."}]}
    assert all(set(r) <= {"id", "group", "copy_of", "messages"} for r in records)
    metrics = json.loads((tmp_path / "metrics" / "split.json").read_text())
    assert metrics["context"] == "closed_book" and "raft" not in metrics


def test_raft_without_an_index_and_an_unknown_context_are_clear_errors(tmp_path):
    result = run_split(tmp_path, "raft")
    assert result.returncode != 0 and "data/index/index.json: no retrieval index there" in result.stderr
    assert "dvc repro index" in result.stderr
    other = tmp_path / "other"
    other.mkdir()
    result = run_split(other, "open_book")
    assert result.returncode != 0 and "split.context: input should be 'raft' or 'closed_book' (got 'open_book')" in result.stderr
