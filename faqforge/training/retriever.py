"""The retriever stage's work: the embedded encoder fine-tuned on the training side
of the split, and checked on its validation side.

The pairs are split exactly as the split stage splits them (a stable coin per
group, faqforge.dataset.split.split_pairs), so the encoder never trains on a
validation pair, and its examples (faqforge.dataset.encoder_pairs) refuse any
pair the decontaminate rule matches to an eval item: it never sees an eval
question. The hard negatives come from a BM25 index over the same passages the
index stage cuts. Validation: recall@1 and recall@k of each validation pair's
own chunk, for BM25, the encoder before training, after it, and the hybrid of
BM25 and the trained encoder. What it was trained from is written beside it
(retriever.json).
"""

import shutil
from pathlib import Path

from faqforge.core.io import write_json
from faqforge.dataset.encoder_pairs import encoder_examples
from faqforge.dataset.split import split_pairs
from faqforge.documents.retrieval import ENCODER_CARD, Retriever, build_index
from faqforge.models.encoders import encoder_directory
from faqforge.training.encoder import train_encoder

RETRIEVER_DIR = "models/retriever"


def own_chunk_recall(retriever, pairs, ks):
    """{k: the share of `pairs` whose own chunk is among the top k passages}."""
    if not pairs:
        return {k: None for k in ks}
    ranked = retriever.search([p["question"] for p in pairs], max(ks))
    return {k: round(sum(any(h["chunk_id"] == p["chunk_id"] for h in hits[:k]) for p, hits in zip(pairs, ranked))
                     / len(pairs), 4) for k in ks}


def fit_retriever(pairs, chunks, evalset, config, scratch, out_dir=RETRIEVER_DIR):
    """Train the encoder of `config["retriever"]` on the training side of `pairs` and
    save it to `out_dir` (with epochs 0, the base as it is). `config`: the retriever,
    index, split and decontaminate sections; `scratch`: a folder for the indexes
    built on the way. Returns (metrics, skipped pairs)."""
    params, index, split = config["retriever"], config["index"], config["split"]
    scratch, out_dir = Path(scratch), Path(out_dir)
    train, val = split_pairs(pairs, split.val_fraction, split.seed, split.by)

    def indexed(name, method, model=None):
        dense = index.dense.model_copy(update={"model": str(model), "base_url": None}) if model else index.dense
        build_index(chunks, index.model_copy(update={"method": method, "dense": dense}), scratch / name)
        return Retriever(scratch / name)

    bm25 = indexed("bm25", "bm25")
    examples, skipped = encoder_examples(train, bm25, evalset, config["decontaminate"], index.with_section)
    base = encoder_directory(params.base)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    if params.epochs and examples:
        training = train_encoder(base, examples, out_dir, params)
    else:
        shutil.copytree(base, out_dir)
        training = {"examples": len(examples), "epochs": 0, "steps": 0}
    held_out = [p for p in val if p.get("chunk_id")]
    ks = sorted({1, split.raft.passages})
    hybrid = indexed("hybrid", "hybrid", out_dir)
    validation = {"pairs": len(held_out),
                  "bm25": own_chunk_recall(bm25, held_out, ks),
                  "base": own_chunk_recall(indexed("base", "dense", base), held_out, ks),
                  "trained": own_chunk_recall(indexed("trained", "dense", out_dir), held_out, ks),
                  "hybrid": own_chunk_recall(hybrid, held_out, ks)}
    write_json(out_dir / ENCODER_CARD, {"base": params.base, "trained_on": f"{len(examples)} training pairs",
                                    **{k: params.model_dump()[k] for k in ("epochs", "batch_size", "learning_rate",
                                                                           "warmup_ratio", "seed")}})
    metrics = {"base": params.base, "train_pairs": len(train), "examples": len(examples), "skipped": len(skipped),
               "training": training,
               "val_own_chunk_recall": {name: {f"at_{k}": v for k, v in figures.items()} if isinstance(figures, dict)
                                        else figures for name, figures in validation.items()}}
    return metrics, skipped

