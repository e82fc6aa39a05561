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

from faqforge.retrieval import source_label

REFUSAL = "The documents do not answer this question."
INSTRUCTION = ("Answer the question from the passages below and cite the passage you use, like [2]. "
               f"If none of them answers it, say: {REFUSAL}")
_CITATION = re.compile(r"\[(\d{1,2})\]")


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


def cite(answer, n):
    """A training answer citing passage n."""
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
