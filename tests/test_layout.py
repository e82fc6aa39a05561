import json
import os
import subprocess
import sys

import yaml

from tests.support.project import ROOT

FOLDERS = ["bench", "cache", "configs", "data", "faqforge", "metrics", "models", "plots", "reports", "stages", "tests"]


def tracked(path):
    return subprocess.run(["git", "ls-files", path], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def test_a_fresh_clone_has_every_top_level_folder_of_the_design():
    assert [folder for folder in FOLDERS if not tracked(folder)] == []


def test_every_directory_output_is_git_ignored_by_the_file_dvc_keeps_next_to_it():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for s in stages.values() for o in s.get("outs", [])]
    for out in (o for o in outs if o.startswith("models/")):
        parent, name = out.rsplit("/", 1)
        assert f"/{name}" in (ROOT / parent / ".gitignore").read_text().split(), out


def test_the_readme_and_the_guide_point_only_at_files_that_exist():
    """Every relative link of README.md and docs/guide.md, and every path the README
    names in backticks that a fresh clone holds (not a run's outputs), exists."""
    import re
    for doc in ("README.md", "docs/guide.md"):
        text = (ROOT / doc).read_text()
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert ((ROOT / doc).parent / target).exists(), f"{doc} links to {target}"
        assert "DESIGN.md" not in text, doc
    readme = (ROOT / "README.md").read_text()
    for path in re.findall(r"`((?:data/docs|data/eval|stages|faqforge|docs|bench)/[\w./-]*\w)`", readme):
        assert (ROOT / path).exists(), path
    assert len(readme.splitlines()) <= 140   # a map: the detail is in docs/guide.md and data/docs/


NO_MODEL = {"top_passage": "the top retrieved passage", "best_sentence": "one sentence of the passages"}


def test_the_readme_quotes_the_committed_evaluation():
    """Every figure of README.md's "Where it stands" is metrics/eval.json's, as the report rounds it."""
    metrics = json.loads((ROOT / "metrics/eval.json").read_text())
    text = " ".join((ROOT / "README.md").read_text().split("**Where it stands.**")[1].split("## ")[0].split())
    arms, verdict = metrics["arms"], metrics["verdict"]

    def f1(arm):
        return f"{arms[arm]['f1']['mean']:.3f}"
    bot = arms[verdict["arm"]]
    unanswerable = metrics["n_unanswerable"]
    refused = round(bot["refusal_rate"] * unanswerable)
    quoted = [
        f"{metrics['n_questions']} hand-written questions of which {unanswerable} the documents do not answer",
        f"the bot scores {f1(verdict['arm'])} (95% CI {bot['f1']['ci95'][0]:.3f}..{bot['f1']['ci95'][1]:.3f})",
        f"against {f1(verdict['than'])} for the best no-model answer, {NO_MODEL[verdict['than']]}",
        f"{verdict['delta']:+.3f} (paired CI {verdict['delta_ci95'][0]:+.3f}..{verdict['delta_ci95'][1]:+.3f})",
        f"top passage {f1('top_passage')}",
        f"on the answerable questions alone it is {verdict['answerable']['delta']:+.3f} "
        f"(CI {verdict['answerable']['delta_ci95'][0]:+.3f}..{verdict['answerable']['delta_ci95'][1]:+.3f})",
        f"and {round(bot['false_refusal_rate'] * (metrics['n_questions'] - unanswerable))} of the "
        f"{metrics['n_questions'] - unanswerable} they do",
        f"The student writing its own answer scores {f1('tuned_rag')}, plain RAG {f1('base_rag')}"
        + (f", closed book {f1('base_closed')}" if "base_closed" in arms else ";"),
        f"picked with the reference's help, {f1('oracle_sentence')}",
        f"refuses {'none' if not refused else refused} of the {unanswerable} questions the documents do not cover",
    ]
    assert verdict["arm"] == "evidence" and verdict["result"] == "beats"
    for phrase in quoted:
        assert phrase in text, f"README.md's Where it stands should say: {phrase}"


def test_tests_and_benchmarks_share_helpers_only_through_tests_support():
    """A test module imports no other test module (nor conftest: fixtures come by name);
    what tests and bench/ share lives in tests/support/, and no bench script edits
    sys.path to reach it: each runs as a module from the project root
    (`python -m bench.dedup`) and imports tests.support like any package."""
    import ast
    tests = sorted((ROOT / "tests").glob("test_*.py")) + [ROOT / "tests" / "conftest.py"]
    for path in tests + sorted((ROOT / "tests" / "support").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                assert not name.split(".")[-1].startswith("test_") and name != "conftest", f"{path.name}: {name}"
    for path in sorted((ROOT / "bench").glob("*.py")):
        assert "sys.path" not in path.read_text(), f"{path.name} edits sys.path"
    modules = [p.stem for p in sorted((ROOT / "bench").glob("*.py")) if p.stem != "__init__"]
    script = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module('bench.' + m)\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-2000:]
