"""The finetune stage's run: the student (LoRA, QLoRA or every weight) trained
on data/train.jsonl and validated on data/val.jsonl, resumable, written with
the prompt layout it learnt, its curves and its metrics."""

import shutil
import time

import torch
from transformers import set_seed

from faqforge.core.chat_format import LAYOUT_FILE
from faqforge.core.io import PipelineError, read_jsonl, write_json
from faqforge.models.checkpoints import load_model
from faqforge.training.setup import (
    PadCollator,
    check_init_adapter,
    parameter_counts,
    prepare_examples,
    prompt_layout,
    quantization_config,
    trainable_model,
)
from faqforge.training.trainer import (
    Trainer,
    curves_from_history,
    file_digest,
    final_validation,
    fingerprint,
    is_main_process,
    mean_train_loss,
    merge_adapter,
    peak_memory_mb,
    resume_point,
    training_arguments,
    validation_start,
    world_size,
)


def examples(tokenizer, p):
    """(train records, train examples, val examples, over-long ones skipped) from data/."""
    records = read_jsonl("data/train.jsonl")
    train, overlong = prepare_examples(tokenizer, records, p.max_seq_length, p.overlong, "data/train.jsonl")
    val, val_overlong = prepare_examples(tokenizer, read_jsonl("data/val.jsonl"), p.max_seq_length,
                                         p.overlong, "data/val.jsonl")
    if not train:
        raise PipelineError("data/train.jsonl: no training example fits max_seq_length "
                            f"{p.max_seq_length}; raise finetune.max_seq_length or check earlier stages' "
                            "metrics for where the pairs were dropped.")
    return records, train, val, overlong + val_overlong


def fine_tune(p, student, base, out, work):
    """Train the student from `base` into `out` as `p` (the finetune section) says,
    checkpointing to `work` (removed when the run ends); `student`: the student section.
    Returns metrics/train.json's content on the main process, else None."""
    init_adapter = check_init_adapter(p.init_adapter, out) if p.init_adapter else None
    set_seed(p.seed)
    model, tokenizer = load_model(base, quantization_config=quantization_config(p))
    records, train, val, overlong = examples(tokenizer, p)
    model = trainable_model(model, p, init_adapter)
    if p.gradient_checkpointing:
        model.enable_input_require_grads()
    run_id = fingerprint(p, student.model, world_size(), file_digest("data/train.jsonl"),
                         file_digest("data/val.jsonl"), file_digest(f"{base}/config.json"),
                         init_adapter and file_digest(init_adapter))
    checkpoint = resume_point(work, run_id) if p.resume else None
    trainer = Trainer(model=model, args=training_arguments(p, work, len(train), has_val=bool(val)),
                      train_dataset=train, eval_dataset=val or None,
                      data_collator=PadCollator(tokenizer.pad_token_id), processing_class=tokenizer)
    if checkpoint:
        print(f"finetune: resuming from {checkpoint}", flush=True)
    start_loss = validation_start(trainer, f"{work}/val_loss_start.json", checkpoint) if val else None
    start = time.monotonic()
    trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.monotonic() - start
    final_val = final_validation(trainer) if val else None
    padding = trainer.padding_fraction()  # gathered from every process: all of them must ask
    if is_main_process():
        shutil.rmtree(out, ignore_errors=True)
    trainer.save_model(out)  # on every process: under FSDP the weights are gathered from all of them
    if not is_main_process():
        return None
    write_json(f"{out}/{LAYOUT_FILE}", {**prompt_layout(records), "method": p.method})
    if p.merge and p.method == "lora":
        merge_adapter(base, out, f"{out}/merged")
    train_curve, val_curve = curves_from_history(trainer.state.log_history)
    if start_loss is not None:
        val_curve.insert(0, {"step": 0, "val_loss": start_loss})
    write_json("plots/train_loss.json", train_curve)
    write_json("plots/val_loss.json", val_curve)
    trainable, total = parameter_counts(model)
    shutil.rmtree(work, ignore_errors=True)  # the run finished: its checkpoints are no longer needed
    return {
        "train_loss": mean_train_loss(train_curve), "train_loss_last": train_curve[-1]["train_loss"],
        "val_loss": final_val, "val_loss_start": start_loss,
        "steps": trainer.state.global_step, "resumed_from": checkpoint, "processes": world_size(),
        "examples": len(train), "val_examples": len(val), "tokens_seen": trainer.state.num_input_tokens_seen,
        "tokens_per_second": trainer.throughput.tokens_per_second(), "seconds": round(seconds, 1),
        "padding_fraction": round(padding, 4),
        "overlong_skipped": len(overlong), "overlong": overlong,
        "trainable_parameters": trainable, "total_parameters": total,
        "peak_memory_mb": peak_memory_mb(), "peak_memory_of": "cuda" if torch.cuda.is_available() else "process rss",
    }
