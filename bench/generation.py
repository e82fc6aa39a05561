"""Local generation: transformers' `generate` against faqforge's decoding loop
(`generate_chat`: the shared prompt prefix read once per batch, finished rows
leaving the batch), in one run.

    .venv/bin/python -m bench.generation [generate|curate] [n]

`generate` (the default): the embedded teacher writes the generate stage's
replies (its prompts, worked examples and JSON schemas from params.yaml,
guided decoding, greedy, in the teacher's batches) for the first n chunks of
data/chunks.jsonl (32 by default; `dvc repro ingest` first).
`curate`: the teacher judges the first n pairs of data/qa_raw.jsonl (64 by
default; `dvc repro generate` first) with the curate stage's prompt, worked
examples, reply budget and log-probabilities.

Each workload runs three times, in the same batches (sorted by prompt length,
left-padded): with transformers' `model.generate` (the baseline, what a user of
transformers writes: its default cache, the same guided-decoding logits
processor, log-probabilities from `output_scores`), with faqforge's loop reading
every prompt whole, and with faqforge's loop as the stages run it (shared prefix).
Target: faster, and the same replies.
"""

import sys
import time

import torch

from faqforge.core.config import load_config
from faqforge.core.io import read_jsonl
from faqforge.models.checkpoints import chat_prompt, load_model, local_checkpoint
from faqforge.models.decoding import generate_chat
from faqforge.models.guided import JsonSchemaGuide, schema_of, string_array_shape
from faqforge.models.sampling import Sampling
from faqforge.synthesis.curate import judge_messages
from faqforge.synthesis.generate import generation_messages, questions_for, response_format

BASELINE = "transformers' generate"
VARIANTS = {"faqforge, whole prompts": {"shared_prefix": False},
            "faqforge (shared prefix)": {"shared_prefix": True}}


def transformers_generate(model, tokenizer, chats, sampling, batch_size, schemas=None):
    """The baseline: `model.generate` over the same batches, with the same guide and greedy decoding."""
    prompts = [chat_prompt(tokenizer, chat) for chat in chats]
    lengths = [len(tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    tokenizer.padding_side = "left"
    texts = [None] * len(prompts)
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        batch = tokenizer([prompts[i] for i in idx], add_special_tokens=False, padding=True, return_tensors="pt")
        processors = []
        if schemas:
            processors.append(JsonSchemaGuide(tokenizer, model.config.vocab_size,
                                              [string_array_shape(schemas[i]) for i in idx],
                                              stop_id=tokenizer.eos_token_id, no_repeat_ngram=sampling.no_repeat_ngram))
        out = model.generate(**batch, max_new_tokens=sampling.max_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, logits_processor=processors,
                             output_scores=bool(sampling.top_logprobs), return_dict_in_generate=True)
        for row, i in enumerate(idx):
            new = out.sequences[row, batch["input_ids"].shape[1]:]
            texts[i] = tokenizer.decode(new, skip_special_tokens=True).strip()
    return [{"text": t} for t in texts]


def generate_workload(params, n):
    p = params["generate"]
    chunks = read_jsonl("data/chunks.jsonl")[:n]
    wanted = [questions_for(c["n_tokens"], p.tokens_per_question, p.min_questions, p.max_questions)
              for c in chunks]
    chats = [generation_messages(c, p, k) for c, k in zip(chunks, wanted)]
    settings = {"sampling": Sampling(max_tokens=p.max_tokens,
                                     no_repeat_ngram=params["teacher"].guided_no_repeat_ngram),
                "schemas": [schema_of(response_format(k, p)) for k in wanted]}
    return chats, settings, f"{len(chats)} chunks, {sum(wanted)} questions asked, max_tokens {p.max_tokens}"


def curate_workload(params, n):
    judge = params["curate"].judge
    chunk_text = {c["chunk_id"]: c["text"] for c in read_jsonl("data/chunks.jsonl")}
    pairs = read_jsonl("data/qa_raw.jsonl")[:n]
    chats = [judge_messages(x, chunk_text[x["chunk_id"]], judge) for x in pairs]
    settings = {"sampling": Sampling(max_tokens=judge.max_tokens, top_logprobs=judge.top_logprobs)}
    return chats, settings, f"{len(chats)} pairs judged, max_tokens {judge.max_tokens}"


def main():
    workload = sys.argv[1] if len(sys.argv) > 1 else "generate"
    params = load_config(sections=["teacher", "generate", "curate"])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else {"generate": 32, "curate": 64}[workload]
    chats, settings, what = {"generate": generate_workload, "curate": curate_workload}[workload](params, n)
    batch_size = params["teacher"].batch_size
    model, tokenizer = load_model(local_checkpoint(params["teacher"].model))
    generate_chat(model, tokenizer, chats[:2], Sampling(max_tokens=8))  # warm-up, timed for none
    timings, replies = {}, {}
    start = time.monotonic()
    replies[BASELINE] = transformers_generate(model, tokenizer, chats, batch_size=batch_size, **settings)
    timings[BASELINE] = time.monotonic() - start
    for name, variant in VARIANTS.items():
        start = time.monotonic()
        replies[name] = generate_chat(model, tokenizer, chats, batch_size=batch_size, desc=name, **variant, **settings)
        timings[name] = time.monotonic() - start
    tokens = sum(r["completion_tokens"] for r in replies[name])
    prompt = sum(r["prompt_tokens"] for r in replies[name])
    print(f"{workload}: {what}, batches of {batch_size}, greedy, {torch.get_num_threads()} threads, "
          f"{prompt:,} prompt tokens, {tokens:,} reply tokens")
    base = timings[BASELINE]
    for name, seconds in timings.items():
        same = sum(a["text"] == b["text"] for a, b in zip(replies[BASELINE], replies[name]))
        print(f"  {name:28s} {seconds:7.1f} s  {base / seconds:5.2f}x transformers' generate  "
              f"replies identical to its: {same} of {len(chats)}")


if __name__ == "__main__":
    main()
