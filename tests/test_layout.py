import subprocess

import yaml

from conftest import ROOT

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
