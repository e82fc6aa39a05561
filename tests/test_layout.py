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
