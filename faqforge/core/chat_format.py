"""The chat a question becomes: one layout for training, evaluation, chat and serve.

Closed book, the user turn is the question. With retrieval, it holds numbered
passages, each headed by its source, then the question:

    Answer the question from the passages below and cite the passage you use, like [2]. ...

    [1] installation.txt, Installing
    faqforge needs Python 3.11 ...

    [2] ...

    Question: How do I install faqforge?

and a trained answer ends with the number of the passage it relies on: `... [1]`.
"""

import re
from pathlib import Path

from faqforge.core.io import read_json

REFUSAL = "The documents do not answer this question."
INSTRUCTION = ("Answer the question from the passages below and cite the passage you use, like [2]. "
               f"If none of them answers it, say: {REFUSAL}")
LAYOUT_FILE = "prompt.json"  # next to a student's weights: the layout it was trained with
_CITATION = re.compile(r"\[(\d{1,2})\]")


def source_label(passage):
    """Where a passage comes from, for people: `faq.txt, Section, p. 3`."""
    doc = passage["doc"]
    label = doc[len("data/docs/"):] if doc.startswith("data/docs/") else doc
    if passage.get("section"):
        label += f", {passage['section']}"
    pages = passage.get("pages")
    if pages:
        label += f", p. {pages[0]}" if len(pages) == 1 or pages[0] == pages[-1] else f", pp. {pages[0]}-{pages[-1]}"
    return label


def passages_block(passages):
    """The numbered passages as the model sees them."""
    return "\n\n".join(f"[{n}] {source_label(p)}\n{p['text'].strip()}" for n, p in enumerate(passages, start=1))


def question_turn(question, passages=None):
    """The user turn: the question alone (closed book), or the instruction,
    the numbered passages and the question (`passages` a list, possibly empty)."""
    if passages is None:
        return question
    return f"{INSTRUCTION}\n\n{passages_block(passages)}\n\nQuestion: {question}"


def question_messages(question, system_prompt, passages=None):
    """The chat a user question becomes: the same for training, evaluation and chat."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return system + [{"role": "user", "content": question_turn(question, passages)}]


def cite(answer, n, quote=None):
    """A training answer citing passage n; with the quote it rests on (answer_style
    quoted), the quote and its passage number come first: `"..." [2] answer`."""
    if quote:
        return f'"{quote.strip()}" [{n}] {answer.strip()}'
    return f"{answer.rstrip()} [{n}]"


def citations(answer):
    """The passage numbers an answer cites, in order, each once."""
    return list(dict.fromkeys(int(m) for m in _CITATION.findall(answer)))


def strip_citations(answer):
    """The answer without its `[n]` markers (what is compared with a reference)."""
    return " ".join(_CITATION.sub("", answer).split())


def sources(answer, passages):
    """The passages an answer cites (those numbers that exist), else all it was shown,
    as provenance records for a `sources` field or a Sources: block."""
    cited = [n for n in citations(answer) if 1 <= n <= len(passages)]
    chosen = [(n, passages[n - 1]) for n in cited] or list(enumerate(passages, start=1))
    return [{"n": n, "cited": bool(cited), "source": source_label(p),
             **{k: p.get(k) for k in ("passage_id", "chunk_id", "doc", "section", "pages")}, "text": p["text"]}
            for n, p in chosen]


def is_built(content):
    """Whether a user turn already holds retrieved passages (a client built the prompt)."""
    return content.startswith(INSTRUCTION)


def with_passages(messages, retriever, k, system_prompt=None):
    """The chat a model answers from for a conversation: the system prompt it was
    trained with when the conversation has none, and the last user turn, the
    question, shown with the top k passages for it in the training layout
    (left as it is when k is 0, the client already built it, or the last turn is
    not the user's). Returns (messages, passages shown)."""
    messages = list(messages)
    if system_prompt and not any(m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    last = messages[-1] if messages else {}
    if not (retriever and k and last.get("role") == "user" and isinstance(last.get("content"), str)
            and not is_built(last["content"])):
        return messages, []
    hits = retriever.search([last["content"]], k)[0]
    messages[-1] = {**last, "content": question_turn(last["content"], hits)}
    return messages, hits


def sources_block(found):
    """The `Sources:` lines under a chat answer, from `sources(...)` records."""
    if not found:
        return ""
    head = "Sources:" if found[0]["cited"] else "Sources (shown to the model, none cited):"
    return "\n".join([head] + [f"  [{s['n']}] {s['source']}" for s in found])


def trained_layout(model_dir, params_path="params.yaml"):
    """How a student was prompted in training: {"system_prompt", "context"
    (raft | closed_book), "passages"} from the prompt.json the finetune stage
    writes next to its weights, else from the split section of params.yaml and prompts.yaml (a student
    trained before that file existed), else closed book with no system prompt."""
    path = Path(model_dir or "") / LAYOUT_FILE
    if model_dir and path.exists():
        return read_json(path)
    if Path(params_path).exists():
        from faqforge.core.config import load_config
        split = load_config(params_path, ["split"])["split"]
        return {"system_prompt": split.system_prompt, "context": split.context,
                "passages": split.raft.passages if split.context == "raft" else 0}
    return {"system_prompt": None, "context": "closed_book", "passages": 0}
