"""Batched answer generation against one question at a time, in the same run.

    .venv/bin/python -m bench.evaluate [n_questions]

The trained student (models/adapter/: a full checkpoint by default, or a LoRA
adapter on models/base/; from `dvc repro finetune` or `dvc pull`), loaded as the
evaluate stage loads it, answers the questions of data/eval/evalset.json the
way the stage's tuned + retrieval arm asks them (the student's chat layout, the
top split.raft.passages passages of data/index/, evaluate's decoding settings),
first one question per `generate_chat` call (the baseline: what a caller without
batching does), then in the stage's batches of evaluate.batch_size. Target:
batched at least 3x faster, identical answers.
"""

import sys
import time

import torch

from faqforge.core.config import load_config
from faqforge.core.io import read_evalset
from faqforge.documents.retrieval import Retriever
from faqforge.evaluation.answers import arm_chats, decoding
from faqforge.models.decoding import generate_chat
from faqforge.models.local import local_models


def main():
    config = load_config(sections=["evaluate", "split", "student"])
    p, split = config["evaluate"], config["split"]
    evalset = read_evalset("data/eval/evalset.json")
    if len(sys.argv) > 1:
        evalset = evalset[:int(sys.argv[1])]
    questions = [item["question"] for item in evalset]
    chats = arm_chats(questions, Retriever().search(questions, split.raft.passages), split.system_prompt)["tuned_rag"]
    tuned = local_models("models/base", {"tuned": "models/adapter"}, dtype=config["student"].dtype)["tuned"]
    model, tokenizer, sampling = tuned.model, tuned.tokenizer, decoding(p)
    generate_chat(model, tokenizer, chats[:2], sampling, batch_size=2)  # warm-up, timed for neither
    timings, answers = {}, {}
    for name, batch_size in (("one at a time", 1), (f"batches of {p.batch_size}", p.batch_size)):
        start = time.monotonic()
        replies = generate_chat(model, tokenizer, chats, sampling, batch_size=batch_size, desc=name)
        timings[name], answers[name] = time.monotonic() - start, [r["text"] for r in replies]
    (one, one_s), (batched, batched_s) = [(answers[k], timings[k]) for k in timings]
    same = sum(a == b for a, b in zip(one, batched))
    lengths = sorted(len(tokenizer(a, add_special_tokens=False).input_ids) for a in batched)
    print(f"{len(chats)} questions with {split.raft.passages} passages, max_new_tokens {p.max_new_tokens}, "
          f"stop {list(p.stop)}, {torch.get_num_threads()} threads, {sum(lengths):,} answer tokens "
          f"(median {lengths[len(lengths) // 2]}, longest {lengths[-1]})")
    for name, seconds in timings.items():
        print(f"{name:>16}: {seconds:6.1f} s ({sum(lengths) / seconds:6.1f} answer tokens/s)")
    print(f"batched / one at a time: {one_s / batched_s:.1f}x faster (target >= 3x); identical answers: "
          f"{same} of {len(chats)}")
    for k, (a, b) in enumerate(zip(one, batched)):
        if a != b:
            print(f"  differs at question {k}:\n    one:     {a!r}\n    batched: {b!r}")


if __name__ == "__main__":
    main()
