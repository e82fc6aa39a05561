"""The teacher LLM layer: one client (client.Teacher) with the content cache
(cache), accounting and budget over two backends, an OpenAI-compatible
transport with retries and rate limits (transport) and an in-process model
(local); and the reader of a judge's YES/NO verdicts (verdict).

May import: faqforge.core, faqforge.hygiene, faqforge.models.
"""
