"""The review screen's API over real HTTP on 127.0.0.1: filters, decisions, refusals,
a person's own pairs and imports, and two writers posting at once."""

import json
import threading
import urllib.request

import pytest

from faqforge.core.reasons import REASONS
from faqforge.dataset.decisions import human_pair_id, read_decisions
from faqforge.review.app import create_review_app
from faqforge.review.store import Store
from tests.support.http import call, running
from tests.support.project import ROOT

CHUNK = {"chunk_id": "c1", "doc": "data/docs/remote-storage.txt", "section": "Remotes", "pages": None,
         "text": "A remote is where DVC stores data. Run dvc push after adding a remote. Pulling works the same way."}


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def project(tmp_path):
    curated = [{"id": f"c1-{k}", "chunk_id": "c1", "doc": CHUNK["doc"], "question": f"How do I push data, take {k}?",
                "answer": "Run dvc push after adding a remote.", "grounding": 1.0,
                "judge": {"result": "YES" if k % 2 == 0 else "NO", "score": k % 6, "reason": "it says so"}}
               for k in range(12)]
    curated.append({"id": "c2-0", "chunk_id": "c2", "doc": "data/docs/faq/faq.md", "question": "Où sont les données ?",
                    "answer": "Dans data/docs/.", "grounding": 0.9, "judge": {"result": "YES", "score": 5}})
    write_jsonl(tmp_path / "data/qa_curated.jsonl", curated)
    write_jsonl(tmp_path / "data/chunks.jsonl", [CHUNK])
    write_jsonl(tmp_path / "data/curate_dropped.jsonl", [
        {"id": "c1-20", "chunk_id": "c1", "doc": CHUNK["doc"], "question": "Who runs operations?",
         "answer": "Write to ops.lead@example.org.", "dropped_by": "curate", "reason": "personal data", "why": "email"},
        {"id": "c1-21", "chunk_id": "c1", "doc": CHUNK["doc"], "question": "How do I pull data?",
         "answer": "Pulling works the same way.", "dropped_by": "curate", "reason": "judge NO",
         "why": "judge NO (verdict NO, score 1, p_yes None)"}])
    write_jsonl(tmp_path / "data/dedup_dropped.jsonl", [
        {**curated[1], "dropped_by": "dedup", "reason": "near duplicate", "duplicate_of": "c1-0", "why": "92 >= 90"}])
    evalset = json.loads((ROOT / "data/eval/evalset.json").read_text())
    (tmp_path / "data/eval").mkdir()
    (tmp_path / "data/eval/evalset.json").write_text(json.dumps(evalset))
    return tmp_path




@pytest.fixture
def served(project):
    store = Store(project, "ana")
    with running(create_review_app(store)) as url:
        yield store, url.removesuffix("/v1")


def test_filters_pages_and_the_detail_with_its_supporting_sentence(served):
    _, url = served
    status, page = call(url, "/api/pairs?size=5")
    assert status == 200 and page["total"] == 15 and len(page["rows"]) == 5
    assert call(url, "/api/pairs?verdict=NO")[1]["total"] == 6
    assert call(url, "/api/pairs?min_score=4&max_score=5")[1]["total"] == 5  # scores 4, 5, 4, 5 and the French one
    assert call(url, "/api/pairs?state=dropped")[1]["total"] == 3  # curate's two, dedup's one
    [row] = call(url, "/api/pairs?reason=judge%20NO")[1]["rows"]     # by the code a stage dropped it with
    assert row["id"] == "c1-21" and row["drop_meaning"] == "the teacher judged the pair wrong or unsupported"
    assert call(url, "/api/pairs?reason=near%20duplicate")[1]["rows"][0]["duplicate_of"] == "c1-0"
    assert call(url, "/api/facets")[1]["reasons"] == [
        ["near duplicate", 1, REASONS["near duplicate"]], ["personal data", 1, REASONS["personal data"]],
        ["judge NO", 1, REASONS["judge NO"]]]
    assert call(url, "/api/pairs?source=faq")[1]["rows"][0]["id"] == "c2-0"
    assert call(url, "/api/pairs?q=donn%C3%A9es")[1]["total"] == 1  # non-ASCII search
    status, pair = call(url, "/api/pairs/c1-0")
    assert status == 200 and pair["section"] == "Remotes" and pair["duplicates_of_it"][0]["id"] == "c1-1"
    [start, end] = pair["highlight"][0]
    assert pair["chunk"][start:end].strip() == "Run dvc push after adding a remote."
    assert call(url, "/api/pairs/nope")[0] == 404


