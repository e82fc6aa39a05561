"""The retrieval encoder's training: its examples (faqforge.dataset.encoder_pairs)
and the fine-tuning itself (faqforge.training.encoder), on a tiny random encoder
with the embedded encoder's real tokenizer."""

import shutil
from types import SimpleNamespace

import pytest

from faqforge.core.io import PipelineError
from faqforge.core.sections import Decontaminate
from faqforge.dataset.encoder_pairs import encoder_examples
from faqforge.documents.retrieval import Retriever, build_index, chunk_passages, indexed_text
from faqforge.models.encoders import encoder_directory
from faqforge.training.encoder import train_encoder
from tests.support.corpus import CHUNKS, INDEX
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
    assert skipped == [{"id": "p4", "question": "Where is it?", "why": "its chunk has no passage in the index"}]
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
    """A 2-layer random BERT of width 32 with all-MiniLM-L6-v2's tokenizer, mean-pooled."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel
    real = encoder_directory("embedded:all-minilm-l6-v2")
    bert = tmp_path / "bert"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(bert)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(real / name, bert / name)
    encoder = SentenceTransformer(modules=[Transformer(str(bert), max_seq_length=64), Pooling(32, "mean")],
                                  device="cpu")
    encoder.save_pretrained(str(tmp_path / "tiny"))
    return tmp_path / "tiny"


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
