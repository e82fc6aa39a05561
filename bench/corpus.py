"""The whole pipeline on a documentation set nobody here wrote: how the arms fare
beyond the sample corpus.

    .venv/bin/python -m bench.corpus [git] [--dir DIR]

Builds a project in DIR (default: a new temporary folder, kept, printed) from this
checkout's dvc.yaml, params.yaml, prompts.yaml, stages/ and faqforge/, with the documents of a
public Debian documentation package and the eval and calibration questions written
for it by hand in bench/corpora/<name>/ (from the package's FAQ and by reading it),
then runs `dvc repro` stage by stage with the embedded model and prints each stage's
time, the arms (token F1 with its interval, refusals) and the verdict, as the default
run reports them. The package comes from an installed copy or `apt-get download` (a
Debian mirror, as the machine's package manager reaches it); nothing else is fetched.

Corpus `git`: five pages of Git's own manual from the `git-doc` package (gitfaq,
gittutorial, giteveryday, gitignore, gitcredentials; about 11,000 words of HTML,
GPL-2.0, like the sample corpus in size), 29 eval questions (4 the pages do not
answer) and 16 calibration questions (6). About 17 minutes on 2 cores (bench/README.md,
"A second corpus").
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPORA = {
    "git": {"package": "git-doc", "folder": "usr/share/doc/git-doc",
            "files": ["gitfaq.html", "gittutorial.html", "giteveryday.html", "gitignore.html", "gitcredentials.html"],
            "domain": "Git, the distributed version control system",
            "assistant": "You are the Git help assistant. Answer questions about Git briefly and accurately."},
}


def package_files(spec, scratch):
    """The corpus's documents: from the installed package, or its .deb unpacked in `scratch`."""
    installed = Path("/") / spec["folder"]
    if all((installed / name).is_file() for name in spec["files"]):
        return [installed / name for name in spec["files"]]
    subprocess.run(["apt-get", "download", spec["package"]], cwd=scratch, check=True, capture_output=True)
    deb = next(Path(scratch).glob(f"{spec['package']}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(scratch) / "root")], check=True)
    return [Path(scratch) / "root" / spec["folder"] / name for name in spec["files"]]


def make_project(name, project):
    spec, corpus = CORPORA[name], ROOT / "bench" / "corpora" / name
    project.mkdir(parents=True, exist_ok=True)
    for file in ("dvc.yaml", "params.yaml", "prompts.yaml"):
        shutil.copy(ROOT / file, project / file)
    for folder in ("stages", "faqforge"):   # dvc.yaml's deps: the stages and the modules they import
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    docs, evals = project / "data" / "docs", project / "data" / "eval"
    docs.mkdir(parents=True)
    evals.mkdir()
    with tempfile.TemporaryDirectory() as scratch:
        for path in package_files(spec, scratch):
            shutil.copy(path, docs / path.name)
    for file in ("evalset.json", "calibration.json"):
        shutil.copy(corpus / file, evals / file)
    (evals / "grades.jsonl").write_text("")
    (project / "data" / "review.jsonl").write_text("")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["generate"]["domain"] = spec["domain"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    prompts = yaml.safe_load((project / "prompts.yaml").read_text())
    prompts["split"]["system_prompt"] = spec["assistant"]
    (project / "prompts.yaml").write_text(yaml.safe_dump(prompts, sort_keys=False, allow_unicode=True))
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=project, check=True)


def run_stages(project):
    """Each stage of dvc.yaml in order, `dvc repro <stage>`: {stage: seconds}."""
    stages = list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])
    # the copy's faqforge, and this interpreter's environment for the stages' `python` (activated or not)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    times, env = {}, {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(project), "PATH": path}
    for stage in stages:
        start = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=project,
                                capture_output=True, text=True, env=env)
        times[stage] = time.monotonic() - start
        if result.returncode:
            sys.exit(f"stage {stage} failed in {project}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        print(f"{stage}: {times[stage]:.0f} s", flush=True)
    return times


def summary(project):
    from faqforge.evaluation.eval_report import verdict_line
    from faqforge.evaluation.scores import ARM_NAMES
    metrics = json.loads((project / "metrics" / "eval.json").read_text())
    lines = ["", "| arm | token F1 (95% CI) | refuses | false refusals |", "|---|---|---|---|"]
    for arm, m in sorted(metrics["arms"].items(), key=lambda item: -item[1]["f1"]["mean"]):
        lo, hi = m["f1"]["ci95"]
        lines.append(f"| {ARM_NAMES[arm]} | {m['f1']['mean']:.3f} ({lo:.3f}..{hi:.3f}) | "
                     f"{m['refusal_rate']:.0%} | {m['false_refusal_rate']:.0%} |")
    retrieval = metrics["retrieval"]
    lines += ["", verdict_line(metrics).replace("**", ""), "",
              f"retrieval: the top {retrieval['k']} passages support {retrieval['eval_supported']:.0%} of the "
              f"{retrieval['questions']} answerable references; abstention {retrieval.get('abstention')}"]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", default="git", choices=sorted(CORPORA))
    parser.add_argument("--dir", type=Path, help="the project folder to create (default: a new temporary one)")
    args = parser.parse_args()
    project = args.dir or Path(tempfile.mkdtemp(prefix=f"faqforge-{args.corpus}-"))
    print(f"project: {project}", flush=True)
    make_project(args.corpus, project)
    times = run_stages(project)
    print(f"\nall stages: {sum(times.values()):.0f} s")
    print(summary(project))


if __name__ == "__main__":
    main()
