"""The documents: fetching them from URLs (fetch), reading every format into
blocks with section and page (readers), packing blocks into token-budgeted
chunks (chunking), the ingest stage's loop (ingest), and the BM25/dense index
the bot retrieves passages from (retrieval).

May import: faqforge.core, faqforge.hygiene, faqforge.models.
"""
