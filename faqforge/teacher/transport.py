"""The OpenAI-compatible transport: any server speaking the chat completions
API (vLLM, TGI, Ollama, llama.cpp, hosted APIs).

It keeps `concurrency` requests in flight, optionally paced to
`requests_per_minute` / `tokens_per_minute`, retries 429, 5xx, timeouts,
dropped connections and malformed replies with exponential backoff and jitter
(or the server's Retry-After), and turns a request that still fails into an
error record. It knows nothing of caches or prices: a `budget` (see
faqforge.teacher.client) may refuse a request before it is sent.
"""

import asyncio
import json
import os
import random
import time

from tqdm import tqdm

from faqforge.hygiene.keys import api_key, check_key_transport
from faqforge.hygiene.secrets import redact

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
TRANSPORT_KEYS = ("base_url", "api_key_env", "timeout", "concurrency", "requests_per_minute", "tokens_per_minute",
                  "max_retries", "backoff_seconds", "max_backoff_seconds", "insecure_http")


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


class OpenAITransport:
    """Sends (messages, sampling) requests to `model` at `params["base_url"]`.
    `stats` counts retries, the time spent waiting for them and schema fallbacks."""

    def __init__(self, model, params, endpoint="teacher"):
        """`endpoint` names the params section the URL and key come from, for errors."""
        self.model, self.endpoint = model, endpoint
        self.params = {key: params[key] for key in TRANSPORT_KEYS}
        self.stats = {"retries": 0, "retry_wait_seconds": 0.0, "schema_fallbacks": 0}
        self.schema_unsupported = False

    def answer(self, requests, desc, finished, budget=None):
        """Answer every request; `finished(k, reply)` as each one arrives. A reply is
        a dict with `text`, `prompt_tokens`, `completion_tokens`, `finish_reason`
        (and `logprobs` when asked), or an error record (`text` None, `error`, `message`)."""
        where = "params.yaml: " + ("teacher" if self.endpoint == "teacher" else self.endpoint) + ".base_url"
        check_key_transport(self.params["base_url"], api_key(self.params["api_key_env"]), self.params["insecure_http"],
                            where, self.params["api_key_env"], "set teacher.insecure_http: true")
        asyncio.run(self._answer_all(requests, desc, finished, budget))

    async def _answer_all(self, requests, desc, finished, budget):
        import openai
        key_env = self.params["api_key_env"] or ""
        # Servers without auth (a local vLLM) accept any key; hosted APIs answer 401.
        api_key = os.environ.get(key_env) or "EMPTY"
        client = openai.AsyncOpenAI(base_url=self.params["base_url"], api_key=api_key,
                                    timeout=self.params["timeout"], max_retries=0)
        limit = asyncio.Semaphore(self.params["concurrency"])
        rpm, tpm = self.params["requests_per_minute"], self.params["tokens_per_minute"]
        request_pace = RateLimiter(rpm) if rpm else None
        token_pace = RateLimiter(tpm) if tpm else None
        bar = tqdm(total=len(requests), desc=desc, unit="req")
        errors = 0

        async def one(k, messages, sampling):
            nonlocal errors
            async with limit:
                estimate = sum(len(m["content"]) for m in messages) // 3 + sampling.get("max_tokens", 512)
                reserved = budget.reserve(estimate, sampling.get("max_tokens", 512)) if budget else 0.0
                if reserved is None:
                    reply = budget.refusal()
                else:
                    if request_pace:
                        await request_pace.acquire()
                    if token_pace:
                        await token_pace.acquire(estimate)
                    reply = await self._with_retries(client, messages, sampling, api_key, openai)
                    used = reply.get("prompt_tokens", 0), reply.get("completion_tokens", 0)
                    if token_pace:
                        token_pace.settle(estimate, sum(used))
                    if budget:
                        budget.settle(reserved, *used)
                errors += bool(reply.get("error"))
                finished(k, reply)
                bar.update(1)
                bar.set_postfix(errors=errors, retries=self.stats["retries"], refresh=False)

        try:
            await asyncio.gather(*(one(k, m, s) for k, (m, s) in enumerate(requests)))
        finally:
            bar.close()
            await client.close()

    async def _with_retries(self, client, messages, sampling, api_key, openai):
        """One request, retried on transient failures; an error record when it still fails."""
        attempts = 1 + int(self.params["max_retries"])
        base, cap = float(self.params["backoff_seconds"]), float(self.params["max_backoff_seconds"])
        attempt = 0
        while True:
            retry_after = None
            sent_schema = bool(sampling.get("response_format")) and not self.schema_unsupported
            try:
                return await self._request(client, messages, sampling)
            except openai.BadRequestError as e:
                if sent_schema and _about_schema(e):
                    # This server cannot constrain output to a schema: ask without it from
                    # now on (not counted as a retry), and rely on the worked examples
                    # and the lenient parser.
                    if not self.schema_unsupported:
                        self.schema_unsupported = True
                        self.stats["schema_fallbacks"] += 1
                    continue
                return _error_record(e, api_key)
            except openai.APIStatusError as e:
                if e.status_code not in RETRYABLE_STATUS:
                    return _error_record(e, api_key)
                error = e
                retry_after = _retry_after(e.response.headers)
            except (openai.APIConnectionError, openai.APIResponseValidationError, MalformedReply) as e:
                error = e  # timeouts, dropped connections, bodies that are not a completion
            attempt += 1
            if attempt == attempts:
                return _error_record(error, api_key)
            wait = retry_after if retry_after is not None else \
                min(cap, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            self.stats["retries"] += 1
            self.stats["retry_wait_seconds"] += wait
            await asyncio.sleep(wait)

    async def _request(self, client, messages, sampling):
        body = {k: v for k, v in sampling.items() if k != "top_logprobs"}
        if self.schema_unsupported:
            body.pop("response_format", None)
        if sampling.get("top_logprobs"):
            body.update(logprobs=True, top_logprobs=sampling["top_logprobs"])
        try:
            reply = await client.chat.completions.create(model=self.model, messages=messages, **body)
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
        if sampling.get("top_logprobs") and choice.logprobs and choice.logprobs.content:
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
    return {"text": None, "error": type(error).__name__, "message": redact(str(error), [api_key])[:1000]}
