"""A temporary copy of the project for end-to-end tests: the checkout's code,
dvc.yaml and params.yaml, a few sample documents, a small eval set, a tiny
student built in the test and the teacher behind a real OpenAI-compatible
server on 127.0.0.1."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.encoder import tiny_encoder

CHAIN = ["base_model", "ingest", "generate", "curate", "dedup", "decontaminate", "augment", "retriever", "index",
         "split", "finetune", "evaluate"]
# report reads the data stages' outputs, nothing reads it
STAGES = CHAIN[:10] + ["report"] + CHAIN[10:]
DOCS = ["getting-started.md", "installation.txt", "fine-tuning-guide.pdf"]
PLANTED_KEY = "sk-planted-4f9c2e7a1b"
ROOT = Path(__file__).resolve().parents[2]   # the checkout


def env_for(project):
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = str(project)  # the copy's faqforge, not the checkout's
    env["HF_HUB_OFFLINE"] = "1"
    env["OPENAI_API_KEY"] = PLANTED_KEY  # teacher.api_key_env names this variable
    return env


def sh(project, *cmd, check=True):
    result = subprocess.run(cmd, cwd=project, env=env_for(project), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def make_project(root, student, base_url, docs=DOCS, index_method="bm25"):
    for name in ("dvc.yaml", "params.yaml", "prompts.yaml"):
        shutil.copy(ROOT / name, root / name)
    for name in ("stages", "faqforge"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "data" / "docs").mkdir(parents=True)
    (root / "data" / "eval").mkdir()
    (root / "data" / "review.jsonl").write_text("")  # no decisions yet (a dependency of split)
    for doc in docs:
        shutil.copy(ROOT / "data" / "docs" / doc, root / "data" / "docs" / doc)
    full = json.loads((ROOT / "data" / "eval" / "evalset.json").read_text())
    # seven answerable questions and one the documents do not answer
    evalset = full[:7] + [next(item for item in full if not item.get("answerable", True))]
    (root / "data" / "eval" / "evalset.json").write_text(json.dumps(evalset, indent=2))
    # the calibration questions about these documents, and those the documents do not answer
    calibration = [item for item in json.loads((ROOT / "data" / "eval" / "calibration.json").read_text())
                   if all(doc in docs for doc in item["docs"])]
    (root / "data" / "eval" / "calibration.json").write_text(json.dumps(calibration, indent=2))
    (root / "data" / "eval" / "grades.jsonl").write_text("")  # nobody has graded an answer yet
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["teacher"].update(backend="openai", model="test-teacher", base_url=base_url, max_retries=1)
    params["student"]["model"] = student
    params["retriever"]["base"] = str(tiny_encoder())   # the retriever stage trains a tiny encoder
    # BM25 keeps the encoder out of index, split and evaluate (each would load sentence-transformers):
    # the end-to-end run of test_pipeline asks for the default, hybrid
    params["index"]["method"] = index_method
    params["ingest"]["tokenizer"] = student
    params["finetune"].update(max_steps=4, batch_size=4, eval_every=2, max_seq_length=768)
    # the closed-book arms and paraphrasing are off by default (to keep make run short): on here, so every
    # arm and the augment stage's teacher calls run end to end
    params["evaluate"].update(max_new_tokens=8, bootstrap_resamples=200, closed_book=True)
    params["augment"]["paraphrases"] = 1
    params["evaluate"]["judge"]["enabled"] = True   # off by default (the embedded judge fails its controls)
    write_params(root, params)
    sh(root, "git", "init", "-q")
    sh(root, "dvc", "init", "-q")
    return root


def write_params(project, params):
    """params.yaml in `project`, with the project's prompts.yaml beside it unless it has its own."""
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    if not (project / "prompts.yaml").exists():
        shutil.copy(ROOT / "prompts.yaml", project / "prompts.yaml")


def tune(project, **sections):
    """Update params.yaml sections: tune(project, teacher={"concurrency": 2})."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    write_params(project, params)


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def run_stage(project, stage):
    """Run one stage script of the checkout in `project` (no DVC): the CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(ROOT / "stages" / f"{stage}.py")], cwd=project, env=env,
                          capture_output=True, text=True)


@contextlib.contextmanager
def restored(project):
    """A test's changes to a project shared by several tests (committed as its
    baseline), undone afterwards: every file in git back as committed (params,
    prompts, documents, eval set, review and grades files, dvc.lock, metrics,
    reports), files the test added under data/ removed, the outputs checked out
    from DVC's cache; asserted, so the next test finds the project the first one did."""
    try:
        yield project
    finally:
        sh(project, "git", "checkout", "-q", "--", ".")
        sh(project, "git", "clean", "-fdq", "--", "data")
        sh(project, "dvc", "checkout", "-q")
        assert sh(project, "git", "status", "--porcelain").stdout == ""
        assert "up to date" in sh(project, "dvc", "status").stdout
