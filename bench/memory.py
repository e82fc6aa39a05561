"""Peak memory of the ingest and dedup stages on big inputs: bounded, not growing with the input.

    .venv/bin/python -m bench.memory                  # 2 GiB corpus: about 35 min on 2 cores
    .venv/bin/python -m bench.memory --gib 0.2 --pairs 20000    # a quick look

Each stage runs as its own process (`python stages/<stage>.py` in a scratch
project), and its peak resident memory is read from the kernel when it exits
(wait4's ru_maxrss).

ingest   a generated corpus of Markdown and text files, one of them a single
         file of a tenth of the corpus, at a tenth of the size (the baseline)
         and at full size, with the real tokenizer. Bounded means the ratio
         stays near 1 while the corpus grows tenfold.
dedup    a generated data/qa_curated.jsonl of `--pairs` pairs, each carrying a
         4 kB judge reason, through the stage (which streams the file and holds
         only ids, texts and sort keys) against the same decisions taken on the
         whole records in memory (read_jsonl + near_duplicate_clusters, the stage
         before it streamed), in the same run.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORDS = ("model adapter chunk teacher student pipeline metric remote cache token budget prompt evaluate train "
         "split curate document section page answer question storage version experiment checkpoint").split()


def run_stage(project, *cmd):
    """(seconds, peak RSS in MiB) of one process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{process.stderr.read().decode()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def scratch_project(root):
    root.mkdir(parents=True)
    for name in ("params.yaml", "prompts.yaml"):
        shutil.copy(ROOT / name, root / name)
    return root


def write_corpus(docs, size, rng):
    """Markdown pages of ~8 MiB plus one text file of a tenth of `size`; returns bytes written."""
    paragraphs = [" ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."
                           for _ in range(6)) for _ in range(5000)]
    docs.mkdir(parents=True)
    written, page = 0, 0

    def fill(path, target, heading):
        nonlocal written
        with open(path, "w", encoding="utf-8") as f:
            n = 0
            while n < target:
                block = f"{heading} {n}\n\n" + "\n\n".join(rng.choice(paragraphs) for _ in range(8)) + "\n\n"
                f.write(block)
                n += len(block)
        written += n

    fill(docs / "big-manual.txt", size // 10, "Section")
    while written < size:
        fill(docs / f"page-{page:04d}.md", min(8 << 20, size - written), "## Topic")
        page += 1
    return written


def bench_ingest(work, gib):
    rng = random.Random(0)
    rows = []
    for label, size in (("baseline (1/10 size)", int(gib * 2**30) // 10), ("full size", int(gib * 2**30))):
        project = scratch_project(work / f"ingest-{size}")
        written = write_corpus(project / "data/docs", size, rng)
        seconds, peak = run_stage(project, sys.executable, str(ROOT / "stages/ingest.py"))
        out = (project / "data/chunks.jsonl").stat().st_size
        rows.append((label, written, seconds, peak, out))
        shutil.rmtree(project)
    print("ingest (stages/ingest.py, real tokenizer):")
    for label, written, seconds, peak, out in rows:
        print(f"  {label:22s} corpus {written / 2**30:6.2f} GiB -> chunks.jsonl {out / 2**30:5.2f} GiB in "
              f"{seconds / 60:5.1f} min ({written / 2**20 / seconds:4.2f} MiB/s), peak RSS {peak:7.0f} MiB")
    (_, small, _, small_peak, _), (_, big, _, big_peak, _) = rows
    print(f"  corpus x{big / small:.1f} -> peak RSS x{big_peak / small_peak:.2f} "
          f"({big_peak / (big / 2**20) * 100:.1f}% of the corpus size)")


def bench_dedup(work, n_pairs):
    from faqforge.core.io import write_jsonl
    from tests.support.synthetic import pairs as synthetic_pairs
    project = scratch_project(work / "dedup")
    data = synthetic_pairs(n_pairs, 0.1, seed=1)
    reason = ("The answer is stated in the text and every fact in it is supported. " * 60)[:4000]
    for k, p in enumerate(data):
        p["judge"] = {"score": k % 5 + 1, "p_yes": None, "reason": reason}
    size = write_jsonl(project / "data/qa_curated.jsonl", data) and (project / "data/qa_curated.jsonl").stat().st_size
    del data
    in_memory = ("from faqforge.refinement.dedup import near_duplicate_clusters\n"
                 "from faqforge.core.config import load_config\n"
                 "from faqforge.core.io import read_jsonl, write_jsonl\n"
                 "rule = load_config(sections=['dedup'])['dedup']\n"
                 "kept, dropped = near_duplicate_clusters(read_jsonl('data/qa_curated.jsonl'), rule)\n"
                 "write_jsonl('data/qa_deduped.jsonl', kept)\nwrite_jsonl('data/dedup_dropped.jsonl', dropped)\n")
    base_seconds, base_peak = run_stage(project, sys.executable, "-c", in_memory)
    expected = [(project / f"data/{name}.jsonl").read_bytes() for name in ("qa_deduped", "dedup_dropped")]
    seconds, peak = run_stage(project, sys.executable, str(ROOT / "stages/dedup.py"))
    same = expected == [(project / f"data/{name}.jsonl").read_bytes() for name in ("qa_deduped", "dedup_dropped")]
    shutil.rmtree(project)
    print(f"dedup ({n_pairs} pairs with 4 kB judge reasons, qa_curated.jsonl {size / 2**20:.0f} MiB):")
    print(f"  whole records in memory (baseline): {base_seconds:6.1f} s, peak RSS {base_peak:6.0f} MiB")
    print(f"  stages/dedup.py (streaming):        {seconds:6.1f} s, peak RSS {peak:6.0f} MiB "
          f"= {peak / base_peak:.2f}x baseline; outputs identical: {same}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=2.0, help="ingest corpus size in GiB (default 2)")
    parser.add_argument("--pairs", type=int, default=100_000, help="pairs for dedup (default 100,000)")
    parser.add_argument("--only", choices=["ingest", "dedup"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:  # the same disk as the project
        if args.only != "ingest":
            bench_dedup(Path(tmp), args.pairs)
        if args.only != "dedup":
            bench_ingest(Path(tmp), args.gib)


if __name__ == "__main__":
    main()
