"""What tests and bench scripts share: a temporary copy of the project and its
commands (project), the OpenAI-compatible test server (openai_server), servers
on 127.0.0.1 and calls to them (http), the project's params as typed sections
(sections), shared texts (corpus), generated pairs and questions (synthetic)
and generated PDFs (pdf_factory)."""
