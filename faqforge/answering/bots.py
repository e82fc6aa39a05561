"""Composing a bot: which models answer (in this process, or a generator they are
forwarded to), how each is prompted (the layout stored with the student:
system prompt and passages) and the retriever that finds its passages. serve,
the review screen's "try the bot" and chat all build theirs here.
"""

import os
import sys

from faqforge.answering.backends import ModelServer, TrainedPrompt
from faqforge.core.chat_format import LAYOUT_FILE, trained_layout
from faqforge.core.io import PipelineError


def parse_lora_modules(items):
    """{name: path} of the students to serve, from name=path items; each a LoRA adapter or a full fine-tune."""
    from faqforge.models.checkpoints import checkpoint_kind
    students = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise PipelineError(f"--lora-modules {item!r}: write it as name=path, e.g. chatbot=models/adapter")
        if checkpoint_kind(path) is None:
            raise PipelineError(f"--lora-modules {item!r}: {path} holds neither adapter_config.json (a LoRA "
                                "adapter) nor config.json (a full fine-tune); train one with `dvc repro finetune`")
        students[name] = path
    return students


def layouts(students, base_name, base_path, layout_from, passages):
    """{served name: {"system_prompt", "passages"}}: each student's from the prompt.json stored with it,
    the base model's from `layout_from`, its own prompt.json or the first student's; `passages`
    (not None) overrides them all."""
    out = {}
    for name, path in students.items():
        if not os.path.exists(os.path.join(path, LAYOUT_FILE)):
            print(f"note: {path} has no {LAYOUT_FILE} (trained before faqforge stored it): its prompt comes from "
                  "params.yaml and prompts.yaml", file=sys.stderr)
        out[name] = trained_layout(path)
    base = layout_from or (base_path if os.path.exists(os.path.join(base_path, LAYOUT_FILE)) else None)
    out[base_name] = trained_layout(base) if base else next(iter(out.values()), trained_layout(None, "-"))
    return with_passages_shown(out, passages)


def with_passages_shown(shown, passages):
    if passages is None:
        return shown
    if passages < 0:
        raise PipelineError(f"--passages {passages}: give 0 (no retrieval) or more")
    return {name: {**layout, "passages": passages} for name, layout in shown.items()}


def retriever_for(passages, index):
    """The retriever over `index` when any layout shows passages (`passages`: their counts), else None."""
    if not any(passages):
        return None
    from faqforge.documents.retrieval import Retriever
    return Retriever(index)


def compose_bot(students, base="models/base", base_name="base", index="data/index", passages=None, layout_from=None,
                generator=None, dtype="auto", batch_size=8, max_wait_ms=20, max_tokens_limit=1024, evidence=False):
    """A backend answering as each model was trained: `students` ({name: path}) beside the base
    model `base` in this process (ModelServer), or with `generator` (a dict of Forwarder's
    arguments: base_url, api_key_env, models, insecure_http) the models that server serves,
    prompted with `layout_from`'s layout; with `evidence`, questions are answered evidence
    first (a quote of the passages, or the refusal). Returns (TrainedPrompt backend, {name: layout})."""
    if generator:
        from faqforge.answering.forwarding import Forwarder
        server = Forwarder(max_tokens_limit=max_tokens_limit, **generator)
        shown = with_passages_shown({name: trained_layout(layout_from) for name in server.model_names()}, passages)
    else:
        shown = layouts(students, base_name, base, layout_from, passages)
        server = ModelServer(base, students, base_name, batch_size, max_wait_ms, max_tokens_limit, dtype)
    retriever = retriever_for([layout["passages"] for layout in shown.values()], index)
    return TrainedPrompt(server, shown, retriever, evidence), shown
