"""Fine-tuning throughput: the stage's trainer against the transformers Trainer's own
length grouping and a naive trainer, in the same run.

    .venv/bin/python -m bench.finetune [steps]

Each trains the embedded student (models/base/ if the pipeline made it, else
the embedded model) as the finetune stage does by default (finetune.method:
every weight, or a LoRA adapter with method lora; the params' precision) on
data/train.jsonl (the default run's RAFT records: run `dvc repro split`
first), batch 8:

- trainer (the baseline a user would pick): `transformers.Trainer` with
  `train_sampling_strategy="group_by_length"` (its LengthGroupedSampler) and
  `DataCollatorForSeq2Seq` (dynamic padding to the longest row), on the same
  answer-only labels;
- faqforge: the stage's Trainer: its own length-grouped batches (runs of 50
  global batches sorted by length, batch order shuffled) padded to their
  longest example, loss on the assistant tokens only;
- naive: every batch padded to max_seq_length, loss on all tokens, examples in
  random order (what the seed recipe did).

Throughput counts real (non-padding) tokens per second of training; the
trainer variant counts its padding in `training_step` like the stage does.
Each trainer runs in its own process, so each peak RSS is its own.
"""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers

from faqforge.core.config import load_config
from faqforge.core.io import read_jsonl
from faqforge.models.checkpoints import load_model
from faqforge.training.setup import PadCollator, prepare_examples, trainable_model
from faqforge.training.trainer import Trainer, training_arguments

BATCH = 8
VARIANTS = ("naive", "trainer", "faqforge")


class CountingTrainer(transformers.Trainer):
    """transformers' Trainer as it is, only counting the batch positions it trains."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.positions = [0, 0]

    def training_step(self, model, inputs, num_items_in_batch=None):
        mask = inputs["attention_mask"]
        self.positions = [self.positions[0] + mask.numel(), self.positions[1] + int(mask.sum())]
        return super().training_step(model, inputs, num_items_in_batch)


def student():
    return "models/base" if Path("models/base/config.json").exists() else "embedded:smollm2-135m-instruct"


def naive_examples(examples):
    """The baseline's view of the data: labels on every token, the prompt's too."""
    return [{"input_ids": e["input_ids"], "labels": list(e["input_ids"])} for e in examples]


def train(variant, steps):
    """Train `steps` steps of one variant; returns its figures."""
    params = load_config(sections=["finetune"])["finetune"].model_copy(update={
        "batch_size": BATCH, "grad_accum": 1, "max_steps": steps, "save_every": 0, "eval_every": steps,
        "warmup_steps": 0, "group_by_length": variant != "naive"})
    transformers.set_seed(params.seed)
    model, tokenizer = load_model(student())
    examples, _ = prepare_examples(tokenizer, read_jsonl("data/train.jsonl"), params.max_seq_length, params.overlong)
    pad_to = None
    if variant == "naive":
        examples, pad_to = naive_examples(examples), params.max_seq_length
    args = training_arguments(params, f"cache/bench-finetune-{variant}", len(examples), has_val=False)
    args.disable_tqdm = True
    if variant == "trainer":
        trainer = CountingTrainer(model=trainable_model(model, params), args=args, train_dataset=examples,
                                  data_collator=transformers.DataCollatorForSeq2Seq(tokenizer, padding="longest"))
    else:  # the stage's Trainer: for the naive run it only adds the padding count and samples at random
        trainer = Trainer(model=trainable_model(model, params), args=args, train_dataset=examples,
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
    for variant in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--variant", variant, str(steps)], check=True,
                             capture_output=True, text=True).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    fast = results["faqforge"]
    method = load_config(sections=["finetune"])["finetune"].method
    print(f"student {student()}, finetune.method {method}, {fast['examples']} examples of data/train.jsonl, "
          f"batch {BATCH}, {steps} steps each, {torch.get_num_threads()} threads")
    for r in results.values():
        print(f"{r['variant']:>9}: {r['tokens_per_second']:7.1f} real tokens/s ({r['real_tokens']:,} tokens in "
              f"{r['seconds']} s), padding {r['padding_fraction']:.1%}, peak RSS {r['peak_rss_mb']:,} MiB")
    for baseline in ("trainer", "naive"):
        b = results[baseline]
        print(f"faqforge / {baseline}: throughput {fast['tokens_per_second'] / b['tokens_per_second']:.2f}x, "
              f"peak RSS {fast['peak_rss_mb'] / b['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
