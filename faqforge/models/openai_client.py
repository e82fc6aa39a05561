"""The OpenAI-compatible client: any server speaking the chat completions
API (vLLM, TGI, Ollama, llama.cpp, hosted APIs), one or a fleet of replicas.

Requests are submitted one at a time and answered on an event loop in a
thread of its own (`session`), so a stage can stream: it submits as it reads
and takes replies as they come, holding only what is in flight. Which replica
answers and how many requests are in flight: faqforge.models.fleet. Requests
are optionally paced to `requests_per_minute` / `tokens_per_minute`; 429, 5xx,
timeouts, dropped connections and malformed replies are retried with
exponential backoff and jitter (or the server's Retry-After; at once on
another replica when there is one), and a request that still fails becomes an
error record. It knows nothing of caches or prices: a `budget` (see
faqforge.teacher.client) may refuse a request before it is sent. One-off calls
(a streamed chat, a forwarded request, embeddings): faqforge.models.served.
"""

import asyncio
import contextlib
import json
import os
import random
import threading
import time

from tqdm import tqdm

from faqforge.hygiene.keys import api_key, check_key_transport
from faqforge.hygiene.secrets import redact
from faqforge.models.fleet import OVERLOAD_STATUS, Fleet, Replica, replica_limits

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class RateLimiter:
    """Paces acquisitions to `per_minute` units, evenly spaced (no burst), so the
    measured rate over any stretch stays at the limit, not above it."""

    def __init__(self, per_minute):
        self.interval = 60.0 / per_minute
        self.next_free = 0.0
        self.lock = asyncio.Lock()

    async def acquire(self, amount=1):
        async with self.lock:
            now = time.monotonic()
            start = max(now, self.next_free)
            self.next_free = start + amount * self.interval
        if start > now:
            await asyncio.sleep(start - now)

    def settle(self, estimated, actual):
        """Correct the pacing once the real size of a request is known."""
        self.next_free += (actual - estimated) * self.interval


def base_urls(value):
    """teacher.base_url as a list: one URL, or several replicas of one model."""
    return [value] if isinstance(value, str) else list(value or [])


