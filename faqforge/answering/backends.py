"""What answers a chat completion request behind `faqforge serve`: local models
(the base, its LoRA adapters, full fine-tunes) whose concurrent requests share
batches (ModelServer), and the prompt each model was trained with around any
backend (TrainedPrompt: its system prompt when the client sends none, its
retrieved passages in the training layout, the cited sources in the reply).
An OpenAI-compatible generator the prompts are forwarded to is in
faqforge.answering.forwarding.

A backend's `answer(body)` is a coroutine: the response dict, or for
`"stream": true` an async iterator of chunk dicts, both in the OpenAI API's
shape. A bad request raises BadRequest before anything is generated or sent;
cancelling the awaiting task (the client went away) stops its generation.
"""

import asyncio
import contextlib
import json
import queue
import threading
import time
from collections import deque

from faqforge.answering.api import BadRequest, chunk, completion_id, response, sampling_of, usage
from faqforge.core.chat_format import sources, with_passages
from faqforge.core.io import PipelineError
from faqforge.models.guided import schema_of, string_array_shape


class Job:
    """One request on its way through the batching worker: the worker thread hands
    it text deltas and the result through the event loop the request waits in."""

    def __init__(self, model, messages, sampling, schema, deadline, tokenizer):
        self.model, self.messages, self.sampling, self.schema = model, messages, sampling, schema
        self.deadline, self.tokenizer = deadline, tokenizer
        self.loop = asyncio.get_running_loop()
        self.events = asyncio.Queue()
        self.cancelled = threading.Event()
        self.ids, self.sent, self.expired = [], "", False

    def emit(self, kind, value):
        self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))

    def should_stop(self):
        self.expired = self.expired or time.monotonic() > self.deadline
        return self.cancelled.is_set() or self.expired

    def token(self, token_id):
        """Stream what the new token makes readable: no half characters, no leading or trailing blanks
        (the full text is stripped), so the deltas add up to the non-streamed answer."""
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
        if text.endswith("\ufffd"):
            return
        self.delta(text.rstrip())

    def delta(self, visible):
        if len(visible) > len(self.sent) and visible.startswith(self.sent):
            self.emit("delta", visible[len(self.sent):])
            self.sent = visible


