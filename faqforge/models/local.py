"""Models answering in this process: a base checkpoint and the students trained on
it, each a LoRA adapter on the shared base (one peft model, the adapter switched
per batch) or a full fine-tune loaded beside it. `local_models` is the one place
that tells the two kinds apart (checkpoint_kind) and loads them, on first use, so a
run answered from a cache loads nothing. The local teacher, the evaluation's
students, chat, serve and the review screen's bot all answer through it.

A LocalModel completes batches of (messages, Sampling) requests (the completer
protocol of faqforge.models.completion), decodes one batch with streaming hooks
(serve's batching worker), and streams one answer (chat), all with
faqforge.models.decoding's generate_chat: the same decoding everywhere.
"""

import contextlib
import json
import queue
import threading
from pathlib import Path

from faqforge.core.io import PipelineError
from faqforge.models.checkpoints import checkpoint_fingerprint, checkpoint_kind, load_model, local_checkpoint
from faqforge.models.decoding import generate_chat
from faqforge.models.guided import schema_of


def local_models(base, students=None, base_name="base", dtype="auto", batch_size=8, base_dir=None):
    """{name: LocalModel}: the base under `base_name`, and each student of `students`
    ({name: checkpoint directory}) under its name. `base` is a model spec (a checkpoint
    directory, a Hugging Face id in the local cache, embedded:...); with `base_dir`, an
    embedded spec loads from its materialised copy (models/base or cache/checkpoints/)."""
    students = dict(students or {})
    for path in students.values():
        if checkpoint_kind(path) is None:
            raise PipelineError(f"{path}: neither a LoRA adapter (adapter_config.json) nor a fine-tuned checkpoint "
                                "(config.json); train one with `dvc repro finetune`")
    weights = _Weights(base, students, dtype, base_dir)
    return {name: LocalModel(weights, name, batch_size) for name in [base_name, *students]}


class _Weights:
    """The loaded models, shared by the LocalModels of one `local_models` call: the base
    with its LoRA adapters on first use of any of them, a full fine-tune on its own."""

    def __init__(self, base, students, dtype, base_dir):
        self.base, self.students, self.dtype, self.base_dir = base, students, dtype, base_dir
        self.lock = threading.Lock()
        self.loaded = {}   # {name or None (the base): (model, tokenizer, adapter)}

    def get(self, name):
        own = name if checkpoint_kind(self.students.get(name)) == "full" else None
        with self.lock:
            if own not in self.loaded:
                if own:
                    self.loaded[own] = (*load_model(self.students[own], dtype=self.dtype), None)
                else:
                    self.loaded.update(self._load_base())
        return self.loaded[name if name in self.loaded else None]

    def _load_base(self):
        spec = local_checkpoint(self.base, self.base_dir) if self.base_dir else self.base
        base, tokenizer = load_model(spec, dtype=self.dtype)
        loras = {n: p for n, p in self.students.items() if checkpoint_kind(p) == "lora"}
        if not loras:
            return {None: (base, tokenizer, None)}
        from peft import PeftModel
        (first, path), *rest = loras.items()
        peft = PeftModel.from_pretrained(base, str(path), adapter_name=first)
        for adapter, path in rest:
            peft.load_adapter(str(path), adapter_name=adapter)
        peft.eval()
        return {None: (peft, tokenizer, "off"), **{n: (peft, tokenizer, n) for n in loras}}

    def fingerprint(self, name):
        """A content hash of what answers as `name` (its base too, for an adapter)."""
        base = checkpoint_fingerprint(self.base) if Path(self.base).is_dir() else self.base
        if name not in self.students:
            return base
        own = checkpoint_fingerprint(self.students[name])
        return f"{base}+{own}" if checkpoint_kind(self.students[name]) == "lora" else own


