"""LoRA fine-tune of the student (models/base/) on data/train.jsonl.

    dvc repro finetune          # or: python stages/finetune.py

Writes the PEFT adapter to models/adapter/ (loadable by peft and by vLLM's
--enable-lora), metrics/train.json, and the loss curves in plots/ for
`dvc plots show` / `dvc plots diff`.
"""

import shutil
import time

import torch

from faqforge.finetune import (PadCollator, curves_from_history, lora_model, padding_fraction,
                               prepare_examples, training_arguments)
from faqforge.io import PipelineError, load_params, read_jsonl, write_json
from faqforge.models import load_model
from faqforge.stage import run

BASE, OUT = "models/base", "models/adapter"


def main():
    from transformers import Trainer, set_seed
    p = load_params(sections=["finetune"])["finetune"]
    set_seed(p["seed"])
    model, tokenizer = load_model(BASE)
    train, overlong = prepare_examples(tokenizer, read_jsonl("data/train.jsonl"), p["max_seq_length"])
    val, val_overlong = prepare_examples(tokenizer, read_jsonl("data/val.jsonl"), p["max_seq_length"])
    if not train:
        raise PipelineError("data/train.jsonl: no training example fits max_seq_length "
                            f"{p['max_seq_length']}; raise finetune.max_seq_length or check earlier stages' "
                            "metrics for where the pairs were dropped.")
    model = lora_model(model, p)
    if p["gradient_checkpointing"]:
        model.enable_input_require_grads()
    args = training_arguments(p, "cache/finetune", len(train))
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val or None,
                      data_collator=PadCollator(tokenizer.pad_token_id))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.monotonic()
    result = trainer.train()
    seconds = time.monotonic() - start
    final_val = trainer.evaluate()["eval_loss"] if val else None
    shutil.rmtree(OUT, ignore_errors=True)
    model.save_pretrained(OUT)
    tokenizer.save_pretrained(OUT)
    train_curve, val_curve = curves_from_history(trainer.state.log_history)
    write_json("plots/train_loss.json", train_curve)
    write_json("plots/val_loss.json", val_curve)
    tokens = trainer.state.num_input_tokens_seen
    trainable, total = model.get_nb_trainable_parameters()
    write_json("metrics/train.json", {
        "train_loss": result.training_loss, "val_loss": final_val, "steps": trainer.state.global_step,
        "examples": len(train), "val_examples": len(val), "tokens_seen": tokens,
        "tokens_per_second": round(tokens / seconds, 1), "seconds": round(seconds, 1),
        "padding_fraction": round(padding_fraction([len(e["input_ids"]) for e in train], p["batch_size"]), 4),
        "overlong_skipped": len(overlong) + len(val_overlong), "overlong": overlong + val_overlong,
        "trainable_parameters": trainable, "total_parameters": total,
        "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
    })
    print(f"finetune: {trainer.state.global_step} steps on {len(train)} examples, train loss "
          f"{result.training_loss:.3f}, val loss {final_val if final_val is None else round(final_val, 3)}; "
          f"{len(overlong) + len(val_overlong)} over-long examples skipped")


if __name__ == "__main__":
    run(main)
