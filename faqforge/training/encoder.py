"""Fine-tuning the retrieval encoder on the pipeline's own pairs.

A sentence-transformers model (the embedded all-MiniLM-L6-v2 by default) learns
to put each training question next to the passage that answers it and away from
the other passages of its batch and from its hard negative (in-batch negatives:
MultipleNegativesRankingLoss, the InfoNCE objective of DPR, InPars and
Promptagator's retrievers), a batch never holding the same text twice. The
result is a sentence-transformers directory that index and retrieval load like
the shipped encoder.
"""

import math
import tempfile
import time

import torch


def train_encoder(base, examples, out_dir, params):
    """Train the encoder at directory `base` on `examples` ({anchor, positive,
    negative}) and save it to `out_dir`; returns the run's figures. `params`: the
    retriever section (epochs, batch_size, learning_rate, warmup_ratio, seed)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers import set_seed

    set_seed(params.seed)
    model = SentenceTransformer(str(base), device="cuda" if torch.cuda.is_available() else "cpu",
                                local_files_only=True)
    data = Dataset.from_dict({column: [e[column] for e in examples] for column in ("anchor", "positive", "negative")})
    steps = math.ceil(len(examples) / params.batch_size) * params.epochs
    with tempfile.TemporaryDirectory() as scratch:   # the Trainer wants a folder; nothing is kept in it
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=params.epochs, per_device_train_batch_size=params.batch_size,
            learning_rate=params.learning_rate, warmup_steps=math.ceil(params.warmup_ratio * steps),
            seed=params.seed, data_seed=params.seed, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no",
            logging_steps=1, report_to=[], disable_tqdm=True)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                             loss=MultipleNegativesRankingLoss(model))
        start = time.monotonic()
        result = trainer.train()
        seconds = time.monotonic() - start
    model.save_pretrained(str(out_dir))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"examples": len(examples), "epochs": params.epochs, "steps": result.global_step,
            "train_loss": round(result.training_loss, 4), "loss_first": round(losses[0], 4) if losses else None,
            "loss_last": round(losses[-1], 4) if losses else None, "seconds": round(seconds, 1)}
