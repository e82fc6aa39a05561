"""The bot in use: a chat loop in the terminal (chat) and an OpenAI-compatible
server (serve) over what answers its requests (backends: a local model with
named adapters, a forwarded generator, retrieval around either), all answering
with retrieved passages and their sources in the layout the student was
trained with.

May import: faqforge.core, faqforge.hygiene, faqforge.models, faqforge.documents.
"""
