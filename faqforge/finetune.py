"""LoRA fine-tuning of the student with peft and the transformers Trainer.

Examples are formatted with the student tokenizer's own chat template, the
same `chat_prompt` the evaluator uses, and the loss is taken on the assistant
tokens only. Batches are grouped by length, so little compute goes to padding.
"""

import math

import torch

from faqforge.models import chat_prompt


def tokenize_example(tokenizer, messages):
    """input_ids and labels for one chat; labels are -100 everywhere but the
    final assistant turn (and the end-of-turn token the template puts after it)."""
    prompt = chat_prompt(tokenizer, messages[:-1])
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("the chat template does not render the prompt as a prefix of the full chat")
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    labels = [tok if start >= len(prompt) else -100
              for tok, (start, _) in zip(encoded.input_ids, encoded.offset_mapping)]
    return {"input_ids": encoded.input_ids, "labels": labels}


def prepare_examples(tokenizer, records, max_seq_length):
    """(examples, over-long records). An example longer than `max_seq_length` is
    never cut mid-answer: it is set aside with its length, for the report."""
    examples, overlong = [], []
    for record in records:
        example = tokenize_example(tokenizer, record["messages"])
        if len(example["input_ids"]) > max_seq_length:
            overlong.append({"id": record["id"], "tokens": len(example["input_ids"]),
                             "why": f"{len(example['input_ids'])} tokens > max_seq_length {max_seq_length}"})
        else:
            examples.append(example)
    return examples, overlong


class PadCollator:
    """Right-pads a batch; pads get label -100 and attention 0."""

    def __init__(self, pad_token_id):
        self.pad_token_id = pad_token_id

    def __call__(self, batch):
        width = max(len(b["input_ids"]) for b in batch)
        ids, labels, mask = [], [], []
        for b in batch:
            pad = width - len(b["input_ids"])
            ids.append(b["input_ids"] + [self.pad_token_id] * pad)
            labels.append(b["labels"] + [-100] * pad)
            mask.append([1] * len(b["input_ids"]) + [0] * pad)
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels),
                "attention_mask": torch.tensor(mask)}


def padding_fraction(lengths, batch_size):
    """Share of padded positions when examples of these lengths are batched in
    length-sorted order (what length grouping approximates)."""
    lengths = sorted(lengths)
    total = padded = 0
    for i in range(0, len(lengths), batch_size):
        batch = lengths[i:i + batch_size]
        total += max(batch) * len(batch)
        padded += max(batch) * len(batch) - sum(batch)
    return padded / total if total else 0.0


def lora_model(model, params):
    from peft import LoraConfig, get_peft_model
    config = LoraConfig(r=params["lora_r"], lora_alpha=params["lora_alpha"],
                        lora_dropout=params["lora_dropout"], target_modules=params["target_modules"],
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def training_arguments(params, output_dir, n_train):
    from transformers import TrainingArguments
    steps_per_epoch = math.ceil(n_train / (params["batch_size"] * params["grad_accum"]))
    max_steps = params["max_steps"] if params["max_steps"] > 0 else steps_per_epoch * params["epochs"]
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=params["batch_size"],
        per_device_eval_batch_size=params["batch_size"],
        gradient_accumulation_steps=params["grad_accum"],
        learning_rate=params["learning_rate"],
        lr_scheduler_type=params["lr_scheduler"],
        warmup_steps=params["warmup_steps"],
        max_steps=max_steps,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=max(1, params["eval_every"]),
        save_strategy="no",
        seed=params["seed"],
        data_seed=params["seed"],
        gradient_checkpointing=params["gradient_checkpointing"],
        train_sampling_strategy="group_by_length",
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=False,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )


def curves_from_history(history):
    """Train and val curves, one row per logged step, for DVC plots."""
    train, val = [], []
    for row in history:
        if "loss" in row and "step" in row:
            train.append({"step": row["step"], "train_loss": row["loss"],
                          "learning_rate": row.get("learning_rate"),
                          "tokens_seen": row.get("num_input_tokens_seen")})
        if "eval_loss" in row:
            val.append({"step": row["step"], "val_loss": row["eval_loss"]})
    return train, val
