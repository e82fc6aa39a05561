"""Training examples for the retrieval encoder (faqforge.training.encoder).

Each training pair gives one (anchor, positive, negative) triple: its question,
the passage of its chunk that states its answer (its oracle, the passage a RAFT
record shows) and a hard negative, the passage the index ranks highest for the
question among those of other chunks that do not state the answer. Texts are
as the index embeds them (the section path in front, with index.with_section).
The encoder must never see an eval question: the pairs come after
decontamination, and the same rule is checked here once more.
"""

from faqforge.core.io import PipelineError
from faqforge.core.records import grounding_score, pair_prompt, pair_response
from faqforge.dataset.raft import oracle_passage
from faqforge.documents.retrieval import indexed_text
from faqforge.refinement.decontaminate import contamination

DEPTH = 10   # passages ranked per question to find a hard negative among


def encoder_examples(pairs, retriever, evalset, rule, with_section=True):
    """(examples, skipped): a triple per pair whose chunk has a passage in the
    index (`retriever`, over the same chunks); `skipped` lists the others with why.
    `rule`: the decontaminate section; a pair it matches to an eval item stops the run."""
    _, leaked = contamination(pairs, evalset, rule)
    if leaked:
        first = leaked[0]
        raise PipelineError(f"{len(leaked)} training pairs match the eval set by the decontaminate rule (first: "
                            f"{first.get('question')!r}, {first.get('why', '')}): the encoder must not train on "
                            "them; rerun `dvc repro decontaminate` and check data/review.jsonl")
    by_chunk = {}
    for passage in retriever.passages:
        by_chunk.setdefault(passage["chunk_id"], []).append(passage)
    questions = [pair_prompt(pair) for pair in pairs]
    ranked = retriever.search(questions, DEPTH)
    examples, skipped = [], []
    for pair, question, hits in zip(pairs, questions, ranked):
        oracle = oracle_passage(pair, by_chunk.get(pair.get("chunk_id"), []))
        if oracle is None:
            skipped.append({"id": pair.get("id"), "question": question,
                            "reason": "its chunk has no passage in the index"})
            continue
        answer = pair_response(pair)
        negatives = [h for h in hits
                     if h["chunk_id"] != oracle["chunk_id"] and grounding_score(answer, h["text"]) < 0.5]
        negative = negatives[0] if negatives else _other_document(retriever.passages, oracle)
        if negative is None:
            skipped.append({"id": pair.get("id"), "question": question,
                            "reason": "no passage of another chunk to contrast it with"})
            continue
        examples.append({"anchor": question, "positive": indexed_text(oracle, with_section),
                         "negative": indexed_text(negative, with_section), "chunk_id": oracle["chunk_id"]})
    return examples, skipped


def _other_document(passages, oracle):
    """A passage of another document (else of another chunk), the same one for the same
    index, when no hard one was ranked; None in an index of one chunk."""
    return next((p for p in passages if p["doc"] != oracle["doc"]),
                next((p for p in passages if p["chunk_id"] != oracle["chunk_id"]), None))
