"""Data hygiene in the ingest stage: personal data and secrets, and language,
before any text reaches the teacher."""

import json

import pytest
import yaml

from faqforge.core.sections import Hygiene as HygieneSection
from faqforge.hygiene.check import Hygiene
from faqforge.hygiene.language import LanguageFilter
from tests.support.corpus import DOCUMENT, PLANTED
from tests.support.project import ROOT, read_jsonl, run_stage, write_params

FRENCH = ("Le pipeline découpe chaque document en morceaux, puis le professeur écrit des questions et des "
          "réponses à partir de chaque morceau. Les paires sont ensuite vérifiées, nettoyées et dédoublonnées "
          "avant l'entraînement du modèle étudiant.")
ENGLISH = ("The pipeline cuts every document into chunks, then the teacher writes questions and answers from "
           "each chunk. The pairs are checked, cleaned and deduplicated before the student model is trained.")
COMMANDS = "```\npip install -r requirements.txt\ndvc remote add -d storage s3://bucket/faqforge\ndvc push\n```\n"


def project(tmp_path, tiny_model, docs, **hygiene):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update(tokenizer=tiny_model, max_tokens=200, overlap_tokens=0, min_tokens=8)
    params["hygiene"].update(hygiene)
    write_params(tmp_path, params)
    (tmp_path / "data/docs").mkdir(parents=True)
    for name, text in docs.items():
        (tmp_path / "data/docs" / name).write_text(text)
    result = run_stage(tmp_path, "ingest")
    assert result.returncode == 0, result.stderr
    return lambda name: read_jsonl(tmp_path / "data" / name), json.loads((tmp_path / "metrics/ingest.json").read_text())


def written(tmp_path):
    """Everything the stage wrote (not the documents it read)."""
    docs = tmp_path / "data/docs"
    return "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*")
                   if p.is_file() and docs not in p.parents and p.name != "params.yaml")


def test_redact_leaves_placeholders_and_locates_every_finding_without_its_value(tmp_path, tiny_model):
    read, metrics = project(tmp_path, tiny_model, {"contacts.md": f"# Contacts\n\n{DOCUMENT}\n"})
    [chunk] = read("chunks.jsonl")
    assert "[EMAIL]" in chunk["text"] and "[IBAN]" in chunk["text"] and "[PRIVATE_KEY]" in chunk["text"]
    everything = written(tmp_path)
    assert not [kind for kind, value in PLANTED.items() if value in everything]
    rows = read("ingest_pii.jsonl")
    assert {r["kind"] for r in rows} == set(PLANTED)
    assert all(r["doc"] == "data/docs/contacts.md" and r["action"] == "redact" and r["end"] > r["start"]
               and r["section"] == "Contacts" for r in rows)
    assert metrics["pii"]["found_by_kind"] == {kind: 1 for kind in PLANTED}
    assert metrics["pii"]["by_action"] == {"redact": len(PLANTED)}


def test_drop_removes_the_chunk_and_names_the_kinds(tmp_path, tiny_model):
    read, metrics = project(tmp_path, tiny_model, {"a.md": f"# Clean\n\n{ENGLISH}\n\n# Contacts\n\n{DOCUMENT}\n"},
                            pii={"action": "drop", "kinds": ["email", "phone", "ip_address", "credit_card", "iban",
                                                             "credential"], "overrides": {"ip_address": "keep"}})
    assert [c["section"] for c in read("chunks.jsonl")] == ["Clean"]
    [gone] = read("ingest_dropped.jsonl")
    assert gone["reason"] == "personal data" and gone["section"] == "Contacts"
    assert "api_key" in gone["why"] and "email" in gone["why"] and "ip_address" not in gone["why"]
    assert PLANTED["email"] not in written(tmp_path) and PLANTED["ip_address"] in gone["text"]  # kept kind stays
    assert metrics["pii"]["records_dropped"] == 1 and metrics["dropped"] == 1