class OpenAIClient:
    """Sends (messages, Sampling) requests to `model` at `transport.base_url`.
    `stats` counts retries, the time spent waiting for them, schema fallbacks and,
    per replica, requests, errors, overloads, ejections and the last limit."""

    def __init__(self, model, transport, endpoint="teacher"):
        """`transport`: a faqforge.core.section_types.Transport (the teacher section is one);
        `endpoint` names the params section it comes from, for errors."""
        self.model, self.endpoint, self.transport = model, endpoint, transport
        self.stats = {"retries": 0, "retry_wait_seconds": 0.0, "schema_fallbacks": 0}
        self.schema_unsupported = False

    def complete(self, requests, desc, finished, budget=None):
        """Answer every request; `finished(k, reply)` as each one arrives. A reply is
        a dict with `text`, `prompt_tokens`, `completion_tokens`, `finish_reason`
        (and `logprobs` when asked), or an error record (`text` None, `error`, `message`)."""
        with self.session(desc, budget, total=len(requests)) as submit:
            futures = [submit(m, s, lambda reply, k=k: finished(k, reply)) for k, (m, s) in enumerate(requests)]
            for future in futures:
                future.result()

    @contextlib.contextmanager
    def session(self, desc, budget=None, total=None):
        """Yield `submit(messages, sampling, on_reply)`, which returns a
        concurrent.futures.Future of the reply, or of what `on_reply(reply)`
        returns: it runs (on the transport's thread) as soon as the reply arrives.
        Leaving the block cancels what is still in flight."""
        where = f"params.yaml: {self.endpoint}.base_url"
        urls = base_urls(self.transport.base_url)
        key = api_key(self.transport.api_key_env)
        for url in urls:
            check_key_transport(url, key, self.transport.insecure_http, where, self.transport.api_key_env,
                                f"set {self.endpoint}.insecure_http: true")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"{desc} requests", daemon=True)
        thread.start()
        state = asyncio.run_coroutine_threadsafe(self._open(urls), loop).result()
        state["bar"] = tqdm(total=total, desc=desc, unit="req")
        state["budget"], state["errors"] = budget, 0

        def submit(messages, sampling, on_reply=None):
            return asyncio.run_coroutine_threadsafe(self._one(state, messages, sampling, on_reply), loop)
        try:
            yield submit
        finally:
            asyncio.run_coroutine_threadsafe(self._close(state), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            state["bar"].close()
            self.stats["replicas"] = state["fleet"].stats()

    async def _open(self, urls):
        import openai
        # Servers without auth (a local vLLM) accept any key; hosted APIs answer 401.
        self.api_key = os.environ.get(self.transport.api_key_env or "") or "EMPTY"
        start, adaptive, ceiling = replica_limits(self.transport.concurrency, self.transport.max_concurrency)
        replicas = [Replica(url, openai.AsyncOpenAI(base_url=url, api_key=self.api_key,
                                                    timeout=self.transport.timeout, max_retries=0),
                            start, adaptive, ceiling) for url in urls]
        rpm, tpm = self.transport.requests_per_minute, self.transport.tokens_per_minute
        return {"fleet": Fleet(replicas, self.transport.concurrency), "openai": openai,
                "request_pace": RateLimiter(rpm) if rpm else None, "token_pace": RateLimiter(tpm) if tpm else None}

    async def _close(self, state):
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for replica in state["fleet"].replicas:
            await replica.client.close()

    async def _one(self, state, messages, sampling, on_reply):
        budget = state["budget"]
        estimate = sum(len(m["content"]) for m in messages) // 3 + sampling.max_tokens
        reserved = budget.reserve(estimate, sampling.max_tokens) if budget else 0.0
        if reserved is None:
            reply = budget.refusal()
        else:
            if state["request_pace"]:
                await state["request_pace"].acquire()
            if state["token_pace"]:
                await state["token_pace"].acquire(estimate)
            reply = await self._with_retries(state, messages, sampling)
            used = reply.get("prompt_tokens", 0), reply.get("completion_tokens", 0)
            if state["token_pace"]:
                state["token_pace"].settle(estimate, sum(used))
            if budget:
                budget.settle(reserved, *used)
        state["errors"] += bool(reply.get("error"))
        state["bar"].update(1)
        state["bar"].set_postfix(errors=state["errors"], retries=self.stats["retries"], refresh=False)
        return on_reply(reply) if on_reply else reply

    async def _with_retries(self, state, messages, sampling):
        """One request, retried on transient failures (on another replica when
        there is one); an error record when it still fails."""
        openai, fleet = state["openai"], state["fleet"]
        attempts = 1 + int(self.transport.max_retries)
        base, cap = float(self.transport.backoff_seconds), float(self.transport.max_backoff_seconds)
        attempt, replica = 0, None
        while True:
            retry_after = None
            sent_schema = bool(sampling.response_format) and not self.schema_unsupported
            replica = await fleet.acquire(avoid=replica)
            sent_at, outcome = time.monotonic(), "failed"
            try:
                reply = await self._request(replica.client, messages, sampling)
                outcome = "ok"
                return reply
            except openai.BadRequestError as e:
                outcome = "refused"  # the server is fine; the request is not
                if sent_schema and _about_schema(e):
                    # This server cannot constrain output to a schema: ask without it from
                    # now on (not counted as a retry), and rely on the worked examples
                    # and the lenient parser.
                    if not self.schema_unsupported:
                        self.schema_unsupported = True
                        self.stats["schema_fallbacks"] += 1
                    continue
                return _error_record(e, self.api_key)
            except openai.APIStatusError as e:
                if e.status_code not in RETRYABLE_STATUS:
                    outcome = "refused"
                    return _error_record(e, self.api_key)
                outcome = "overloaded" if e.status_code in OVERLOAD_STATUS else "failed"
                error = e
                retry_after = _retry_after(e.response.headers)
            except (openai.APIConnectionError, openai.APIResponseValidationError, MalformedReply) as e:
                error = e  # timeouts, dropped connections, bodies that are not a completion
            finally:
                await fleet.release(replica, sent_at, outcome)
            attempt += 1
            if attempt == attempts:
                return _error_record(error, self.api_key)
            self.stats["retries"] += 1
            if outcome == "failed" and len(fleet.replicas) > 1:
                continue  # another replica takes it now; this one is marked down if it keeps failing
            wait = retry_after if retry_after is not None else \
                min(cap, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            self.stats["retry_wait_seconds"] += wait
            await asyncio.sleep(wait)

    async def _request(self, client, messages, sampling):
        from openai.types.chat import ChatCompletion
        body = sampling.to_openai()
        if self.schema_unsupported:
            body.pop("response_format", None)
        try:
            # client.post, not client.chat.completions.create: the same request, retries off,
            # errors and parsing, without the SDK walking every message and the JSON schema
            # to type-check it (a third of the client's CPU per request, bench/README.md).
            reply = await client.post("/chat/completions", cast_to=ChatCompletion,
                                      body={"model": self.model, "messages": messages, **body})
        except json.JSONDecodeError as e:
            raise MalformedReply(f"the server's reply is not JSON: {e}") from None
        if isinstance(reply, str) or not getattr(reply, "choices", None):
            raise MalformedReply(f"the server's reply is not a chat completion: {str(reply)[:200]!r}")
        choice = reply.choices[0]
        usage = reply.usage
        result = {"text": (choice.message.content or "").strip(),
                  "prompt_tokens": usage.prompt_tokens if usage else 0,
                  "completion_tokens": usage.completion_tokens if usage else 0,
                  "finish_reason": choice.finish_reason}
        if sampling.top_logprobs and choice.logprobs and choice.logprobs.content:
            result["logprobs"] = [{"token": t.token, "logprob": t.logprob,
                                   "top": {x.token: x.logprob for x in t.top_logprobs or []}}
                                  for t in choice.logprobs.content]
        return result


class MalformedReply(Exception):
    """A 200 answer that is not a chat completion (truncated or not JSON)."""


def _about_schema(error):
    text = str(error).lower()
    return any(word in text for word in ("response_format", "json_schema", "guided", "grammar"))


def _retry_after(headers):
    """Seconds from a Retry-After (or retry-after-ms) header, or None."""
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return None


def _error_record(error, api_key):
    """A failed request as a record, the key (and anything of its shape) redacted."""
    return {"text": None, "error": type(error).__name__, "message": redact(str(error), [api_key])[:1000]}
