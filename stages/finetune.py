"""Fine-tune of the student (models/base/) on data/train.jsonl: LoRA, or every weight.

    dvc repro finetune          # or: python stages/finetune.py
    # by hand on 4 GPUs (what finetune.num_processes: 4 runs for you):
    torchrun --standalone --nproc_per_node=4 stages/finetune.py

Writes the PEFT adapter to models/adapter/ (loadable by peft and by vLLM's
--enable-lora; with finetune.merge also models/adapter/merged/, a full model),
or with finetune.method full the whole fine-tuned checkpoint there; beside it
prompt.json, the prompt layout it was trained with (system prompt, closed book
or retrieved passages),
metrics/train.json, and the training curves in plots/ for `dvc plots show` /
`dvc plots diff`. Checkpoints go to cache/finetune/ every finetune.save_every
steps; a run that was interrupted resumes from the last one.
"""

import os
import subprocess
import sys

from faqforge.core.config import load_config
from faqforge.core.io import write_json
from faqforge.core.stage import run
from faqforge.training.finetune import fine_tune
from faqforge.training.trainer import launch_command

BASE, OUT, WORK = "models/base", "models/adapter", "cache/finetune"


def main():
    config = load_config(sections=["finetune", "student"])
    p = config["finetune"]
    if p.num_processes > 1 and "WORLD_SIZE" not in os.environ:
        print(f"finetune: launching {p.num_processes} processes", flush=True)
        sys.exit(subprocess.run(launch_command(p, __file__)).returncode)
    metrics = fine_tune(p, config["student"], BASE, OUT, WORK)
    if metrics is None:  # not the main process
        return
    write_json("metrics/train.json", metrics)
    print(f"finetune ({p.method}): {metrics['steps']} steps on {metrics['examples']} examples, train loss "
          f"{metrics['train_loss']:.3f}, val loss {metrics['val_loss'] and round(metrics['val_loss'], 3)}, "
          f"padding {metrics['padding_fraction']:.1%}; {metrics['overlong_skipped']} over-long examples skipped")


if __name__ == "__main__":
    run(main)
