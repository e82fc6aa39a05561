"""The teacher LLM: one client (client.Teacher) that owns what is the teacher's
(its sampling defaults, accounting, budget, streaming `map`, scrubbing replies,
Ray through its public methods: ray_engine) over the completion parts of
faqforge.models (an in-process model or an OpenAI-compatible client, behind the
content cache); its error policy, failed requests as drop records and the
stage's error rate (errors); worked examples (few_shot) and the reader of a
judge's YES/NO verdicts (verdict).

May import: faqforge.core, faqforge.hygiene, faqforge.models.
"""