@pytest.mark.parametrize("languages, kept", [(["en"], ["English", "Setup"]), (["en", "fr"], ["English", "Français", "Setup"])])
def test_a_french_chunk_is_dropped_or_kept_by_the_language_list_and_code_is_never_unknown(
        tmp_path, tiny_model, languages, kept):
    read, metrics = project(tmp_path, tiny_model, {"mixed.md": f"# English\n\n{ENGLISH}\n\n# Français\n\n{FRENCH}\n\n"
                                                               f"# Setup\n\n{COMMANDS}"}, languages=languages)
    assert [c["section"] for c in read("chunks.jsonl")] == kept
    dropped = read("ingest_dropped.jsonl")
    assert [(d["section"], d["reason"]) for d in dropped] == ([("Français", "language")] if languages == ["en"] else [])
    if dropped:
        assert dropped[0]["why"].startswith("language fr") and metrics["language"]["dropped_by_language"] == {"fr": 1}


def test_default_languages_come_from_generate_language():
    assert LanguageFilter(HygieneSection(languages=None), "French").languages == {"fr"}
    from faqforge.core.io import PipelineError
    with pytest.raises(PipelineError, match="set hygiene.languages"):
        LanguageFilter(HygieneSection(languages=None), "Klingon")


def test_short_technical_pairs_are_undetermined_not_dropped():
    gate = Hygiene(HygieneSection(pii={"action": "redact"}, languages=["en"], min_words=4, min_confidence=0.8),
                   "English")
    for text in ("Run `dvc push`.", "pip install -r requirements.txt && dvc repro", "Set `lora_r: 16`.",
                 "torchrun --nproc_per_node=2 stages/finetune.py", "What is LoRA?"):
        assert gate.check({"answer": text}, {})[2] is None, text
    drop = gate.check({"question": "Comment puis-je vider le cache du professeur ?"}, {})[2]
    assert drop["reason"] == "language" and drop["language"] == "fr" and drop["why"].startswith("language fr ")


# A secret no shape list knows (21 characters, not an AWS key), introduced by a credential word.
SHAPELESS = "AKIAQ7PLANTED9X2KZ4EX"
DEPLOY = f"The deploy job reads the key {SHAPELESS} and the token ghp_0123456789abcdefABCDEF0123 from the vault."


def leaked_values():
    from faqforge.hygiene.pii import find_pii
    from tests.support.openai_server import LEAKED_CONTACTS
    return [LEAKED_CONTACTS[f.start:f.end] for f in find_pii(LEAKED_CONTACTS)]


def pipeline_with_pii(tmp_path, tiny_model, **pii):
    """The data stages and the report on a corpus with planted personal data and
    secrets of every kind, through a teacher that writes more of its own."""
    from tests.support.openai_server import OpenAIServer
    from tests.support.project import make_project, sh, tune
    with OpenAIServer(pii_in_replies=True) as server:
        project = make_project(tmp_path, tiny_model, server.base_url, docs=["getting-started.md"])
        (project / "data/docs/contacts.md").write_text(f"# Contacts\n\n{DOCUMENT}\n\n# Support\n\n{ENGLISH}\n\n"
                                                      f"# Deploy\n\n{DEPLOY}\n")
        tune(project, hygiene={"pii": {"action": "redact", "kinds": ["email", "phone", "ip_address", "credit_card",
                                                                      "iban", "credential"], **pii}})
        sh(project, "dvc", "repro", "report")
    return project, server.requests


@pytest.mark.slow
def test_with_redact_no_planted_value_survives_anywhere_and_the_placeholders_do(tmp_path, tiny_model):
    project, requests = pipeline_with_pii(tmp_path, tiny_model)
    planted = list(PLANTED.values()) + leaked_values() + [SHAPELESS]
    # what the teacher was sent, request by request (the test server logs each one)
    assert requests and not [v for v in PLANTED.values() if v in json.dumps(requests, ensure_ascii=False)]
    assert SHAPELESS not in json.dumps(requests) and any("[SECRET]" in json.dumps(r) for r in requests)
    places = [project / "data/train.jsonl", project / "data/val.jsonl", project / "reports",
              project / "cache/llm", project / "metrics", project / "plots"]
    places += [p for p in (project / "data").glob("*.jsonl")]
    files = [f for place in places for f in ([place] if place.is_file() else place.rglob("*")) if f.is_file()]
    assert any(f.parts[-3:-1] == ("llm", "generate") or "generate" in f.parts for f in files)
    leaks = [(str(f.relative_to(project)), v) for f in files for v in planted if v in f.read_text(errors="replace")]
    assert leaks == []
    train = (project / "data/train.jsonl").read_text() + (project / "data/val.jsonl").read_text()
    assert [p for p in ("[IP_ADDRESS]", "[CREDIT_CARD]", "[IBAN]") if p in train]  # the redacted facts stay
    ingest_rows = read_jsonl(project / "data/ingest_pii.jsonl")
    assert {r["kind"] for r in ingest_rows} == set(PLANTED) | {"secret", "api_key"}
    curate_rows = read_jsonl(project / "data/curate_pii.jsonl")  # the teacher's own leaks, redacted before caching
    assert {r["kind"] for r in curate_rows} >= {"email", "phone", "ip_address", "credit_card", "iban", "api_key",
                                                "aws_key", "password"}
    assert all(r["action"] == "redacted upstream" and "id" in r for r in curate_rows)
    report = (project / "reports/data.md").read_text()
    assert "Personal data and secrets" in report and "data/docs/contacts.md" in report


