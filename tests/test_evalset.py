"""The human-written eval set is true to the product: big enough, spread over every
document, with questions the documents do not answer, and no reference naming a
params.yaml key, file or command that no longer exists."""

import json
import re
import subprocess

import pytest
import yaml

from faqforge.core.io import PipelineError, read_evalset
from faqforge.core.sections import Decontaminate
from faqforge.refinement.decontaminate import contamination
from tests.support.project import ROOT

EVALSET = ROOT / "data" / "eval" / "evalset.json"
CALIBRATION = ROOT / "data" / "eval" / "calibration.json"   # where the index stage chooses the bot's abstention
DOCS = ROOT / "data" / "docs"
SECTIONS = set(yaml.safe_load((ROOT / "params.yaml").read_text()))

_KEY = re.compile(r"(?<![\w/.-])([a-z_]+(?:\.[a-z_0-9]+)+)(?![\w/])")
_PATH = re.compile(r"(?<![\w:/.-])(\.?[\w.-]+(?:/[\w.<>-]*)+)")
_FILE = re.compile(r"(?<![\w/.-])([\w-]+\.(?:ya?ml|jsonl?|lock|txt|toml|md|py))\b")
TOP = {p.name for p in ROOT.iterdir()}
_COMMAND = re.compile(r"\b(make|dvc|python -m faqforge)((?:\s+(?:-{1,2}[\w-]+(?:=\S+)?|[\w.<>=/:@-]+))+)")


def merged_params():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, section in yaml.safe_load((ROOT / "prompts.yaml").read_text()).items():
        params.setdefault(name, {}).update(section)
    return params


def tracked_paths():
    """Files in git, outputs dvc.yaml declares, and files a .gitignore keeps out on purpose (.dvc/config.local)."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    outs = re.findall(r"^\s+- ([\w./-]+)(?::|$)", (ROOT / "dvc.yaml").read_text(), re.M)
    ignored = [f"{p.parent.relative_to(ROOT)}/{line.strip('/')}" for p in ROOT.glob("*/.gitignore")
               for line in p.read_text().split() if not line.startswith("#")]
    return set(files) | set(outs) | set(ignored)


def code_text():
    """The product's own code and build files: a file name it writes or reads is named in there."""
    parts = [p.read_text() for p in (ROOT / "faqforge").rglob("*.py")]
    parts += [p.read_text() for p in (ROOT / "stages").glob("*.py")]
    return "\n".join(parts + [(ROOT / name).read_text() for name in ("Makefile", "dvc.yaml", ".gitignore")])


def dvc_command_is_valid(args):
    """Whether `dvc ARGS` names existing subcommands, and flags the last of them takes,
    by dvc's own parser as installed (other words are arguments, or the prose after them)."""
    import argparse

    from dvc.cli.parser import get_main_parser
    parser, words = get_main_parser(), list(args)
    while True:
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not commands:
            break
        if not words or words[0] not in commands[0].choices:
            return False
        parser = commands[0].choices[words.pop(0)]
    return all(w.split("=")[0] in parser._option_string_actions for w in words if w.startswith("-"))


def stale_names(text, params, paths, code):
    """What a text names that the product no longer has: params keys (section.key...), files and
    folders (a path, or a file name), make targets, faqforge commands and dvc commands with their flags."""
    found = []
    for key in _KEY.findall(text):
        parts = key.split(".")
        if parts[0] in SECTIONS:
            node = params
            for part in parts:
                if not isinstance(node, dict) or part not in node:
                    found.append(f"params key {key}")
                    break
                node = node[part]
    for path in _PATH.findall(text):
        path = path.rstrip(".")
        if "<" in path or path.split("/")[0] not in TOP:
            continue      # a template (data/<stage>_dropped.jsonl), prose (train/validation), a URL, a network
        clean = path.strip("/")
        if not any(p == clean or p.startswith(clean + "/") or clean.startswith(p + "/") for p in paths):
            found.append(f"path {path}")
    for name in _FILE.findall(text):
        if not any(p == name or p.endswith("/" + name) for p in paths) and name not in code:
            found.append(f"file {name}")
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    from faqforge.__main__ import COMMANDS
    for tool, rest in _COMMAND.findall(text):
        words = [w for w in rest.split() if not w.endswith(",")] if tool != "dvc" else rest.split()
        words = [w.rstrip(".,;") for w in words]
        if tool == "make" and words[0] not in targets:
            found.append(f"make target {words[0]}")
        elif tool == "python -m faqforge" and words[0] not in COMMANDS:
            found.append(f"command faqforge {words[0]}")
        elif tool == "dvc" and not dvc_command_is_valid([w.replace("<", "").replace(">", "") for w in words]):
            found.append(f"command dvc {' '.join(words)}")
    return found


@pytest.fixture(scope="module")
def context():
    return merged_params(), tracked_paths(), code_text()


