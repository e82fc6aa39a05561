"""The bot in use: a chat loop in the terminal (chat) and an OpenAI-compatible
server (serve: the command; app: the FastAPI app with its auth and limits; api:
the API's request checks, errors and response shapes) over what answers its
requests (backends: local models with named adapters, batched and streamed, and
each model's training prompt around any backend; forwarding: an
OpenAI-compatible generator the prompts are forwarded to; bots: the one place
a bot is composed from those, its layouts and its retriever), all answering with
retrieved passages and their sources in the layout the student was trained
with.

May import: faqforge.core, faqforge.hygiene, faqforge.models, faqforge.documents.
"""
