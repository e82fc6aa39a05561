import pytest

from faqforge.io import PipelineError, write_json
from faqforge.generation import generate_chat
from faqforge.models import checkpoint_source, embedded_gguf, load_model, local_checkpoint


def test_embedded_spec_resolves_to_the_wheel_gguf():
    directory, gguf = embedded_gguf("embedded:smollm2-135m-instruct")
    assert (directory / gguf).stat().st_size > 50_000_000


def test_unknown_embedded_model_is_a_clear_error():
    with pytest.raises(PipelineError, match="unknown embedded model"):
        embedded_gguf("embedded:gpt-5")


def test_teacher_reuses_the_students_checkpoint_when_same_model(tmp_path):
    base = tmp_path / "base"
    write_json(base / "faqforge_source.json", {"source": "embedded:smollm2-135m-instruct"})
    assert checkpoint_source(base) == "embedded:smollm2-135m-instruct"
    assert local_checkpoint("embedded:smollm2-135m-instruct", base) == str(base)
    assert local_checkpoint("/some/other/checkpoint", base) == "/some/other/checkpoint"


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match="cannot load model"):
        load_model(str(tmp_path / "nope"))


def test_batched_generation_matches_one_by_one(tiny_model):
    model, tokenizer = load_model(tiny_model)
    chats = [[{"role": "user", "content": "Hello there, how are you today?"}],
             [{"role": "user", "content": "Hi"}]]
    batched = generate_chat(model, tokenizer, chats, max_new_tokens=6, batch_size=2)
    single = [generate_chat(model, tokenizer, [c], max_new_tokens=6)[0] for c in chats]
    assert [r["text"] for r in batched] == [r["text"] for r in single]
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] <= 6 for r in batched)


def test_the_static_cache_gives_the_default_caches_tokens(tiny_model, monkeypatch):
    from transformers import StaticCache
    model, tokenizer = load_model(tiny_model)
    chats = [[{"role": "user", "content": "Hello there, how are you today?"}],
             [{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Wie spät ist es in Köln?"}]]
    default = generate_chat(model, tokenizer, chats, max_new_tokens=12, batch_size=2, static_cache=False,
                            top_logprobs=2)
    caches = []
    real = type(model).forward

    def forward(self, *args, **kwargs):                 # which cache each decoding step used
        caches.append(type(kwargs.get("past_key_values")))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(type(model), "forward", forward)
    static = generate_chat(model, tokenizer, chats, max_new_tokens=12, batch_size=2, top_logprobs=2)
    assert caches and set(caches) == {StaticCache}      # the default path ran with a static cache
    assert [r["text"] for r in static] == [r["text"] for r in default]
    assert [[t["token"] for t in r["logprobs"]] for r in static] == [[t["token"] for t in r["logprobs"]] for r in default]