def test_the_staleness_check_finds_a_vanished_key_file_and_command(context):
    params, paths, code = context
    assert stale_names("Set teacher.concurrency to auto and augment.paraphrases to 0.", *context) == []
    assert stale_names("Set teacher.parallel_requests to 8.", *context) == ["params key teacher.parallel_requests"]
    assert stale_names("It is in data/eval/predictions.jsonl and models/adapter/prompt.json.", *context) == []
    assert stale_names("Look in data/eval/answers.jsonl.", *context) == ["path data/eval/answers.jsonl"]
    assert stale_names("Edit hyperparams.yaml first.", *context) == ["file hyperparams.yaml"]
    assert stale_names("Run make test, then dvc exp run -S finetune.seed=1 and dvc metrics diff.", *context) == []
    assert stale_names("Run make tests.", *context) == ["make target tests"]
    assert stale_names("Run python -m faqforge grade.", *context) == ["command faqforge grade"]
    assert stale_names("Run dvc exp launch now.", *context)[0].startswith("command dvc exp launch")
    assert stale_names("Run dvc gc --everything.", *context) == ["command dvc gc --everything"]


def test_no_reference_names_a_key_file_or_command_that_no_longer_exists(context):
    stale = {}
    for i, item in enumerate(json.loads(EVALSET.read_text())):
        found = stale_names(item["question"] + " " + item["answer"], *context)
        if found:
            stale[i] = found
    assert not stale, f"eval items naming what the product no longer has: {stale}"


def test_the_eval_set_is_big_spread_over_every_document_and_asks_what_the_documents_do_not_answer():
    items = read_evalset(EVALSET)
    unanswerable = [x for x in items if not x.get("answerable", True)]
    assert len(items) >= 80 and len(unanswerable) >= 0.1 * len(items)
    documents = {p.name for p in DOCS.iterdir() if p.is_file()}
    cited = [d for x in items for d in x.get("docs", [])]
    assert all(x["docs"] for x in items if x.get("answerable", True)), "every answerable item names its documents"
    assert set(cited) <= documents, f"documents that do not exist: {set(cited) - documents}"
    assert documents <= set(cited), f"documents no question is answered from: {documents - set(cited)}"
    assert len({x["question"].strip().lower() for x in items}) == len(items)
    assert all(len(x["question"]) <= 100 and "\n" not in x["question"] for x in items)   # one line, as asked


def test_the_calibration_questions_are_true_and_none_is_an_eval_question(context):
    """The abstention threshold is tuned on data/eval/calibration.json, so none of its
    questions may be an eval question under the rules that keep training pairs off the
    eval set (the eval figures would be tuned on the test), and it must hold both kinds."""
    calibration, items = read_evalset(CALIBRATION), read_evalset(EVALSET)
    unanswerable = [x for x in calibration if not x.get("answerable", True)]
    assert len(calibration) - len(unanswerable) >= 20 and len(unanswerable) >= 10
    pairs = [{"id": str(i), **x} for i, x in enumerate(calibration)]   # a refusal is no leak; its question may be
    clean, leaked = contamination(pairs, items, Decontaminate())
    assert not leaked, f"calibration questions that are eval questions: {[p['question'] for p in leaked]}"
    stale = {x["question"]: found for x in calibration if (found := stale_names(x["question"] + " " + x["answer"],
                                                                              *context))}
    assert not stale and {d for x in calibration for d in x["docs"]} <= {p.name for p in DOCS.iterdir()}


def test_decontamination_keeps_working_against_it_and_a_training_refusal_is_no_leak():
    items = read_evalset(EVALSET)
    pairs = [{"id": "copy", "question": items[3]["question"], "answer": "whatever"},
             {"id": "refusal", "question": "How do I bake bread?", "answer": "The documents do not cover this."},
             {"id": "fine", "question": "How do I bake bread?", "answer": "Mix flour and water."}]
    clean, leaked = contamination(pairs, items, Decontaminate())
    assert [p["id"] for p in leaked] == ["copy"] and [p["id"] for p in clean] == ["refusal", "fine"]


@pytest.mark.parametrize("item, message", [
    ({"question": "q?", "answer": "a", "answerable": "no"}, '"answerable" must be true or false'),
    ({"question": "q?", "answer": "a", "docs": "faq.txt"}, '"docs" must be a list'),
    ({"question": "q?", "answer": "a", "docs": ["faq.txt"], "answerable": False}, 'marked "answerable": false'),
])
def test_a_malformed_item_is_named(tmp_path, item, message):
    path = tmp_path / "evalset.json"
    path.write_text(json.dumps([{"question": "ok?", "answer": "yes"}, item]))
    with pytest.raises(PipelineError, match=re.escape(f"{path}: item 1") + ".*" + re.escape(message)):
        read_evalset(path)


def test_dvc_commands_are_checked_by_dvcs_own_parser():
    assert dvc_command_is_valid(["remote", "add", "-d", "storage", "s3://bucket/path"])
    assert not dvc_command_is_valid(["remote", "attach", "storage"])


@pytest.mark.parametrize("name", ["git"])
def test_a_second_corpus_has_its_own_true_questions(name):
    """bench/corpus.py's question sets: well-formed, each answer from one of the pages
    the bench fetches, questions the pages do not answer in both, and no calibration
    question that is an eval question."""
    from bench.corpus import CORPORA
    folder = ROOT / "bench" / "corpora" / name
    items, calibration = read_evalset(folder / "evalset.json"), read_evalset(folder / "calibration.json")
    for questions in (items, calibration):
        assert {d for x in questions for d in x["docs"]} <= set(CORPORA[name]["files"])
        assert any(not x.get("answerable", True) for x in questions)
        assert all(x["docs"] for x in questions if x.get("answerable", True))
    assert not contamination([{"id": str(i), **x} for i, x in enumerate(calibration)], items, Decontaminate())[1]
