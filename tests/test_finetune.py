import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from faqforge.core.config import parse_section
from faqforge.core.io import PipelineError
from faqforge.core.sections import Finetune
from faqforge.models.checkpoints import chat_prompt, load_model
from faqforge.training.setup import (
    PadCollator,
    check_init_adapter,
    mixed_precision,
    prepare_examples,
    quantization_config,
    tokenize_example,
)
from faqforge.training.trainer import Trainer, launch_command, resume_point, training_arguments
from tests.support.project import ROOT, write_params
from tests.support.sections import changed

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How do I run it?"},
        {"role": "assistant", "content": "Use make run."}]
TRAIN_PARAMS = Finetune(method="lora", lora_r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                        epochs=1, max_steps=30, learning_rate=5e-3, lr_scheduler="constant", warmup_steps=0,
                        batch_size=2, grad_accum=1, group_by_length=True, eval_every=10, save_every=0,
                        gradient_checkpointing=False, precision="auto", seed=0)


def chats(n, seed=0):
    """Single-turn chats whose answers run from one to eight sentences."""
    rng = random.Random(seed)
    return [{"id": f"p{i}", "messages": [
        {"role": "system", "content": "Answer from the docs."},
        {"role": "user", "content": f"How do I configure option {i}?"},
        {"role": "assistant", "content": " ".join(["Set it in params.yaml and run dvc repro."] * rng.randint(1, 8))}]}
        for i in range(n)]


def test_loss_only_on_assistant_tokens_token_by_token(tiny_model):
    _, tokenizer = load_model(tiny_model)
    example = tokenize_example(tokenizer, CHAT)
    prompt_ids = tokenizer(chat_prompt(tokenizer, CHAT[:-1]), add_special_tokens=False).input_ids
    full_ids = tokenizer(tokenizer.apply_chat_template(CHAT, tokenize=False), add_special_tokens=False).input_ids
    assert example["input_ids"] == full_ids and full_ids[:len(prompt_ids)] == prompt_ids
    for position, (token, label) in enumerate(zip(example["input_ids"], example["labels"])):
        assert label == (-100 if position < len(prompt_ids) else token), position
    answer = tokenizer.decode([t for t in example["labels"] if t != -100])
    assert answer.strip() == "Use make run." + tokenizer.eos_token  # the answer and its end-of-turn, nothing else


def test_overlong_examples_are_set_aside_not_cut(tiny_model):
    _, tokenizer = load_model(tiny_model)
    records = [{"id": "short", "messages": CHAT},
               {"id": "long", "messages": CHAT[:2] + [{"role": "assistant", "content": "word " * 400}]}]
    examples, overlong = prepare_examples(tokenizer, records, max_seq_length=64, overlong="skip")
    assert len(examples) == 1 and overlong[0]["id"] == "long" and overlong[0]["tokens"] > 64
    assert overlong[0]["reason"] == "longer than max_seq_length"
    with pytest.raises(PipelineError, match=r"data/train.jsonl: 1 examples are longer .*\(long\)"):
        prepare_examples(tokenizer, records, max_seq_length=64, overlong="error")


