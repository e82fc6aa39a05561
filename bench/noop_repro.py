"""How long a `dvc repro` with nothing to do takes, after a full run.

    .venv/bin/python -m bench.noop_repro

Baseline, measured in the same run: `dvc version`, i.e. DVC's own start-up
cost. The figure that matters is the absolute time (target: under 10 s) and
the ratio says how much of it is DVC start-up versus checking the pipeline.
It refuses to start unless `dvc status` says the pipeline is up to date.
"""

import os
import subprocess
import sys
import time
from pathlib import Path


def timed(*cmd, repeat=3):
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    best = float("inf")
    for _ in range(repeat):
        start = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        best = min(best, time.monotonic() - start)
    return best, out.stdout


def main():
    _, status = timed("dvc", "status", repeat=1)
    if "up to date" not in status:   # a real repro would run (finetune alone takes many minutes)
        sys.exit(f"dvc status: the pipeline is not up to date, so `dvc repro` would run stages; run it to "
                 f"completion first (or `dvc checkout` after an interrupted one):\n{status}")
    baseline, _ = timed("dvc", "version")
    noop, out = timed("dvc", "repro")
    if "Running stage" in out:
        sys.exit("dvc repro ran a stage: run the pipeline to completion first")
    print(f"dvc version (baseline): {baseline:.2f} s")
    print(f"no-op dvc repro:        {noop:.2f} s  ({noop / baseline:.1f}x baseline; target < 10 s)")


if __name__ == "__main__":
    main()