class LocalModel:
    """One of `local_models`: the base (any adapter switched off) or a student."""

    def __init__(self, weights, name, batch_size=8):
        self.weights, self.name, self.batch_size = weights, name, batch_size

    @property
    def model(self):
        return self.weights.get(self.name)[0]

    @property
    def tokenizer(self):
        return self.weights.get(self.name)[1]

    def fingerprint(self):
        return self.weights.fingerprint(self.name)

    @property
    def loaded(self):
        """Whether any weights are in memory yet (a run answered from a cache loads none)."""
        return bool(self.weights.loaded)

    def context_window(self):
        return self.model.config.max_position_embeddings

    def complete(self, requests, desc, finished, budget=None):
        """Answer each (messages, Sampling) request; `finished(k, reply)` as each batch
        ends. Requests that decode alike share batches (their response formats may
        differ). `budget` is not consulted: in-process decoding has no bill to stop at."""
        groups = {}
        for k, (_, sampling) in enumerate(requests):
            groups.setdefault(json.dumps(sampling.decoding().key(), sort_keys=True), []).append(k)
        for members in groups.values():
            self.decode([requests[k][0] for k in members], requests[members[0]][1].decoding(), desc=desc,
                        formats=[requests[k][1].response_format for k in members],
                        on_result=lambda j, reply, members=members: finished(members[j], reply))

    def decode(self, conversations, sampling, formats=None, batch_size=None, **hooks):
        """generate_chat's results for `conversations`, this model's adapter switched on
        (or off, for the base) around it; `hooks` as generate_chat takes them."""
        model, tokenizer, adapter = self.weights.get(self.name)
        context = contextlib.nullcontext()
        if adapter == "off":
            context = model.disable_adapter()
        elif adapter:
            model.set_adapter(adapter)
        schemas = [schema_of(f) for f in formats] if formats else None
        with context:
            return generate_chat(model, tokenizer, conversations, sampling, batch_size=batch_size or self.batch_size,
                                 schemas=schemas, **hooks)

    def stream(self, messages, sampling):
        """Yield the answer to one conversation piece by piece as it is decoded: the pieces
        add up to what `complete` answers (decoded whole, stripped)."""
        pieces = queue.Queue()
        feed = TextFeed(self.tokenizer, lambda text: pieces.put(("text", text)), sampling.stop)

        def run():
            try:
                reply = self.decode([messages], sampling, batch_size=1, on_token=lambda i, t: feed.token(t))[0]
                feed.finish(reply["text"])
                pieces.put(("done", None))
            except Exception as e:  # handed to the reading thread
                pieces.put(("error", e))
        worker = threading.Thread(target=run, daemon=True, name="faqforge-stream")
        worker.start()
        while True:
            kind, value = pieces.get()
            if kind == "error":
                raise value
            if kind == "done":
                break
            yield value
        worker.join()


class TextFeed:
    """Turns a reply's token ids, one at a time, into the text they make readable: no half
    characters and no leading or trailing blanks (the whole reply is stripped), held back
    while the end could still become one of `stop` strings. `emit(text)` gets each new piece;
    the pieces add up to the reply's text."""

    def __init__(self, tokenizer, emit, stop=()):
        self.tokenizer, self.emit, self.stop = tokenizer, emit, tuple(stop)
        self.ids, self.sent = [], ""

    def token(self, token_id):
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
        if text.endswith("\ufffd"):
            return
        self.send(_safe_prefix(text.rstrip(), self.stop))

    def finish(self, text):
        """The reply's final text (cut at a stop string): whatever of it is not sent yet."""
        self.send(text)

    def send(self, visible):
        if len(visible) > len(self.sent) and visible.startswith(self.sent):
            self.emit(visible[len(self.sent):])
            self.sent = visible


def _safe_prefix(text, stop):
    """`text` cut before a stop string it holds, and before an end that may grow into one."""
    for s in stop:
        if s in text:
            text = text[:text.index(s)].rstrip()
    for s in stop:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:n]):
                return text[:-n].rstrip()
    return text
