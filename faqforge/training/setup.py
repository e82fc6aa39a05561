"""What fine-tuning trains on and with: examples formatted with the student
tokenizer's own chat template (the same `chat_prompt` the evaluator and `serve`
use) with the loss on the assistant tokens only, right-padded batches with the
padding masked, the model made trainable (LoRA, QLoRA on CUDA, or every
weight) and the mixed precision the hardware allows."""

import importlib.util
from pathlib import Path

import torch
import transformers

from faqforge.core.io import PipelineError
from faqforge.core.records import dropped
from faqforge.models.checkpoints import chat_prompt, checkpoint_kind


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


def prepare_examples(tokenizer, records, max_seq_length, overlong, source="data/train.jsonl"):
    """(examples, over-long records). An example longer than `max_seq_length` is
    never cut mid-answer: it is set aside with its length and reason, or, with
    `overlong: error`, the run stops naming the records."""
    examples, skipped = [], []
    for record in records:
        example = tokenize_example(tokenizer, record["messages"])
        n = len(example["input_ids"])
        if n > max_seq_length:
            skipped.append(dropped({"id": record["id"]}, "finetune", "longer than max_seq_length",
                                   f"{n} tokens > max_seq_length {max_seq_length}", tokens=n))
        else:
            examples.append(example)
    if skipped and overlong == "error":
        ids = ", ".join(s["id"] for s in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        raise PipelineError(f"{source}: {len(skipped)} examples are longer than finetune.max_seq_length "
                            f"{max_seq_length} tokens ({ids}); raise max_seq_length, or set finetune.overlong: "
                            "skip to train without them (they are listed in metrics/train.json).")
    return examples, skipped


class PadCollator:
    """Right-pads a batch (to the longest row, or to `pad_to`); pads get label
    -100 and attention 0, so each row is one example that sees only itself."""

    def __init__(self, pad_token_id, pad_to=None):
        self.pad_token_id = pad_token_id
        self.pad_to = pad_to

    def __call__(self, batch):
        width = self.pad_to or max(len(b["input_ids"]) for b in batch)
        ids, labels, mask = [], [], []
        for b in batch:
            pad = width - len(b["input_ids"])
            ids.append(b["input_ids"] + [self.pad_token_id] * pad)
            labels.append(b["labels"] + [-100] * pad)
            mask.append([1] * len(b["input_ids"]) + [0] * pad)
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels),
                "attention_mask": torch.tensor(mask)}


def quantization_config(params, cuda=None):
    """The bitsandbytes config for `finetune.quantization: 4bit` (QLoRA), None
    for full precision; a clear error where 4-bit cannot run."""
    mode = params.quantization
    if mode == "none":
        return None
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda:
        raise PipelineError("params.yaml: finetune.quantization: 4bit (QLoRA) needs a CUDA GPU and bitsandbytes, "
                            "and this machine has no CUDA device. Set finetune.quantization: none to train the "
                            "LoRA adapter in full precision here, or run the stage on a machine with a GPU.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise PipelineError("params.yaml: finetune.quantization: 4bit (QLoRA) needs bitsandbytes: "
                            "run `.venv/bin/pip install bitsandbytes`.")
    return transformers.BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def cpu_has_bf16():
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): then
    bf16 autocast trains faster than float32 (1.25x measured, bench/README.md)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def mixed_precision(params, cuda=None, cpu_bf16=None):
    """(bf16, fp16) flags for TrainingArguments: `auto` is bf16 on a GPU that
    has it, fp16 on an older GPU, bf16 autocast on a CPU with native bfloat16,
    float32 on other CPUs. The weights stay float32 in every case."""
    mode = params.precision
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if mode == "auto":
        if cuda:
            mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            mode = "bf16" if (cpu_has_bf16() if cpu_bf16 is None else cpu_bf16) else "fp32"
    return mode == "bf16", mode == "fp16"


def check_init_adapter(path, out_dir):
    """An existing PEFT adapter to continue training from, outside the stage's own output."""
    adapter = Path(path)
    if adapter.resolve() == Path(out_dir).resolve():
        raise PipelineError(f"params.yaml: finetune.init_adapter: {path} is this stage's own output, which DVC "
                            "removes before the stage runs; copy it first (cp -r models/adapter "
                            "models/adapter-v1) and point init_adapter at the copy.")
    if checkpoint_kind(adapter) != "lora":
        raise PipelineError(f"params.yaml: finetune.init_adapter: {path} has no adapter_config.json; "
                            "give the directory of a PEFT adapter (one written by this stage, or any "
                            "save_pretrained LoRA adapter for the same base model).")
    return adapter


def trainable_model(model, params, init_adapter=None):
    """The student to train: LoRA weights on the frozen base (finetune.method
    lora), or every weight (full, the RAFT recipe's choice; for small students)."""
    if params.method == "lora":
        return lora_model(model, params, init_adapter)
    if init_adapter or params.quantization != "none":
        raise PipelineError("params.yaml: finetune.method: full trains every weight: it takes neither "
                            "init_adapter nor quantization (those are LoRA's); set them to null and none.")
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.train()
    return model


def parameter_counts(model):
    """(trainable, total) parameters of a peft or plain model."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    return (sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()))


def prompt_layout(records):
    """How the training records were prompted, saved with the weights so that
    evaluation, chat and serve prompt the same way without re-reading params:
    the system prompt, closed_book or raft, and the passages per prompt."""
    first = records[0]["messages"] if records else []
    system = first[0]["content"] if first and first[0]["role"] == "system" else None
    raft = [r for r in records if "passages" in r]
    return {"system_prompt": system, "context": "raft" if raft else "closed_book",
            "passages": max((len(r["passages"]) for r in raft), default=0)}


def lora_model(model, params, init_adapter=None):
    """The student with trainable LoRA weights: fresh ones from params, or
    those of `init_adapter` (whose own rank, alpha and targets then apply)."""
    from peft import LoraConfig, PeftModel, get_peft_model
    if getattr(model, "is_loaded_in_4bit", False):
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model, params.gradient_checkpointing)
    if init_adapter:
        return PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
    config = LoraConfig(r=params.lora_r, lora_alpha=params.lora_alpha,
                        lora_dropout=params.lora_dropout, target_modules=params.target_modules,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)
