import torch

from faqforge.finetune import PadCollator, padding_fraction, prepare_examples, tokenize_example
from faqforge.models import chat_prompt, load_model

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How do I run it?"},
        {"role": "assistant", "content": "Use make run."}]


def test_loss_only_on_assistant_tokens(tiny_model):
    _, tokenizer = load_model(tiny_model)
    example = tokenize_example(tokenizer, CHAT)
    n_prompt = len(tokenizer(chat_prompt(tokenizer, CHAT[:-1]), add_special_tokens=False).input_ids)
    assert example["labels"][:n_prompt] == [-100] * n_prompt
    answer = [t for t in example["labels"] if t != -100]
    decoded = tokenizer.decode(answer)
    assert decoded.startswith("Use make run.") and tokenizer.eos_token in decoded


def test_overlong_examples_are_set_aside_not_cut(tiny_model):
    _, tokenizer = load_model(tiny_model)
    records = [{"id": "short", "messages": CHAT},
               {"id": "long", "messages": CHAT[:2] + [{"role": "assistant", "content": "word " * 400}]}]
    examples, overlong = prepare_examples(tokenizer, records, max_seq_length=64)
    assert len(examples) == 1 and overlong[0]["id"] == "long" and overlong[0]["tokens"] > 64


def test_collator_pads_with_ignored_labels():
    batch = PadCollator(0)([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
                            {"input_ids": [5], "labels": [5]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [5, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_padding_fraction():
    assert padding_fraction([4, 4, 2, 2], 2) == 0.0
    assert padding_fraction([4, 2], 2) == 0.25


def test_lora_training_reduces_loss_on_tiny_model(tiny_model, tmp_path):
    from transformers import Trainer

    from faqforge.finetune import lora_model, training_arguments
    model, tokenizer = load_model(tiny_model)
    params = {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear",
              "epochs": 1, "max_steps": 30, "learning_rate": 5e-3, "lr_scheduler": "constant",
              "warmup_steps": 0, "batch_size": 2, "grad_accum": 1, "eval_every": 10,
              "gradient_checkpointing": False, "seed": 0}
    examples, _ = prepare_examples(tokenizer, [{"id": "a", "messages": CHAT}] * 4, 128)
    model = lora_model(model, params)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    trainer = Trainer(model=model, args=training_arguments(params, str(tmp_path), len(examples)),
                      train_dataset=examples, eval_dataset=examples, data_collator=PadCollator(tokenizer.pad_token_id))
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < before - 0.5
    assert torch.isfinite(torch.tensor(after))
