"""What answers a chat completion request behind `faqforge serve`: local models
(the base, its LoRA adapters, full fine-tunes) whose concurrent requests share
batches (ModelServer), and the prompt each model was trained with around any
backend (TrainedPrompt: its system prompt when the client sends none, its
retrieved passages in the training layout, the cited sources in the reply).
An OpenAI-compatible generator the prompts are forwarded to is in
faqforge.answering.forwarding.

A backend's `respond(body)` is a coroutine: the response dict, or for
`"stream": true` an async iterator of chunk dicts, both in the OpenAI API's
shape. A bad request raises BadRequest before anything is generated or sent;
cancelling the awaiting task (the client went away) stops its generation.
"""

import asyncio
import json
import queue
import threading
import time
from collections import deque

from faqforge.answering.api import BadRequest, chunk, completion_id, response, sampling_of, usage
from faqforge.core.chat_format import sources, with_passages
from faqforge.core.io import PipelineError
from faqforge.documents.evidence import evidence_reply
from faqforge.models.guided import schema_of, string_array_shape


class Job:
    """One request on its way through the batching worker: the worker thread hands
    it text deltas and the result through the event loop the request waits in."""

    def __init__(self, model, messages, sampling, deadline, tokenizer):
        self.model, self.messages, self.sampling, self.deadline = model, messages, sampling, deadline
        self.loop = asyncio.get_running_loop()
        self.events = asyncio.Queue()
        self.cancelled = threading.Event()
        from faqforge.models.local import TextFeed  # torch: only a server with models in-process imports it
        self.feed = TextFeed(tokenizer, lambda text: self.emit("delta", text), sampling.stop)
        self.expired = False

    def emit(self, kind, value):
        self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))

    def should_stop(self):
        self.expired = self.expired or time.monotonic() > self.deadline
        return self.cancelled.is_set() or self.expired


class ModelServer:
    """Local models by name: the base, LoRA adapters on it (one peft model, switched per
    batch) and full fine-tunes (loaded beside it). A worker thread answers the
    requests that arrive together in one batch (up to `batch_size`, waiting at most
    `max_wait_ms` for company), streaming each request's tokens as they come."""

    def __init__(self, model_spec, adapters=None, name="base", batch_size=8, max_wait_ms=20,
                 max_tokens_limit=1024, dtype="auto"):
        from faqforge.models.local import local_models
        self.name, self.batch_size, self.max_wait = name, batch_size, max_wait_ms / 1000
        self.max_tokens_limit = max_tokens_limit
        self.models = local_models(model_spec, adapters, name, dtype=dtype, batch_size=batch_size)
        self.context = {n: model.context_window() for n, model in self.models.items()}   # loads them now
        self.queue = queue.Queue()
        self.stats = {"requests": 0, "batches": 0, "cancelled": 0, "timed_out": 0}
        self.finished = deque(maxlen=64)  # (how it ended, completion tokens) of the latest requests
        threading.Thread(target=self._worker, daemon=True, name="faqforge-generate").start()

    def model_names(self):
        return list(self.models)

    async def respond(self, body, timeout=None):
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
        name, tokenizer = body["model"], self.models[body["model"]].tokenizer
        prompt_tokens = len(tokenizer(chat_prompt(tokenizer, body["messages"]), add_special_tokens=False).input_ids)
        if prompt_tokens + sampling.max_tokens > self.context[name]:
            raise BadRequest(400, f"the prompt ({prompt_tokens} tokens) and max_tokens ({sampling.max_tokens}) "
                                  f"exceed the model's context of {self.context[name]} tokens", "messages")
        job = Job(name, body["messages"], sampling, time.monotonic() + (timeout or float("inf")), tokenizer)
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
                decoding = json.dumps(job.sampling.decoding().key(), sort_keys=True)
                groups.setdefault((job.model, decoding), []).append(job)
            for group in groups.values():
                self._run(group)

    def _run(self, jobs):
        self.stats["batches"] += 1
        self.stats["requests"] += len(jobs)
        try:
            replies = self.models[jobs[0].model].decode(
                [job.messages for job in jobs], jobs[0].sampling.decoding(),
                formats=[job.sampling.response_format for job in jobs], batch_size=len(jobs),
                on_token=lambda i, t: jobs[i].feed.token(t), should_stop=lambda i: jobs[i].should_stop(),
                return_token_ids=True)
        except Exception as e:  # a failed batch answers its requests with the error; the server lives on
            for job in jobs:
                job.emit("error", BadRequest(500, f"generation failed: {type(e).__name__}: {e}"))
            return
        for job, reply in zip(jobs, replies):
            self._finish(job, reply)

    def _finish(self, job, reply):
        if job.cancelled.is_set():
            self.stats["cancelled"] += 1
            self.finished.append(("cancelled", len(job.feed.ids)))
            job.emit("error", BadRequest(499, "the client closed the request"))
        elif reply is None or job.expired:
            self.stats["timed_out"] += 1
            self.finished.append(("timed_out", len(job.feed.ids)))
            job.emit("error", BadRequest(504, "the request took longer than this server allows "
                                              "(serve --request-timeout)"))
        else:
            self.finished.append(("done", reply["completion_tokens"]))
            job.feed.finish(reply["text"])
            job.emit("done", reply)


