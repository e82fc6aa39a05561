"""The retrieval encoder, fine-tuned on the pipeline's own pairs: models/retriever/.

    dvc repro retriever         # or: python stages/retriever.py

Trains retriever.base (the embedded all-MiniLM-L6-v2) to put each training
question next to the passage of its chunk that answers it, on the training side
of the split stage's own partition of data/qa_augmented.jsonl
(faqforge.training.retriever): no validation pair and no eval question is ever
trained on. The index stage embeds the passages with it (index.dense.model:
models/retriever). metrics/retriever.json has the training run and, on the
validation pairs, recall@1 and @k of each one's own chunk for BM25, the encoder
before and after training, and the hybrid; data/retriever_dropped.jsonl the pairs
that gave no training example, with why.
"""

import tempfile

from faqforge.core.config import load_config
from faqforge.core.io import read_evalset, read_jsonl
from faqforge.core.stage import finish, run
from faqforge.training.retriever import fit_retriever


def main():
    config = load_config(sections=["retriever", "index", "split", "decontaminate"])
    pairs = read_jsonl("data/qa_augmented.jsonl")
    with tempfile.TemporaryDirectory() as scratch:
        metrics, skipped = fit_retriever(pairs, read_jsonl("data/chunks.jsonl"),
                                         read_evalset("data/eval/evalset.json"), config, scratch)
    recall = metrics["val_own_chunk_recall"]
    finish("retriever", len(pairs), metrics["examples"], skipped, metrics,
           summary=f"{metrics['examples']} training examples, {metrics['training'].get('steps', 0)} steps; "
                   f"validation pairs' own chunk at rank 1: BM25 {recall['bm25']['at_1']}, "
                   f"trained {recall['trained']['at_1']}, hybrid {recall['hybrid']['at_1']}")


if __name__ == "__main__":
    run(main)