def test_decisions_are_written_and_refused_rescues_say_why(served, project):
    store, url = served
    assert call(url, "/api/decisions", {"pair_id": "c1-2", "action": "reject"})[1]["error"].startswith(
        "decision: a reject needs a reason")
    status, row = call(url, "/api/decisions", {"pair_id": "c1-2", "action": "reject", "reason": "wrong"})
    assert status == 200 and row["review"]["status"] == "rejected"
    status, error = call(url, "/api/decisions", {"pair_id": "c1-20", "action": "rescue"})
    assert status == 409 and "cannot be rescued: it holds personal data" in error["error"]
    assert call(url, "/api/decisions", {"pair_id": "c1-21", "action": "rescue"})[0] == 200
    assert call(url, "/api/decisions", {"pair_id": "c1-1", "action": "rescue"})[0] == 200  # dedup's drop
    evalset = json.loads((ROOT / "data/eval/evalset.json").read_text())
    status, error = call(url, "/api/decisions", {"pair_id": "c1-3", "action": "edit",
                                                 "question": evalset[2]["question"]})
    assert status == 409 and "too close to the eval set" in error["error"] and evalset[2]["question"] in error["error"]
    status, error = call(url, "/api/pairs", {"question": evalset[5]["question"], "answer": evalset[5]["answer"]})
    assert status == 409 and "refused" in error["error"]
    status, added = call(url, "/api/pairs", {"question": "Wie lade ich Daten hoch?", "answer": "Mit dvc push."})
    assert status == 200 and added["id"] == human_pair_id("Wie lade ich Daten hoch?") and added["human"]
    status, result = call(url, "/api/import", {"format": "csv", "text": "question,answer,doc\n"
                                               "How big may a file be?,50 MiB by default.,\n"
                                               f"\"{evalset[0]['question']}\",\"{evalset[0]['answer']}\",\n"})
    assert result["added"] == 1 and result["refused"][0]["row"] == 2
    actions = [(d["pair_id"], d["action"]) for d in read_decisions(project / "data/review.jsonl")]
    assert actions == [("c1-2", "reject"), ("c1-21", "rescue"), ("c1-1", "rescue"),
                       (human_pair_id("Wie lade ich Daten hoch?"), "add"),
                       (human_pair_id("How big may a file be?"), "add")]
    request = urllib.request.Request(url + "/api/decisions", method="POST", data=b'{"pair_id": "c1-4"}',
                                     headers={"Content-Type": "text/plain"})  # what another site's form could send
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 409


def test_two_clients_posting_500_decisions_each_lose_and_garble_nothing(served, project):
    _, url = served
    errors = []

    def post_many(reviewer_pairs):
        for k in range(500):
            pair_id = reviewer_pairs[k % len(reviewer_pairs)]
            status, _ = call(url, "/api/decisions", {"pair_id": pair_id, "action": "edit", "answer": f"answer {k}"})
            if status != 200:
                errors.append(status)
    tabs = [threading.Thread(target=post_many, args=([f"c1-{k}" for k in range(0, 6)],)),
            threading.Thread(target=post_many, args=([f"c1-{k}" for k in range(6, 12)],))]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join(120)
    assert not errors
    decisions = read_decisions(project / "data/review.jsonl")
    assert len(decisions) == 1000 and len(project.joinpath("data/review.jsonl").read_text().splitlines()) == 1000
    status, row = call(url, "/api/pairs/c1-0")
    last = [d for d in decisions if d["pair_id"] == "c1-0"][-1]
    assert row["review"]["answer"] == last["answer"] and row["review"]["decisions"] == 84  # every write kept


def test_a_second_server_on_the_same_project_sees_the_first_ones_decisions(served, project):
    store, url = served
    other = Store(project, "bo")
    other.decide("c1-5", "approve")
    status, row = call(url, "/api/pairs/c1-5")
    assert row["review"]["status"] == "approved" and row["review"]["reviewer"] == "bo"


def test_try_the_bot_streams_an_answer_and_says_when_there_is_no_bot(project, tiny_model):
    from faqforge.answering.backends import ModelServer, TrainedPrompt
    store = Store(project, "ana")
    with running(create_review_app(store)) as url:
        status, error = call(url.removesuffix("/v1"), "/api/chat", {"messages": [{"role": "user", "content": "hi"}]})
        assert status == 409 and "no bot to try" in error["error"]
    built = []

    def bot():  # built on the first question, as `faqforge review` does
        built.append(1)
        layout = {"system_prompt": "Be brief.", "passages": 0}
        return TrainedPrompt(ModelServer(tiny_model, name="tiny"), {"tiny": layout})
    with running(create_review_app(store, bot)) as url:
        request = urllib.request.Request(url.removesuffix("/v1") + "/api/chat", method="POST", headers={
            "Content-Type": "application/json"}, data=json.dumps({"messages": [
                {"role": "user", "content": "How do I push data?"}], "max_tokens": 8, "temperature": 1.0}).encode())
        with urllib.request.urlopen(request) as response:
            events = [json.loads(line) for line in response.read().decode().splitlines()]
    assert built == [1] and events[-1] == {"done": True, "sources": []}
    assert len(events) > 2 and all(e["delta"] for e in events[:-1])  # streamed piece by piece


def test_try_the_bot_with_a_served_model(project, openai_server):
    """--bot-url: the questions go to an OpenAI-compatible server, streamed back through the page's API."""
    from faqforge.review.serve import chat_backend
    from tests.support.openai_server import teacher_reply
    student = project / "student"
    student.mkdir()
    (student / "prompt.json").write_text(json.dumps({"system_prompt": "Be brief.", "context": "closed_book",
                                                     "passages": 0}))
    bot = chat_backend("unused", str(student), str(project / "no-index"), openai_server.base_url, "test-teacher",
                       "NO_SUCH_KEY")
    with running(create_review_app(Store(project, "ana"), bot)) as url:
        request = urllib.request.Request(url.removesuffix("/v1") + "/api/chat", method="POST", headers={
            "Content-Type": "application/json"}, data=json.dumps({"messages": [
                {"role": "user", "content": "How do I push data?"}]}).encode())
        with urllib.request.urlopen(request) as response:
            events = [json.loads(line) for line in response.read().decode().splitlines()]
    sent = openai_server.requests[-1]["body"]
    assert sent["stream"] is True and sent["model"] == "test-teacher"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}  # the student's trained prompt
    assert "".join(e.get("delta", "") for e in events) == teacher_reply(sent["messages"])
    assert events[-1]["done"] is True