class TrainedPrompt:
    """Wraps a backend so each model is prompted as it was trained: `layouts` gives per
    model name its {"system_prompt", "passages"} (from the prompt.json stored with the
    student). A request without a system message gets the model's system prompt; with
    passages > 0 the last question is shown its top passages of `retriever` in the
    training layout and the reply gets the `sources` its answer cites (in the last
    chunk of a stream). A request whose question already holds passages (a client that
    built the prompt, like `faqforge chat`) is answered as it is. With `evidence`, a
    question is answered evidence first (faqforge.documents.evidence): a verbatim quote
    of its passages with its citation, or the refusal, and no model generates."""

    def __init__(self, inner, layouts, retriever=None, evidence=False):
        self.inner, self.layouts, self.retriever, self.evidence = inner, layouts, retriever, evidence

    def model_names(self):
        return self.inner.model_names()

    async def respond(self, body, timeout=None):
        messages, layout = body.get("messages"), self.layouts.get(body.get("model"))
        if not (layout and isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages)):
            return await self.inner.respond(body, timeout)  # the inner backend says what is wrong
        k = layout["passages"] if self.retriever else 0
        question = messages[-1].get("content")
        messages, shown = await asyncio.to_thread(with_passages, messages, self.retriever, k, layout["system_prompt"])
        if self.evidence and shown:
            text = await asyncio.to_thread(evidence_reply, question, shown, self.retriever.abstain_below)
            return self._evidence(body, text, shown)
        reply = await self.inner.respond({**body, "messages": messages}, timeout)
        if not shown:
            return reply
        if isinstance(reply, dict):
            for choice in reply.get("choices", []):
                choice["sources"] = sources(choice["message"].get("content") or "", shown)
            return reply
        return self._with_sources(reply, shown)

    def _evidence(self, body, text, shown):
        """The evidence-first answer in the API's shape, as one response or as chunks."""
        reply_id = completion_id(), int(time.time())
        found = sources(text, shown)
        if body.get("stream"):
            return self._evidence_chunks(reply_id, body["model"], text, found)
        out = response(reply_id, body["model"], {"text": text, "finish_reason": "stop", "prompt_tokens": 0,
                                                 "completion_tokens": 0})
        out["choices"][0]["sources"] = found
        return out

    async def _evidence_chunks(self, reply_id, model, text, found):
        yield chunk(reply_id, model, {"role": "assistant", "content": ""})
        yield chunk(reply_id, model, {"content": text})
        last = chunk(reply_id, model, {}, "stop")
        last["choices"][0]["sources"] = found
        yield last

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