def test_collator_pads_with_ignored_labels():
    batch = PadCollator(0)([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
                            {"input_ids": [5], "labels": [5]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [5, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert PadCollator(0, pad_to=4)([{"input_ids": [5], "labels": [5]}])["input_ids"].tolist() == [[5, 0, 0, 0]]


def test_an_example_in_a_batch_sees_only_itself(tiny_model):
    """Logits of each example inside a padded, length-grouped batch equal its
    logits computed alone: no example attends to another or to padding."""
    model, tokenizer = load_model(tiny_model)
    examples, _ = prepare_examples(tokenizer, chats(4), 512, "skip")
    batch = PadCollator(tokenizer.pad_token_id)(examples)
    with torch.no_grad():
        together = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        for row, example in enumerate(examples):
            alone = model(input_ids=torch.tensor([example["input_ids"]])).logits[0]
            assert torch.allclose(together[row, :len(alone)], alone, atol=1e-4), row


def test_trainer_batches_hold_one_example_per_row_grouped_by_length(tiny_model, tmp_path):
    from faqforge.training.setup import lora_model
    model, tokenizer = load_model(tiny_model)
    examples, _ = prepare_examples(tokenizer, chats(42), 512, "skip")  # 10 batches of 4 and a short one
    trainer = Trainer(model=lora_model(model, TRAIN_PARAMS),
                      args=training_arguments(changed(TRAIN_PARAMS, batch_size=4), str(tmp_path), len(examples),
                                               has_val=False),
                      train_dataset=examples, data_collator=PadCollator(tokenizer.pad_token_id))
    by_ids = {tuple(e["input_ids"]): e for e in examples}
    seen, padded, total = 0, 0, 0
    for batch in trainer.get_train_dataloader():
        for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
            n = int(mask.sum())
            assert mask[:n].all() and not mask[n:].any()
            example = by_ids[tuple(ids[:n].tolist())]  # the real tokens are exactly one whole example
            assert labels[:n].tolist() == example["labels"] and (labels[n:] == -100).all()
            seen += 1
        padded += int((batch["attention_mask"] == 0).sum())
        total += batch["attention_mask"].numel()
    assert seen == len(examples)
    # All 42 fit in one megabatch: the batches are runs of the length-sorted examples, so the
    # padding is the least any batching into 4s achieves.
    lengths = sorted((len(e["input_ids"]) for e in examples), reverse=True)
    runs = [lengths[i:i + 4] for i in range(0, len(lengths), 4)]
    assert padded == sum(max(run) * len(run) - sum(run) for run in runs)
    assert padded / total < 0.05


def test_quantization_needs_cuda_and_says_so():
    assert quantization_config(Finetune(quantization="none")) is None
    with pytest.raises(PipelineError, match="4bit \\(QLoRA\\) needs a CUDA GPU.*quantization: none"):
        quantization_config(Finetune(quantization="4bit"), cuda=False)
    with pytest.raises(PipelineError, match=r"finetune\.quantization: input should be 'none' or '4bit' \(got '8bit'\)"):
        parse_section("params.yaml", "finetune", {"quantization": "8bit"})


def test_precision_auto_is_bf16_on_a_cpu_that_has_it_else_fp32():
    assert mixed_precision(Finetune(precision="auto"), cuda=False, cpu_bf16=False) == (False, False)
    assert mixed_precision(Finetune(precision="auto"), cuda=False, cpu_bf16=True) == (True, False)
    assert mixed_precision(Finetune(precision="bf16"), cuda=False) == (True, False)
    with pytest.raises(PipelineError, match="finetune.precision"):
        parse_section("params.yaml", "finetune", {"precision": "fp8"})


def test_launch_commands():
    command = launch_command(Finetune(num_processes=4, launcher="torchrun"), "stages/finetune.py")
    assert command[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "stages/finetune.py"]
    command = launch_command(Finetune(num_processes=2, launcher="accelerate", accelerate_config=None), "s.py")
    assert command[1:] == ["-m", "accelerate.commands.launch", "--num_processes=2", "s.py"]
    with pytest.raises(PipelineError, match="accelerate_config: fsdp.yaml not found"):
        launch_command(Finetune(num_processes=2, launcher="accelerate", accelerate_config="fsdp.yaml"), "s.py")


def test_resume_point_takes_the_last_complete_checkpoint_of_the_same_run(tmp_path):
    work = tmp_path / "work"
    assert resume_point(work, "run-a") is None and (work / "fingerprint.txt").read_text() == "run-a"
    for step, complete in ((5, True), (10, True), (15, False)):  # 15 was cut off while being written
        (work / f"checkpoint-{step}").mkdir()
        if complete:
            (work / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert resume_point(work, "run-a") == str(work / "checkpoint-10")
    assert resume_point(work, "run-b") is None and not list(work.glob("checkpoint-*"))


def test_init_adapter_must_be_an_adapter_outside_the_output(tmp_path):
    with pytest.raises(PipelineError, match="this stage's own output"):
        check_init_adapter("models/adapter", "models/adapter")
    with pytest.raises(PipelineError, match="has no adapter_config.json"):
        check_init_adapter(tmp_path, "models/adapter")


# The stage itself, in a small project with the tiny student: interrupted and
# resumed, continued from an adapter, merged, and run in two processes.

STAGE_PARAMS = {"method": "lora", "max_steps": 12, "batch_size": 4, "eval_every": 4, "save_every": 4, "max_seq_length": 256,
                "lora_dropout": 0.0, "learning_rate": 5e-3, "warmup_steps": 0}


def finetune_project(root, tiny_model, **finetune):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["finetune"].update(STAGE_PARAMS, **finetune)
    write_params(root, params)
    (root / "models").mkdir()
    (root / "models" / "base").symlink_to(tiny_model)
    (root / "data").mkdir()
    (root / "data" / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats(32)))
    (root / "data" / "val.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats(8, seed=1)))
    return root


def set_finetune(project, **finetune):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["finetune"].update(finetune)
    write_params(project, params)


def stage(project, **popen):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / "stages" / "finetune.py")], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def run_stage(project):
    process = stage(project)
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-3000:]
    return out, json.loads((project / "metrics" / "train.json").read_text())


def curve(project, name="train_loss"):
    return [row[name] for row in json.loads((project / "plots" / f"{name}.json").read_text())]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model):
    """One uninterrupted run of the stage: the reference the others are compared with."""
    project = finetune_project(tmp_path_factory.mktemp("finished"), tiny_model)
    _, metrics = run_stage(project)
    return project, metrics


def test_stage_trains_and_reports(finished_run):
    project, metrics = finished_run
    assert metrics["steps"] == 12 and metrics["val_loss"] < metrics["val_loss_start"]
    assert metrics["trainable_parameters"] > 0 and metrics["tokens_per_second"] > 0
    assert 0 <= metrics["padding_fraction"] < 0.5 and metrics["peak_memory_mb"] > 0
    rows = json.loads((project / "plots" / "train_loss.json").read_text())
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert all(r["learning_rate"] > 0 and r["tokens_per_second"] > 0 for r in rows)
    assert [r["step"] for r in json.loads((project / "plots" / "val_loss.json").read_text())] == [0, 4, 8, 12]
    assert not (project / "cache" / "finetune").exists()  # checkpoints of a finished run are removed


def test_a_killed_run_resumes_from_its_last_checkpoint(finished_run, tmp_path, tiny_model):
    reference, expected = finished_run
    project = finetune_project(tmp_path, tiny_model)
    process = stage(project)
    checkpoint = project / "cache" / "finetune" / "checkpoint-8"
    deadline = time.monotonic() + 300
    while not (checkpoint / "trainer_state.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its second checkpoint"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (project / "metrics" / "train.json").exists()
    out, metrics = run_stage(project)
    assert "resuming from cache/finetune/checkpoint-8" in out
    assert metrics["steps"] == expected["steps"] == 12 and metrics["resumed_from"] == "cache/finetune/checkpoint-8"
    # Optimizer, scheduler, RNG and data order are restored: the run ends where the uninterrupted one did.
    assert metrics["val_loss"] == pytest.approx(expected["val_loss"], abs=1e-4)
    assert curve(project) == pytest.approx(curve(reference), abs=1e-4)
    assert metrics["val_loss_start"] == expected["val_loss_start"]


def test_init_adapter_continues_training_and_merge_writes_a_full_model(finished_run, tmp_path, tiny_model):
    from peft import PeftModel
    reference, expected = finished_run
    project = finetune_project(tmp_path, tiny_model, max_steps=4, init_adapter="previous", merge=True)
    shutil.copytree(reference / "models" / "adapter", project / "previous")
    _, metrics = run_stage(project)
    # Step 0 of the continued run is where the previous run ended, well below a fresh adapter's start.
    assert metrics["val_loss_start"] == pytest.approx(expected["val_loss"], abs=1e-4)
    assert metrics["val_loss"] < metrics["val_loss_start"] < expected["val_loss_start"] - 0.5
    base, tokenizer = load_model(tiny_model)
    ids = tokenizer(chat_prompt(tokenizer, CHAT[:-1]), return_tensors="pt").input_ids
    with torch.no_grad():
        with_adapter = PeftModel.from_pretrained(base, project / "models" / "adapter")(input_ids=ids).logits
        merged = load_model(str(project / "models" / "adapter" / "merged"))[0](input_ids=ids).logits
    assert torch.allclose(with_adapter, merged, atol=1e-4)


def test_ddp_on_two_cpu_processes_matches_one_process_with_the_same_global_batch(finished_run, tmp_path,
                                                                                 tiny_model):
    """finetune.num_processes: 2 launches the stage under torchrun (gloo); two
    processes of batch 2 follow the loss curve of one process of batch 4."""
    from peft import PeftModel
    reference, expected = finished_run
    project = finetune_project(tmp_path, tiny_model, num_processes=2, batch_size=2, save_every=0)
    out, metrics = run_stage(project)
    assert "launching 2 processes" in out and metrics["processes"] == 2 and metrics["steps"] == 12
    assert metrics["tokens_seen"] == expected["tokens_seen"]  # the same examples, counted over both processes
    assert curve(project) == pytest.approx(curve(reference), abs=0.05)
    assert curve(project)[-1] < curve(project)[0] - 0.5
    PeftModel.from_pretrained(load_model(tiny_model)[0], project / "models" / "adapter")


def test_fsdp_config_is_a_valid_accelerate_config():
    from accelerate.commands.config.config_args import load_config_from_file
    config = load_config_from_file(str(ROOT / "configs" / "accelerate_fsdp.yaml"))
    assert config.distributed_type.value == "FSDP"
    assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # a whole adapter, standard PEFT format


def test_full_fine_tune_trains_every_weight_and_evaluation_loads_it_beside_the_base(tmp_path, tiny_model):
    import torch

    from faqforge.models.local import local_models
    project = finetune_project(tmp_path, tiny_model, method="full", learning_rate=1e-3, max_steps=4)
    out, metrics = run_stage(project)
    assert "finetune (full)" in out and metrics["val_loss"] < metrics["val_loss_start"]
    assert metrics["trainable_parameters"] == metrics["total_parameters"]
    tuned = project / "models" / "adapter"
    assert (tuned / "model.safetensors").exists() and not (tuned / "adapter_config.json").exists()
    assert json.loads((tuned / "prompt.json").read_text())["method"] == "full"
    students = local_models(str(project / "models" / "base"), {"tuned": str(tuned)})
    models = {side: students[side].model for side in ("base", "tuned")}
    assert models["base"] is not models["tuned"]
    moved = [name for (name, a), (_, b) in zip(models["base"].named_parameters(), models["tuned"].named_parameters())
               if not torch.equal(a, b)]
    assert len(moved) > len(list(models["base"].parameters())) // 2   # not an adapter: the weights moved
    with pytest.raises(PipelineError, match="finetune.method: full trains every weight"):
        from faqforge.training.setup import trainable_model
        trainable_model(models["tuned"], Finetune(method="full", quantization="4bit"))
