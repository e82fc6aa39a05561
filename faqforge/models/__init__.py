"""Where every completion comes from, and the checkpoints behind them: the
sampling settings every path takes (sampling); the completer protocol and the
content cache in front of any completer (completion, cache); models in this
process, the one place a LoRA adapter is told from a full checkpoint (local),
answering with batched chat generation with a static, prefix-shared key/value
cache (decoding) and JSON schema-guided replies (guided); OpenAI-compatible
servers, one or a fleet, for batches (openai_client, fleet) and one-off calls:
a streamed chat, a forwarded request, embeddings (served); finding, loading and
fingerprinting a checkpoint, the embedded SmolLM2 included (checkpoints); the
sentence encoders retrieval embeds with, an embedded one checked against its
published weights (encoders). Used by the teacher, training, evaluation, chat,
serve, retrieval and the review screen.

May import: faqforge.core, faqforge.hygiene.
"""