class ModelServer:
    """Local models by name: the base, LoRA adapters on it (one peft model, switched per
    batch) and full fine-tunes (loaded beside it). A worker thread answers the
    requests that arrive together in one batch (up to `batch_size`, waiting at most
    `max_wait_ms` for company), streaming each request's tokens as they come."""

    def __init__(self, model_spec, adapters=None, name="base", batch_size=8, max_wait_ms=20,
                 max_tokens_limit=1024, dtype="auto"):
        from faqforge.models.checkpoints import load_model
        base, self.tokenizer = load_model(model_spec, dtype=dtype)
        self.name, self.batch_size, self.max_wait = name, batch_size, max_wait_ms / 1000
        self.max_tokens_limit = max_tokens_limit
        self.models = {name: (base, self.tokenizer, None)}
        loras = {n: p for n, p in (adapters or {}).items() if is_lora(p)}
        peft = None
        if loras:
            from peft import PeftModel
            (first, path), *rest = loras.items()
            peft = PeftModel.from_pretrained(base, path, adapter_name=first)
            for adapter, path in rest:
                peft.load_adapter(path, adapter_name=adapter)
            peft.eval()
            self.models = {name: (peft, self.tokenizer, "off"), **{n: (peft, self.tokenizer, n) for n in loras}}
        for adapter, path in (adapters or {}).items():
            if adapter not in loras:
                self.models[adapter] = (*load_model(path, dtype=dtype), None)
        self.context = {n: model.config.max_position_embeddings for n, (model, _, _) in self.models.items()}
        self.queue = queue.Queue()
        self.stats = {"requests": 0, "batches": 0, "cancelled": 0, "timed_out": 0}
        self.finished = deque(maxlen=64)  # (how it ended, completion tokens) of the latest requests
        threading.Thread(target=self._worker, daemon=True, name="faqforge-generate").start()

    def model_names(self):
        return list(self.models)

    async def answer(self, body, timeout=None):
        from faqforge.models.checkpoints import chat_prompt
        sampling = sampling_of(body, self.model_names(), self.max_tokens_limit)
        response_format = body.get("response_format")
        if response_format and response_format.get("type") not in ("text", "json_schema"):
            raise BadRequest(400, f"response_format type {response_format.get('type')!r} is not supported; "
                                  "use json_schema", "response_format")
        try:
            schema = schema_of(response_format)
            if schema is not None:
                string_array_shape(schema)
        except PipelineError as e:
            raise BadRequest(400, f"response_format json_schema: {e}", "response_format") from None
        name, tokenizer = body["model"], self.models[body["model"]][1]
        prompt_tokens = len(tokenizer(chat_prompt(tokenizer, body["messages"]), add_special_tokens=False).input_ids)
        if prompt_tokens + sampling["max_tokens"] > self.context[name]:
            raise BadRequest(400, f"the prompt ({prompt_tokens} tokens) and max_tokens ({sampling['max_tokens']}) "
                                  f"exceed the model's context of {self.context[name]} tokens", "messages")
        job = Job(name, body["messages"], sampling, schema, time.monotonic() + (timeout or float("inf")), tokenizer)
        self.queue.put(job)
        reply = completion_id(), int(time.time())
        if body.get("stream"):
            return self._chunks(job, reply, body)
        try:
            kind, value = await self._next(job)
            while kind == "delta":
                kind, value = await self._next(job)
        except asyncio.CancelledError:
            job.cancelled.set()
            raise
        return response(reply, name, value, body.get("return_token_ids"))

    async def _next(self, job):
        kind, value = await job.events.get()
        if kind == "error":
            raise value
        return kind, value

    async def _chunks(self, job, reply, body):
        """The chunks of a streamed answer; closing the stream early (a client gone) stops the generation."""
        try:
            yield chunk(reply, job.model, {"role": "assistant", "content": ""})
            kind, value = await self._next(job)
            while kind == "delta":
                yield chunk(reply, job.model, {"content": value})
                kind, value = await self._next(job)
            yield chunk(reply, job.model, {}, value["finish_reason"])
            if (body.get("stream_options") or {}).get("include_usage"):
                yield {**chunk(reply, job.model, {}), "choices": [], "usage": usage(value)}
        finally:
            job.cancelled.set()  # a no-op once the job is done

    def _worker(self):
        while True:
            jobs = [self.queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(jobs) < self.batch_size:
                try:
                    jobs.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            groups = {}
            for job in jobs:
                if job.should_stop():  # gone or out of time while it waited
                    self._finish(job, None)
                    continue
                groups.setdefault((job.model, json.dumps(job.sampling, sort_keys=True)), []).append(job)
            for group in groups.values():
                self._run(group)

    def _run(self, jobs):
        from faqforge.models.decoding import generate_chat
        model, tokenizer, adapter = self.models[jobs[0].model]
        sampling = jobs[0].sampling
        self.stats["batches"] += 1
        self.stats["requests"] += len(jobs)
        try:
            context = contextlib.nullcontext()
            if adapter == "off":
                context = model.disable_adapter()
            elif adapter:
                model.set_adapter(adapter)
            with context:
                replies = generate_chat(
                    model, tokenizer, [job.messages for job in jobs], max_new_tokens=sampling["max_tokens"],
                    temperature=sampling["temperature"], top_p=sampling["top_p"], seed=sampling["seed"],
                    batch_size=len(jobs), schemas=[job.schema for job in jobs],
                    top_logprobs=sampling["top_logprobs"], on_token=lambda i, t: jobs[i].token(t),
                    should_stop=lambda i: jobs[i].should_stop(), return_token_ids=True)
        except Exception as e:  # a failed batch answers its requests with the error; the server lives on
            for job in jobs:
                job.emit("error", BadRequest(500, f"generation failed: {type(e).__name__}: {e}"))
            return
        for job, reply in zip(jobs, replies):
            self._finish(job, reply)

    def _finish(self, job, reply):
        if job.cancelled.is_set():
            self.stats["cancelled"] += 1
            self.finished.append(("cancelled", len(job.ids)))
            job.emit("error", BadRequest(499, "the client closed the request"))
        elif reply is None or job.expired:
            self.stats["timed_out"] += 1
            self.finished.append(("timed_out", len(job.ids)))
            job.emit("error", BadRequest(504, "the request took longer than this server allows "
                                              "(serve --request-timeout)"))
        else:
            self.finished.append(("done", reply["completion_tokens"]))
            job.delta(reply["text"])
            job.emit("done", reply)


def is_lora(path):
    """Whether `path` holds a LoRA adapter (else, for a student, a full fine-tune)."""
    from pathlib import Path
    return (Path(path) / "adapter_config.json").exists()


class TrainedPrompt:
    """Wraps a backend so each model is prompted as it was trained: `layouts` gives per
    model name its {"system_prompt", "passages"} (from the prompt.json stored with the
    student). A request without a system message gets the model's system prompt; with
    passages > 0 the last question is shown its top passages of `retriever` in the
    training layout and the reply gets the `sources` its answer cites (in the last
    chunk of a stream). A request whose question already holds passages (a client that
    built the prompt, like `faqforge chat`) is answered as it is."""

    def __init__(self, inner, layouts, retriever=None):
        self.inner, self.layouts, self.retriever = inner, layouts, retriever

    def model_names(self):
        return self.inner.model_names()

    async def answer(self, body, timeout=None):
        messages, layout = body.get("messages"), self.layouts.get(body.get("model"))
        if not (layout and isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages)):
            return await self.inner.answer(body, timeout)  # the inner backend says what is wrong
        k = layout["passages"] if self.retriever else 0
        messages, shown = await asyncio.to_thread(with_passages, messages, self.retriever, k, layout["system_prompt"])
        reply = await self.inner.answer({**body, "messages": messages}, timeout)
        if not shown:
            return reply
        if isinstance(reply, dict):
            for choice in reply.get("choices", []):
                choice["sources"] = sources(choice["message"].get("content") or "", shown)
            return reply
        return self._with_sources(reply, shown)

    async def _with_sources(self, chunks, shown):
        text = []
        try:
            async for part in chunks:
                for choice in part.get("choices", []):
                    text.append((choice.get("delta") or {}).get("content") or "")
                    if choice.get("finish_reason"):
                        choice["sources"] = sources("".join(text), shown)
                yield part
        finally:
            await chunks.aclose()
