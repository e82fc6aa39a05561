"""Local checkpoints and decoding with them: finding and loading a model (the
embedded SmolLM2 included) and its fingerprint (checkpoints), batched chat
generation with a static, prefix-shared key/value cache (decoding), and JSON
schema-guided replies (guided). Used by the local teacher, training,
evaluation, chat and serve.

May import: faqforge.core.
"""
