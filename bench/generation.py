"""Local generation: transformers' default key/value cache against the static
cache and the shared-prompt-prefix read that `generate_chat` uses, in one run.

    .venv/bin/python -m bench.generation [generate|curate] [n]

`generate` (the default): the embedded teacher writes the generate stage's
replies (its prompts, worked examples and JSON schemas from params.yaml,
guided decoding, greedy, in the teacher's batches) for the first n chunks of
data/chunks.jsonl (32 by default; `dvc repro ingest` first).
`curate`: the teacher judges the first n pairs of data/qa_raw.jsonl (64 by
default; `dvc repro generate` first) with the curate stage's prompt, worked
examples, reply budget and log-probabilities.

Each workload runs three times: with transformers' default cache (grown by
concatenation at every step: the baseline, what `model.generate` does unless
told otherwise), with the static cache, and with the static cache plus the
shared prompt prefix read once per batch (what `generate_chat` does). Target:
faster, and the same replies.
"""

import sys
import time

import torch

from faqforge.core.config import load_config
from faqforge.core.io import read_jsonl
from faqforge.models.checkpoints import load_model, local_checkpoint
from faqforge.models.decoding import generate_chat
from faqforge.models.guided import schema_of
from faqforge.models.sampling import Sampling
from faqforge.synthesis.curate import judge_messages
from faqforge.synthesis.generate import generation_messages, questions_for, response_format

VARIANTS = {"default cache": {"static_cache": False, "shared_prefix": False},
            "static cache": {"static_cache": True, "shared_prefix": False},
            "static + shared prefix": {"static_cache": True, "shared_prefix": True}}


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
    for name, variant in VARIANTS.items():
        start = time.monotonic()
        replies[name] = generate_chat(model, tokenizer, chats, batch_size=batch_size, desc=name, **variant, **settings)
        timings[name] = time.monotonic() - start
    tokens = sum(r["completion_tokens"] for r in replies["default cache"])
    prompt = sum(r["prompt_tokens"] for r in replies["default cache"])
    print(f"{workload}: {what}, batches of {batch_size}, greedy, {torch.get_num_threads()} threads, "
          f"{prompt:,} prompt tokens, {tokens:,} reply tokens")
    base = timings["default cache"]
    for name, seconds in timings.items():
        same = sum(a["text"] == b["text"] for a, b in zip(replies["default cache"], replies[name]))
        print(f"  {name:24s} {seconds:7.1f} s  {base / seconds:5.2f}x the default cache  "
              f"replies identical to the default cache's: {same} of {len(chats)}")


if __name__ == "__main__":
    main()
