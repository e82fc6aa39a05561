"""Fine-tuning throughput: the stage's trainer against a naive one, in the same run.

    .venv/bin/python bench/finetune.py [steps]

Both train a LoRA adapter on the embedded student (models/base/ if the
pipeline made it, else the embedded GGUF) with data/train.jsonl (run
`dvc repro split` first), batch 8, the params' LoRA settings:

- faqforge: the stage's Trainer: length-grouped batches padded to their
  longest example, loss on the assistant tokens only;
- naive (the baseline): every batch padded to max_seq_length, loss on all
  tokens, examples in random order.

Throughput counts real (non-padding) tokens per second of training. Each
trainer runs in its own process, so each peak RSS is its own. Target:
faqforge >= 2x the baseline, with under 10% of its batch positions padding.
"""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers

from faqforge.finetune import PadCollator, Trainer, lora_model, prepare_examples, training_arguments
from faqforge.io import load_params, read_jsonl
from faqforge.models import load_model

BATCH = 8


def student():
    return "models/base" if Path("models/base/config.json").exists() else "embedded:smollm2-135m-instruct"


def naive_examples(examples):
    """The baseline's view of the data: labels on every token, the prompt's too."""
    return [{"input_ids": e["input_ids"], "labels": list(e["input_ids"])} for e in examples]


def train(variant, steps):
    """Train `steps` steps of one variant; returns its figures."""
    params = {**load_params(sections=["finetune"])["finetune"], "batch_size": BATCH, "grad_accum": 1,
              "max_steps": steps, "save_every": 0, "eval_every": steps, "warmup_steps": 0,
              "group_by_length": variant == "faqforge"}
    transformers.set_seed(params["seed"])
    model, tokenizer = load_model(student())
    examples, _ = prepare_examples(tokenizer, read_jsonl("data/train.jsonl"), params["max_seq_length"])
    pad_to = None
    if variant == "naive":
        examples, pad_to = naive_examples(examples), params["max_seq_length"]
    args = training_arguments(params, f"cache/bench-finetune-{variant}", len(examples), has_val=False)
    args.disable_tqdm = True
    # The stage's Trainer for both: it only adds the padding count; the naive run samples at random.
    trainer = Trainer(model=lora_model(model, params), args=args, train_dataset=examples,
                      data_collator=PadCollator(tokenizer.pad_token_id, pad_to=pad_to))
    start = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - start
    real, total = int(trainer.positions[1]), int(trainer.positions[0])
    return {"variant": variant, "steps": steps, "seconds": round(seconds, 1), "real_tokens": real,
            "batch_positions": total, "tokens_per_second": round(real / seconds, 1),
            "padding_fraction": round(1 - real / total, 4), "examples": len(examples),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10)}


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--variant":
        print(json.dumps(train(sys.argv[2], int(sys.argv[3]))))
        return
    if not Path("data/train.jsonl").exists():
        sys.exit("data/train.jsonl: not found; run `dvc repro split` (or `dvc pull`) first.")
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    results = {}
    for variant in ("naive", "faqforge"):
        out = subprocess.run([sys.executable, __file__, "--variant", variant, str(steps)], check=True,
                             capture_output=True, text=True).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    naive, fast = results["naive"], results["faqforge"]
    print(f"student {student()}, {fast['examples']} examples of data/train.jsonl, batch {BATCH}, "
          f"{steps} steps each, {torch.get_num_threads()} threads")
    for r in (naive, fast):
        print(f"{r['variant']:>9}: {r['tokens_per_second']:7.1f} real tokens/s ({r['real_tokens']:,} tokens in "
              f"{r['seconds']} s), padding {r['padding_fraction']:.1%}, peak RSS {r['peak_rss_mb']:,} MiB")
    print(f"faqforge / naive throughput: {fast['tokens_per_second'] / naive['tokens_per_second']:.1f}x "
          f"(target >= 2x); faqforge padding {fast['padding_fraction']:.1%} (target < 10%)")


if __name__ == "__main__":
    main()
