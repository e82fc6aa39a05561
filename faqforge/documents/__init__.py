"""The documents: fetching them from URLs (fetch, through web: downloads no
sources list can turn against the network), reading every format into
blocks with section and page (readers, with the shared block helpers in blocks
and the reStructuredText and PDF readers in rst and pdf), packing blocks into
token-budgeted chunks (chunking), the ingest stage's loop (ingest), and the
BM25/dense index the bot retrieves passages from (retrieval), and the evidence
the bot answers with, a verbatim quote of those passages or a refusal (evidence).

May import: faqforge.core, faqforge.hygiene, faqforge.models.
"""
