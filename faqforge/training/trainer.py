"""The training run: TrainingArguments from the params, a Trainer that groups
batches by length and measures its padding and throughput, resuming from the
last checkpoint of the same run (its fingerprint), the loss curves, merging,
and the torchrun launch for several processes.

The same code runs in one process or under torchrun / accelerate launch
(DDP, FSDP): the Trainer reads the launcher's environment, and only the main
process writes files."""

import hashlib
import json
import math
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import torch
import transformers

from faqforge.core.io import PipelineError, write_json
from faqforge.models.checkpoints import load_model
from faqforge.training.setup import mixed_precision

FINGERPRINT = "fingerprint.txt"


def world_size():
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process():
    return int(os.environ.get("RANK", "0")) == 0


def training_arguments(params, output_dir, n_train, has_val=True):
    """TrainingArguments from the finetune params. The number of steps counts
    every process: one step is batch_size x grad_accum x processes examples."""
    cuda = torch.cuda.is_available()
    global_batch = params.batch_size * params.grad_accum * world_size()
    steps_per_epoch = math.ceil(n_train / global_batch)
    max_steps = params.max_steps if params.max_steps > 0 else steps_per_epoch * params.epochs
    bf16, fp16 = mixed_precision(params, cuda)
    return transformers.TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.batch_size,
        gradient_accumulation_steps=params.grad_accum,
        learning_rate=params.learning_rate,
        lr_scheduler_type=params.lr_scheduler,
        warmup_steps=params.warmup_steps,
        max_steps=max_steps,
        logging_steps=1,
        eval_strategy="steps" if has_val else "no",
        eval_steps=max(1, params.eval_every),
        save_strategy="steps" if params.save_every > 0 else "no",
        save_steps=max(1, params.save_every),
        save_total_limit=1,
        seed=params.seed,
        data_seed=params.seed,
        activation_checkpointing=params.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        train_sampling_strategy="group_by_length" if params.group_by_length else "random",
        include_num_input_tokens_seen="non_padding",
        bf16=bf16,
        fp16=fp16,
        report_to="none",
        disable_tqdm=not is_main_process(),
        use_cpu=not cuda,
        ddp_backend="gloo" if world_size() > 1 and not cuda else None,
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
    )


