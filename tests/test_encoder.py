"""The retrieval encoder's training: its examples (faqforge.dataset.encoder_pairs)
and the fine-tuning itself (faqforge.training.encoder), on a tiny random encoder
with the embedded encoder's real tokenizer."""

import json
from types import SimpleNamespace

import pytest

from faqforge.core.io import PipelineError
from faqforge.core.sections import Decontaminate
from faqforge.dataset.encoder_pairs import encoder_examples
from faqforge.documents.retrieval import Retriever, build_index, chunk_passages, indexed_text
from faqforge.training.encoder import train_encoder
from tests.support.corpus import CHUNKS, INDEX
from tests.support.encoder import tiny_encoder as build_tiny_encoder
from tests.support.sections import changed

PAIRS = [
    {"id": "p1", "chunk_id": "c1", "doc": CHUNKS[0]["doc"], "question": "Which Python version does faqforge need?",
     "answer": "faqforge needs Python 3.11."},
    {"id": "p2", "chunk_id": "c2", "doc": CHUNKS[1]["doc"], "question": "How do I download the outputs elsewhere?",
     "answer": "dvc pull downloads them on another machine."},
    {"id": "p3", "chunk_id": "c3", "doc": CHUNKS[2]["doc"], "question": "What rank does the adapter have?",
     "answer": "The adapter rank is set by finetune.lora_r, 16 by default."},
]
EVALSET = [{"question": "How do I add a DVC remote for my team?", "answer": "Add a remote with dvc remote add."}]


@pytest.fixture
def bm25(tmp_path):
    build_index(CHUNKS, INDEX, tmp_path / "index")
    return Retriever(tmp_path / "index")


def test_each_question_gets_the_passage_stating_its_answer_and_a_hard_negative_of_another_chunk(bm25):
    examples, skipped = encoder_examples(PAIRS + [{"id": "p4", "chunk_id": "gone", "question": "Where is it?",
                                                   "answer": "Somewhere."}], bm25, EVALSET, Decontaminate())
    assert [e["anchor"] for e in examples] == [p["question"] for p in PAIRS]
    assert skipped == [{"id": "p4", "question": "Where is it?", "reason": "its chunk has no passage in the index"}]
    passages = {p["passage_id"]: p for chunk in CHUNKS for p in chunk_passages(chunk, INDEX.passage_words)}
    by_text = {indexed_text(p): p for p in passages.values()}
    for example, pair in zip(examples, PAIRS):
        positive, negative = by_text[example["positive"]], by_text[example["negative"]]
        assert positive["chunk_id"] == pair["chunk_id"] and pair["answer"].split()[0] in positive["text"]
        assert negative["chunk_id"] != pair["chunk_id"]
        assert example["positive"].startswith(positive["section"] + "\n")   # as the index embeds it


def test_a_pair_that_matches_an_eval_question_stops_the_training(bm25):
    leaked = {**PAIRS[1], "id": "p9", "question": "How do I add a DVC remote for my team ?"}
    with pytest.raises(PipelineError, match=r"1 training pairs match the eval set .* must not train on them"):
        encoder_examples(PAIRS + [leaked], bm25, EVALSET, Decontaminate())


@pytest.fixture
def tiny_encoder(tmp_path):
    return build_tiny_encoder(tmp_path)


def test_a_tiny_encoder_trains_on_the_triples_and_the_index_loads_what_it_saved(bm25, tiny_encoder, tmp_path):
    examples, _ = encoder_examples(PAIRS, bm25, EVALSET, Decontaminate())
    params = SimpleNamespace(epochs=20, batch_size=3, learning_rate=1e-3, warmup_ratio=0.0, seed=0)
    figures = train_encoder(tiny_encoder, examples, tmp_path / "trained", params)
    assert figures["examples"] == 3 and figures["steps"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bert", "index", "tiny", "trained"]  # nothing left over
    assert figures["loss_last"] < figures["loss_first"]           # it learnt the three questions
    dense = changed(INDEX, method="dense", dense={"model": str(tmp_path / "trained")})
    build_index(CHUNKS, dense, tmp_path / "dense")
    hits = Retriever(tmp_path / "dense").search([p["question"] for p in PAIRS], 1)
    assert [h[0]["chunk_id"] for h in hits] == ["c1", "c2", "c3"]  # each question finds its own passage


def retriever_config(encoder, **retriever):
    from faqforge.core.sections import Retriever as RetrieverSection
    from faqforge.core.sections import Split
    return {"retriever": RetrieverSection(base=str(encoder), epochs=2, batch_size=2, **retriever),
            "index": INDEX.model_copy(update={"method": "hybrid"}),
            "split": Split(val_fraction=0.5, seed=0),   # seed 0: p2 on the validation side, p1 and p3 training
            "decontaminate": Decontaminate()}


def test_the_retriever_stage_trains_on_the_training_side_only_and_the_index_loads_its_encoder(
        tiny_encoder, tmp_path, monkeypatch):
    from faqforge.training import retriever as stage
    trained_on = []

    def spy(base, examples, out_dir, params):
        trained_on.extend(examples)
        return train_encoder(base, examples, out_dir, params)
    monkeypatch.setattr(stage, "train_encoder", spy)
    out = tmp_path / "models" / "retriever"
    metrics, skipped = stage.fit_retriever(PAIRS, CHUNKS, EVALSET, retriever_config(tiny_encoder), tmp_path / "s", out)
    assert sorted(e["anchor"] for e in trained_on) == sorted([PAIRS[0]["question"], PAIRS[2]["question"]])
    assert PAIRS[1]["question"] not in {e["anchor"] for e in trained_on}          # the validation pair
    assert not {e["anchor"] for e in trained_on} & {x["question"] for x in EVALSET}
    assert metrics["training"]["steps"] == 2 and metrics["train_pairs"] == 2 and skipped == []
    recall = metrics["val_own_chunk_recall"]
    assert recall["pairs"] == 1 and set(recall) == {"pairs", "bm25", "base", "trained", "hybrid"}
    assert set(recall["hybrid"]) == {"at_1", "at_2"}
    card = json.loads((out / "retriever.json").read_text())
    assert card["base"] == str(tiny_encoder) and card["trained_on"] == "2 training pairs"
    # the index stage embeds with it
    build_index(CHUNKS, changed(INDEX, method="hybrid", dense={"model": str(out)}), tmp_path / "index")
    index = Retriever(tmp_path / "index")
    hits = index.search(["How do I download the outputs elsewhere?"], 2)[0]
    assert len(hits) == 2 and all(-1 <= h["similarity"] <= 1 for h in hits)


def test_the_retriever_stage_refuses_pairs_that_leak_an_eval_question_before_training(tiny_encoder, tmp_path):
    leaked = {**PAIRS[0], "id": "p9", "question": "How do I add a DVC remote for my team?"}   # training side
    out = tmp_path / "retriever"
    with pytest.raises(PipelineError, match="must not train on them"):
        from faqforge.training.retriever import fit_retriever
        fit_retriever(PAIRS + [leaked], CHUNKS, EVALSET, retriever_config(tiny_encoder), tmp_path / "s", out)
    assert not out.exists()
