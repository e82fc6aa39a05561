"""Batched answer generation against one question at a time, in the same run.

    .venv/bin/python -m bench.evaluate [n_questions]

The tuned student (models/base/ + models/adapter/, from `dvc repro finetune`
or `dvc pull`) answers the questions of data/eval/evalset.json greedily with
the evaluate params (max_new_tokens, system prompt), each shown its top
split.raft.passages passages of data/index/ as in the stage's tuned + retrieval
arm (closed book with split.context closed_book), first one question per
`generate` call (the baseline), then in the stage's batches (sorted by prompt
length, left-padded). Target: batched at least 3x faster, identical answers.
"""

import sys
import time

import torch

from faqforge.core.chat_format import question_messages
from faqforge.core.config import load_config
from faqforge.core.io import read_evalset
from faqforge.documents.retrieval import Retriever
from faqforge.models.checkpoints import load_model
from faqforge.models.decoding import generate_chat
from faqforge.models.sampling import Sampling


def main():
    params = load_config(sections=["evaluate", "split"])
    p = params["evaluate"]
    evalset = read_evalset("data/eval/evalset.json")
    if len(sys.argv) > 1:
        evalset = evalset[:int(sys.argv[1])]
    model, tokenizer = load_model("models/base", adapter="models/adapter")
    split = params["split"]
    questions = [item["question"] for item in evalset]
    shown = (Retriever().search(questions, split.raft.passages) if split.context == "raft"
             else [None] * len(questions))
    chats = [question_messages(q, split.system_prompt, passages) for q, passages in zip(questions, shown)]
    settings = {"sampling": Sampling(max_tokens=p.max_new_tokens, temperature=0.0)}
    generate_chat(model, tokenizer, chats[:2], batch_size=2, **settings)  # warm-up, timed for neither
    timings, answers = {}, {}
    for name, batch_size in (("one at a time", 1), (f"batches of {p.batch_size}", p.batch_size)):
        start = time.monotonic()
        replies = generate_chat(model, tokenizer, chats, batch_size=batch_size, desc=name, **settings)
        timings[name], answers[name] = time.monotonic() - start, [r["text"] for r in replies]
    (one, one_s), (batched, batched_s) = [(answers[k], timings[k]) for k in timings]
    same = sum(a == b for a, b in zip(one, batched))
    tokens = sum(len(tokenizer(a, add_special_tokens=False).input_ids) for a in batched)
    print(f"{len(chats)} questions ({split.context}), max_new_tokens {p.max_new_tokens}, greedy, "
          f"{torch.get_num_threads()} threads, {tokens:,} answer tokens")
    for name, seconds in timings.items():
        print(f"{name:>16}: {seconds:6.1f} s ({tokens / seconds:6.1f} answer tokens/s)")
    print(f"batched / one at a time: {one_s / batched_s:.1f}x faster (target >= 3x); identical answers: "
          f"{same} of {len(chats)}")
    for k, (a, b) in enumerate(zip(one, batched)):
        if a != b:
            print(f"  differs at question {k}:\n    one:     {a!r}\n    batched: {b!r}")


if __name__ == "__main__":
    main()
