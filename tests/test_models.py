import pytest

from faqforge.core.io import PipelineError, write_json
from faqforge.models.checkpoints import checkpoint_source, embedded_gguf, load_model, local_checkpoint
from faqforge.models.decoding import generate_chat
from faqforge.models.sampling import Sampling


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
    batched = generate_chat(model, tokenizer, chats, Sampling(max_tokens=6), batch_size=2)
    single = [generate_chat(model, tokenizer, [c], Sampling(max_tokens=6))[0] for c in chats]
    assert [r["text"] for r in batched] == [r["text"] for r in single]
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] <= 6 for r in batched)


def test_finished_rows_leave_the_batch_and_the_others_keep_transformers_tokens(tiny_model, monkeypatch):
    from faqforge.models.checkpoints import chat_prompt
    model, tokenizer = load_model(tiny_model)
    chats = [[{"role": "user", "content": "Hello there, how are you today?"}],
             [{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Wie spät ist es in Köln?"}]]
    reference = []   # transformers' own generate, one prompt at a time, greedy
    for chat in chats:
        ids = tokenizer(chat_prompt(tokenizer, chat), add_special_tokens=False, return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        reference.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())
    rows = []
    real = type(model).forward

    def forward(self, *args, **kwargs):                 # how many rows each decoding step computed
        rows.append(kwargs["input_ids"].shape[0])
        return real(self, *args, **kwargs)
    monkeypatch.setattr(type(model), "forward", forward)
    stopped = generate_chat(model, tokenizer, chats, Sampling(max_tokens=12, top_logprobs=2), batch_size=3,
                            shared_prefix=False, should_stop=lambda i: i == 1)   # conversation 1 ends at once
    assert rows[:3] == [3, 2, 2] and len(rows) == 12    # it left the batch after its first token
    assert stopped[1]["completion_tokens"] == 1 and stopped[1]["finish_reason"] == "length"
    assert [stopped[0]["text"], stopped[2]["text"]] == [reference[0], reference[2]]
    assert [len(r["logprobs"]) for r in stopped] == [r["completion_tokens"] for r in stopped]


def test_a_sampled_reply_does_not_depend_on_its_batch(tiny_model):
    model, tokenizer = load_model(tiny_model)
    chats = [[{"role": "user", "content": q}] for q in ("Hello there, how are you today?", "Hi", "Was ist LoRA?")]
    sampled = Sampling(max_tokens=10, temperature=1.0, top_p=0.9, seed=3)
    batched = generate_chat(model, tokenizer, chats, sampled, batch_size=3)
    assert [r["text"] for r in batched] == [generate_chat(model, tokenizer, [c], sampled)[0]["text"] for c in chats]
    assert generate_chat(model, tokenizer, chats[:1], sampled.replace(seed=4))[0]["text"] != batched[0]["text"]


def test_a_shared_prompt_prefix_is_read_once_and_gives_the_same_tokens(tiny_model, monkeypatch):
    from transformers import DynamicCache

    import faqforge.models.decoding as generation
    model, tokenizer = load_model(tiny_model)
    system = {"role": "system", "content": "You answer questions about faqforge from the passages you are "
                                           "given, in one sentence, and cite the passage you used."}
    chats = [[system, {"role": "user", "content": q}]
             for q in ["How do I push data to the remote?", "Hi", "Wie spät ist es in Köln?", "What is LoRA?"]]
    unshared = generate_chat(model, tokenizer, chats, Sampling(max_tokens=12, top_logprobs=2), batch_size=3,
                             shared_prefix=False)
    reads = []
    real = generation._prefix_cache

    def prefix_cache(model, prefix, rows, *args):      # what each batch read in once, into which cache
        cache = real(model, prefix, rows, *args)
        reads.append((len(prefix), rows, type(cache)))
        return cache
    monkeypatch.setattr(generation, "_prefix_cache", prefix_cache)
    shared = generate_chat(model, tokenizer, chats, Sampling(max_tokens=12, top_logprobs=2), batch_size=3)
    system_tokens = len(tokenizer(system["content"], add_special_tokens=False).input_ids)
    # the first batch of 3 shares the system turn and more; the last batch has one row: nothing to share
    assert len(reads) == 1 and reads[0][0] >= system_tokens and reads[0][1:] == (3, DynamicCache)
    assert [r["text"] for r in shared] == [r["text"] for r in unshared]
    assert [r["prompt_tokens"] for r in shared] == [r["prompt_tokens"] for r in unshared]
    for a, b in zip(shared, unshared):
        assert [t["token"] for t in a["logprobs"]] == [t["token"] for t in b["logprobs"]]
        assert [t["logprob"] for t in a["logprobs"]] == pytest.approx([t["logprob"] for t in b["logprobs"]], abs=1e-4)


def test_rows_keep_their_own_tokens_after_the_shared_prefix():
    from faqforge.models.decoding import _common_prefix, _padded
    assert _common_prefix([[1, 2, 3, 4], [1, 2, 3, 9, 9]]) == 3
    assert _common_prefix([[1, 2, 3], [1, 2, 3]]) == 2          # each row keeps one token of its own
    assert _common_prefix([[5, 2], [1, 2]]) == 0
    batch = _padded([[1, 2, 3, 4], [1, 2, 3, 9, 9, 9]], 3, 0)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 0, 0, 4], [1, 2, 3, 9, 9, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 1], [1, 1, 1, 1, 1, 1]]
    assert _padded([[7], [8, 9]], 0, 0)["input_ids"].tolist() == [[0, 7], [8, 9]]   # plain left padding


def test_a_stop_string_ends_a_reply_where_it_first_appears_and_is_left_out(tiny_model):
    from tests.support.corpus import a_stop_in
    model, tokenizer = load_model(tiny_model)
    chats = [[{"role": "user", "content": "Hello there, how are you today?"}], [{"role": "user", "content": "Hi"}]]
    sampled = Sampling(max_tokens=16, temperature=1.0, seed=1)   # greedy, the random tiny model writes blank lines
    free = generate_chat(model, tokenizer, chats, sampled, batch_size=2)
    stop, before = a_stop_in(free[0]["text"])
    cut = generate_chat(model, tokenizer, chats, sampled.replace(stop=(stop,)), batch_size=2)
    assert cut[0]["text"] == before and cut[0]["finish_reason"] == "stop"
    assert cut[0]["completion_tokens"] < free[0]["completion_tokens"]   # generation stopped there, not cut after
    if stop not in free[1]["text"]:
        assert cut[1] == free[1]                                        # the other row of the batch goes on


def test_streamed_text_holds_back_what_may_become_a_stop_string(tiny_model):
    from faqforge.models.checkpoints import load_tokenizer
    from faqforge.models.local import TextFeed
    tokenizer = load_tokenizer(tiny_model)
    pieces = []
    feed = TextFeed(tokenizer, pieces.append, stop=("END",))
    for token_id in tokenizer("  Run dvc push. ENDING here", add_special_tokens=False).input_ids:
        feed.token(token_id)
    feed.finish("Run dvc push.")
    assert "".join(pieces) == "Run dvc push." and len(pieces) > 1
    plain = []
    feed = TextFeed(tokenizer, plain.append)
    for token_id in tokenizer("Schöne Grüße aus Köln ", add_special_tokens=False).input_ids:
        feed.token(token_id)
    assert "".join(plain) == "Schöne Grüße aus Köln" and all("\ufffd" not in p for p in plain)
