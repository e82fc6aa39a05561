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
import shutil
import subprocess
import sys
import time

from faqforge.core.chat_format import LAYOUT_FILE
from faqforge.core.config import load_params
from faqforge.core.io import PipelineError, read_jsonl, write_json
from faqforge.core.stage import run
from faqforge.models.checkpoints import load_model
from faqforge.training.finetune import (
    PadCollator,
    Trainer,
    check_init_adapter,
    curves_from_history,
    file_digest,
    final_validation,
    fingerprint,
    is_main_process,
    launch_command,
    mean_train_loss,
    merge_adapter,
    parameter_counts,
    peak_memory_mb,
    prepare_examples,
    prompt_layout,
    quantization_config,
    resume_point,
    trainable_model,
    training_arguments,
    validation_start,
    world_size,
)

BASE, OUT, WORK = "models/base", "models/adapter", "cache/finetune"


def main():
    import torch
    from transformers import set_seed
    params = load_params(sections=["finetune", "student"])
    p = params["finetune"]
    if p["num_processes"] > 1 and "WORLD_SIZE" not in os.environ:
        print(f"finetune: launching {p['num_processes']} processes", flush=True)
        sys.exit(subprocess.run(launch_command(p, __file__)).returncode)
    quantization = quantization_config(p)
    init_adapter = check_init_adapter(p["init_adapter"], OUT) if p["init_adapter"] else None
    set_seed(p["seed"])
    model, tokenizer = load_model(BASE, quantization_config=quantization)
    records = read_jsonl("data/train.jsonl")
    train, overlong = prepare_examples(tokenizer, records, p["max_seq_length"],
                                       p["overlong"], "data/train.jsonl")
    val, val_overlong = prepare_examples(tokenizer, read_jsonl("data/val.jsonl"), p["max_seq_length"],
                                         p["overlong"], "data/val.jsonl")
    if not train:
        raise PipelineError("data/train.jsonl: no training example fits max_seq_length "
                            f"{p['max_seq_length']}; raise finetune.max_seq_length or check earlier stages' "
                            "metrics for where the pairs were dropped.")
    model = trainable_model(model, p, init_adapter)
    if p["gradient_checkpointing"]:
        model.enable_input_require_grads()
    run_id = fingerprint(p, params["student"], world_size(), file_digest("data/train.jsonl"),
                         file_digest("data/val.jsonl"), file_digest(f"{BASE}/config.json"),
                         init_adapter and file_digest(init_adapter))
    checkpoint = resume_point(WORK, run_id) if p["resume"] else None
    args = training_arguments(p, WORK, len(train), has_val=bool(val))
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val or None,
                      data_collator=PadCollator(tokenizer.pad_token_id), processing_class=tokenizer)
    if checkpoint:
        print(f"finetune: resuming from {checkpoint}", flush=True)
    start_loss = validation_start(trainer, f"{WORK}/val_loss_start.json", checkpoint) if val else None
    start = time.monotonic()
    trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.monotonic() - start
    final_val = final_validation(trainer) if val else None
    padding = trainer.padding_fraction()
    if is_main_process():
        shutil.rmtree(OUT, ignore_errors=True)
    trainer.save_model(OUT)  # on every process: under FSDP the weights are gathered from all of them
    if not is_main_process():
        return
    write_json(f"{OUT}/{LAYOUT_FILE}", {**prompt_layout(records), "method": p["method"]})
    if p["merge"] and p["method"] == "lora":
        merge_adapter(BASE, OUT, f"{OUT}/merged")
    train_curve, val_curve = curves_from_history(trainer.state.log_history)
    if start_loss is not None:
        val_curve.insert(0, {"step": 0, "val_loss": start_loss})
    write_json("plots/train_loss.json", train_curve)
    write_json("plots/val_loss.json", val_curve)
    trainable, total = parameter_counts(model)
    write_json("metrics/train.json", {
        "train_loss": mean_train_loss(train_curve), "train_loss_last": train_curve[-1]["train_loss"],
        "val_loss": final_val,
        "val_loss_start": start_loss,
        "steps": trainer.state.global_step, "resumed_from": checkpoint, "processes": world_size(),
        "examples": len(train), "val_examples": len(val), "tokens_seen": trainer.state.num_input_tokens_seen,
        "tokens_per_second": trainer.throughput.tokens_per_second(), "seconds": round(seconds, 1),
        "padding_fraction": round(padding, 4),
        "overlong_skipped": len(overlong) + len(val_overlong), "overlong": overlong + val_overlong,
        "trainable_parameters": trainable, "total_parameters": total,
        "peak_memory_mb": peak_memory_mb(), "peak_memory_of": "cuda" if torch.cuda.is_available() else "process rss",
    })
    shutil.rmtree(WORK, ignore_errors=True)  # the run finished: its checkpoints are no longer needed
    print(f"finetune ({p['method']}): {trainer.state.global_step} steps on {len(train)} examples, train loss "
          f"{mean_train_loss(train_curve):.3f}, val loss {final_val if final_val is None else round(final_val, 3)}, "
          f"padding {padding:.1%}; {len(overlong) + len(val_overlong)} over-long examples skipped")


if __name__ == "__main__":
    run(main)
