"""Local generation with a static key/value cache against transformers' default, in the same run.

    .venv/bin/python bench/generation.py [n_chunks]

The embedded teacher writes the generate stage's replies (its prompts, worked
examples and JSON schemas from params.yaml, guided decoding, greedy, in the
teacher's batches) for the first n_chunks chunks of data/chunks.jsonl (32 by
default; `dvc repro ingest` first), once with transformers' default cache
(grown by concatenation at every step: the baseline, what `model.generate`
does unless told otherwise) and once with the static cache `generate_chat`
uses. Target: faster, and the very same replies.
"""

import sys
import time

import torch

from faqforge.generate import generation_messages, questions_for, response_format
from faqforge.generation import generate_chat
from faqforge.guided import schema_of
from faqforge.io import load_params, read_jsonl
from faqforge.models import load_model, local_checkpoint


def main():
    params = load_params(sections=["teacher", "generate"])
    teacher, p = params["teacher"], params["generate"]
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    chunks = read_jsonl("data/chunks.jsonl")[:n]
    wanted = [questions_for(c["n_tokens"], p["tokens_per_question"], p["min_questions"], p["max_questions"])
              for c in chunks]
    chats = [generation_messages(c, p, k) for c, k in zip(chunks, wanted)]
    schemas = [schema_of(response_format(k, p)) for k in wanted]
    model, tokenizer = load_model(local_checkpoint(teacher["model"]))
    settings = {"max_new_tokens": p["max_tokens"], "batch_size": teacher["batch_size"], "schemas": schemas,
                "no_repeat_ngram": teacher["guided_no_repeat_ngram"]}
    generate_chat(model, tokenizer, chats[:2], max_new_tokens=8, schemas=schemas[:2])  # warm-up, timed for neither
    timings, replies = {}, {}
    for name, static in (("default cache", False), ("static cache", True)):
        start = time.monotonic()
        out = generate_chat(model, tokenizer, chats, desc=name, static_cache=static, **settings)
        timings[name], replies[name] = time.monotonic() - start, out
    tokens = sum(r["completion_tokens"] for r in replies["static cache"])
    same = sum(a["text"] == b["text"] for a, b in zip(*replies.values()))
    print(f"{len(chats)} chunks, {sum(wanted)} questions asked, max_tokens {p['max_tokens']}, batches of "
          f"{teacher['batch_size']}, greedy, {torch.get_num_threads()} threads, {tokens:,} reply tokens")
    for name, seconds in timings.items():
        print(f"  {name:14s} {seconds:7.1f} s  {tokens / seconds:6.1f} tokens/s")
    base, static = timings.values()
    print(f"static cache: {base / static:.2f}x the default cache's speed; identical replies: {same} of {len(chats)}")


if __name__ == "__main__":
    main()
