"""The evaluation over several fine-tuning seeds: how far one run's figures can be trusted.

    .venv/bin/python -m bench.seeds [seed ...]        # default: 0 1 2

Run after `dvc repro` (or `dvc pull`) of the committed pipeline. Each seed is a DVC
experiment run in a temporary copy (`dvc exp run --temp -S finetune.seed=N`): the data
stages come from the cache, finetune and evaluate run again (about 8 minutes each on the
embedded model, 2 cores). The same seed as params.yaml is restored from DVC's run cache.
Prints, per arm, token F1 for every seed with its mean and range, and the bot's paired
difference from the best arm that needs no model; the arms that need no model do not
depend on the seed (same passages), so their range is zero by construction.
"""

import subprocess
import sys
import time

import dvc.api

from faqforge.evaluation.scores import ARM_NAMES, ARMS


def run_seed(seed):
    name = f"seed{seed}-{int(time.time())}"
    start = time.monotonic()
    subprocess.run(["dvc", "exp", "run", "--temp", "-n", name, "-S", f"finetune.seed={seed}"], check=True,
                   stdout=subprocess.DEVNULL)
    return name, time.monotonic() - start


def metric(row, suffix):
    """A metric of an exp_show row by the end of its flattened name (with or without the file prefix)."""
    found = [v for k, v in row.items() if k == suffix or k.endswith(":" + suffix) or k.endswith("." + suffix)]
    return found[0] if found else None


def main():
    seeds = [int(s) for s in sys.argv[1:]] or [0, 1, 2]
    runs = [run_seed(seed) for seed in seeds]
    rows = {row.get("Experiment"): row for row in dvc.api.exp_show(force=True)}
    table = {}
    for (name, seconds), seed in zip(runs, seeds):
        row = rows[name]
        table[seed] = {arm: metric(row, f"arms.{arm}.f1.mean") for arm in ARMS}
        table[seed]["verdict"] = (metric(row, "verdict.delta"), metric(row, "verdict.than"),
                                  metric(row, "verdict.result"))
        print(f"seed {seed}: {name}, {seconds:.0f} s")
    print(f"\ntoken F1 over fine-tuning seeds {', '.join(map(str, seeds))}\n")
    print("| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | range |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for arm in ARMS:
        values = [table[s][arm] for s in seeds]
        if any(v is None for v in values):
            continue
        print(f"| {ARM_NAMES[arm]} | " + " | ".join(f"{v:.3f}" for v in values)
              + f" | {sum(values) / len(values):.3f} | {min(values):.3f} .. {max(values):.3f} |")
    deltas = [table[s]["verdict"][0] for s in seeds]
    print("\nthe bot minus the best arm that needs no model: "
          + ", ".join(f"seed {s} {d:+.3f} ({table[s]['verdict'][2]} {table[s]['verdict'][1]})"
                      for s, d in zip(seeds, deltas))
          + f"; mean {sum(deltas) / len(deltas):+.3f}, range {min(deltas):+.3f} .. {max(deltas):+.3f}")


if __name__ == "__main__":
    main()