class Throughput(transformers.TrainerCallback):
    """Adds tokens/s since the previous log to each training log row, and keeps
    the totals; time spent evaluating or saving checkpoints is left out."""

    def __init__(self):
        self.tokens = self.seconds = 0

    def _mark(self, state):
        self.mark = (time.monotonic(), state.num_input_tokens_seen)

    def on_train_begin(self, args, state, control, **kwargs):
        self._mark(state)

    def on_evaluate(self, args, state, control, **kwargs):
        self._mark(state)

    def on_save(self, args, state, control, **kwargs):
        self._mark(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            then, seen = self.mark
            self._mark(state)
            self.tokens += self.mark[1] - seen
            self.seconds += self.mark[0] - then
            state.log_history[-1]["tokens_per_second"] = round((self.mark[1] - seen) / (self.mark[0] - then), 1)

    def tokens_per_second(self):
        return round(self.tokens / self.seconds, 1) if self.seconds else None


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Indices in batches of similar length: each epoch shuffles the examples,
    sorts each run of `MEGABATCH` global batches by length, cuts it into global
    batches (batch_size x processes) and shuffles the batches' order, the one
    short batch last. Each
    process then takes its slice of a global batch, so the processes of one
    step get similar lengths too. Deterministic per (seed, epoch), which a
    resumed run relies on."""

    MEGABATCH = 50

    def __init__(self, lengths, global_batch, seed):
        self.lengths, self.global_batch, self.seed, self.epoch = lengths, global_batch, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        size = self.MEGABATCH * self.global_batch
        batches = []
        for start in range(0, len(order), size):
            mega = sorted(order[start:start + size], key=self.lengths.__getitem__, reverse=True)
            batches += [mega[i:i + self.global_batch] for i in range(0, len(mega), self.global_batch)]
        # Only full batches are shuffled: a short one in the middle would shift every later batch boundary.
        full = [b for b in batches if len(b) == self.global_batch]
        short = [b for b in batches if len(b) < self.global_batch]
        shuffled = [full[k] for k in torch.randperm(len(full), generator=generator).tolist()] + short
        return iter([i for batch in shuffled for i in batch])


class Trainer(transformers.Trainer):
    """The transformers Trainer, batching by length (finetune.group_by_length)
    and counting the batch positions that are padding."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.positions = torch.zeros(2, dtype=torch.int64)  # [batch positions, real tokens] on this process
        self.throughput = Throughput()
        self.add_callback(self.throughput)

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_train_sampler(train_dataset)
        dataset = self.train_dataset if train_dataset is None else train_dataset
        return LengthGroupedBatches([len(example["input_ids"]) for example in dataset],
                                    self.args.per_device_train_batch_size * self.args.world_size, self.args.seed)

    def training_step(self, model, inputs, num_items_in_batch=None):
        mask = inputs["attention_mask"]
        self.positions += torch.tensor([mask.numel(), int(mask.sum())])
        return super().training_step(model, inputs, num_items_in_batch)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The causal LM loss with logits only at the positions that predict a
        label: with retrieved passages most of a prompt is context, and its
        vocabulary projection (a fifth of the model's compute) is skipped."""
        labels = inputs["labels"]
        targets = labels[:, 1:]
        positions = (targets != -100).any(dim=0).nonzero().squeeze(1)
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                        logits_to_keep=positions)
        logits = outputs.logits.float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 targets[:, positions].reshape(-1), ignore_index=-100,
                                                 reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else (targets != -100).sum()
        loss = loss / count
        if (self.args.average_tokens_across_devices and num_items_in_batch is not None
                and self.model_accepts_loss_kwargs):
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # as transformers' own compute_loss
        return (loss, outputs) if return_outputs else loss

    def padding_fraction(self):
        """Share of the trained batch positions, over all processes, that were padding."""
        total, real = self.accelerator.gather(self.positions.to(self.args.device)).view(-1, 2).sum(0).tolist()
        return 1 - real / total if total else 0.0


NOT_TRAINING = ("merge", "resume", "save_every", "overlong")  # knobs that leave the training itself unchanged


def fingerprint(params, *parts):
    """A short hash of everything that decides a training run: the finetune
    params that shape training, and `parts` (data, base model, processes)."""
    shaping = params.model_dump(exclude=set(NOT_TRAINING))
    return hashlib.sha256(json.dumps([shaping, *parts], sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path):
    """sha256 of a file, or of every file under a directory."""
    path = Path(path)
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(path).as_posix().encode())  # "." for a single file
        digest.update(f.read_bytes())
    return digest.hexdigest()


def resume_point(work_dir, run_fingerprint):
    """The last complete checkpoint an interrupted run with the same fingerprint
    left in `work_dir`, or None. Checkpoints of any other run are removed (by the
    main process; the others only read)."""
    work = Path(work_dir)
    marker = work / FINGERPRINT
    if marker.exists() and marker.read_text() == run_fingerprint:
        complete = [c for c in work.glob("checkpoint-*") if (c / "trainer_state.json").exists()]
        return str(max(complete, key=lambda c: int(c.name.split("-")[1]))) if complete else None
    if is_main_process():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        marker.write_text(run_fingerprint)
    return None


def curves_from_history(history):
    """Train and val curves, one row per logged step, for DVC plots."""
    train, val = [], []
    for row in history:
        if "loss" in row and "step" in row:
            train.append({"step": row["step"], "train_loss": row["loss"],
                          "learning_rate": row.get("learning_rate"),
                          "tokens_seen": row.get("num_input_tokens_seen"),
                          "tokens_per_second": row.get("tokens_per_second")})
        if "eval_loss" in row:
            val.append({"step": row["step"], "val_loss": row["eval_loss"]})
    return train, val


def validation_start(trainer, saved, checkpoint):
    """Validation loss before the first step, kept in `saved` so that a resumed
    run still has the start of its curve."""
    if checkpoint and Path(saved).exists():
        return json.loads(Path(saved).read_text())
    loss = trainer.evaluate()["eval_loss"]
    if is_main_process():
        write_json(saved, loss)
    return loss


def mean_train_loss(curve):
    """Mean training loss over every step of the run, resumed or not."""
    return sum(row["train_loss"] for row in curve) / len(curve)


def final_validation(trainer):
    """Validation loss after the last step; evaluated unless the last step already was."""
    last = [row for row in trainer.state.log_history if "eval_loss" in row]
    if last and last[-1]["step"] == trainer.state.global_step:
        return last[-1]["eval_loss"]
    return trainer.evaluate()["eval_loss"]


def merge_adapter(base, adapter, out):
    """The base with the adapter folded in, a full checkpoint for runtimes
    without LoRA support. The base is reloaded unquantised, so QLoRA merges too."""
    model, tokenizer = load_model(base, adapter=adapter)
    model.merge_and_unload().save_pretrained(out)
    tokenizer.save_pretrained(out)


def peak_memory_mb():
    """Peak accelerator memory on a GPU; peak resident memory of this process on the CPU."""
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10)  # KiB on Linux


def launch_command(params, script):
    """The command that runs `script` in `finetune.num_processes` processes:
    torchrun (DDP), or accelerate launch with `finetune.accelerate_config`
    (FSDP, several nodes)."""
    n = params.num_processes
    if params.launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", script]
    config = params.accelerate_config
    if config and not Path(config).exists():
        raise PipelineError(f"params.yaml: finetune.accelerate_config: {config} not found.")
    return ([sys.executable, "-m", "accelerate.commands.launch", f"--num_processes={n}"]
            + ([f"--config_file={config}"] if config else []) + [script])