@pytest.mark.slow
def test_with_drop_the_affected_chunks_and_pairs_are_dropped_with_the_kind_named(tmp_path, tiny_model):
    project, _ = pipeline_with_pii(tmp_path, tiny_model, action="drop")
    chunk, deploy = [d for d in read_jsonl(project / "data/ingest_dropped.jsonl") if d["reason"] == "personal data"]
    assert chunk["section"] == "Contacts" and "email" in chunk["why"] and "private_key" in chunk["why"]
    assert deploy["section"] == "Deploy" and "secret" in deploy["why"] and SHAPELESS not in deploy["text"]
    pairs = [d for d in read_jsonl(project / "data/curate_dropped.jsonl") if d["reason"] == "personal data"]
    assert pairs and all(d["question"] == "How do I reach the operations team?" for d in pairs)
    assert all(k in pairs[0]["why"] for k in ("email", "phone", "credit_card", "iban", "api_key", "password"))
    chunks = (project / "data/chunks.jsonl").read_text()
    assert "Contacts" not in chunks and "Support" in chunks  # the clean section of the same file stays
    everything = "".join(p.read_text(errors="replace") for p in (project / "data").glob("*.jsonl"))
    assert not [v for v in list(PLANTED.values()) + leaked_values() + [SHAPELESS] if v in everything]


@pytest.mark.slow
def test_sub_folders_are_sources_mixed_by_weight_and_the_report_shows_before_and_after(tmp_path, tiny_model):
    from tests.support.openai_server import OpenAIServer
    from tests.support.project import make_project, sh, tune
    with OpenAIServer() as server:
        project = make_project(tmp_path, tiny_model, server.base_url, docs=["getting-started.md", "installation.txt"])
        (project / "data/docs/faq").mkdir()
        (project / "data/docs/installation.txt").rename(project / "data/docs/faq/installation.txt")
        tune(project, split={"mix": {"docs": 0.5, "faq": 2}})
        sh(project, "dvc", "repro", "report")
    mix = json.loads((project / "metrics/split.json").read_text())["mix"]
    assert mix["faq"]["pairs_after"] == 2 * mix["faq"]["pairs_before"] > 0
    assert 0 < mix["docs"]["pairs_after"] < mix["docs"]["pairs_before"]
    train = read_jsonl(project / "data/train.jsonl")
    first_draws = [r for r in train if r.get("kind") != "refusal" and "draw" not in r]  # RAFT: one record a pair
    assert sum("copy_of" in r for r in first_draws) == mix["faq"]["pairs_before"]
    left_out = read_jsonl(project / "data/split_dropped.jsonl")
    assert len(left_out) == mix["docs"]["pairs_before"] - mix["docs"]["pairs_after"]
    assert {d["reason"] for d in left_out} == {"mix: down-weighted"}
    report = (project / "reports/data.md").read_text()
    section = report.split("## Source mix")[1].split("##")[0]
    assert "| faq |" in section and "| docs |" in section and "| 2 |" in section and "| 0.5 |" in section


def test_placeholders_written_in_a_document_are_text_not_findings(tmp_path, tiny_model):
    read, metrics = project(tmp_path, tiny_model, {"docs.md": f"# Redaction\n\n{ENGLISH} An address becomes [EMAIL] "
                                                              "and a key becomes [API_KEY] in the training data.\n"})
    assert read("ingest_pii.jsonl") == [] and metrics["pii"]["found_by_kind"] == {}
    assert "[EMAIL]" in read("chunks.jsonl")[0]["text"]
