"""The one client layer for every teacher call: generate, curate, augment, judge.

Two backends behind one method, `Teacher.chat(conversations)`:
  local   transformers in-process, batched (the embedded model, or any local checkpoint)
  openai  any OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp, hosted APIs)

Every answer is cached on disk (each stage has its own directory,
cache/llm/<stage>/, a persistent DVC output: `dvc repro` never deletes it and
`dvc push` shares it), keyed by the content of the request (backend, model,
messages, sampling settings, response format), so a rerun, an interrupted run
or a run after adding one document only calls the LLM for requests it has
never answered. The API key is never part of a key or an entry. Failed
requests are not cached: the next run asks again.

The openai backend keeps `concurrency` requests in flight, optionally paced to
`requests_per_minute` / `tokens_per_minute`, retries 429, 5xx, timeouts,
dropped connections and malformed replies with exponential backoff and jitter
(or the server's Retry-After), and turns a request that still fails into an
error record. `budget_usd` stops sending before the priced cost would pass it.
"""

import asyncio
import hashlib
import json
import os
import random
import time
from pathlib import Path

from tqdm import tqdm

from faqforge.config import checked
from faqforge.io import PipelineError, atomic_path, remove_temporaries
from faqforge.secrets import redact

SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed")
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


def request_key(model_id, messages, sampling):
    """Content hash of a request: the same request always maps to the same entry."""
    blob = json.dumps({"model": model_id, "messages": messages, "sampling": sampling},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """One JSON file per answered request, written atomically."""

    def __init__(self, directory):
        self.directory = Path(directory)
        if self.directory.is_dir():
            remove_temporaries(self.directory, recursive=True)  # left by a run killed mid-write

    def _path(self, key):
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key):
        path = self._path(key)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a damaged entry is simply asked again

    def put(self, key, entry):
        with atomic_path(self._path(key)) as tmp:
            tmp.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")


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


class Teacher:
    """Chat completions with caching and accounting. `stats` holds the counts."""

    def __init__(self, params, cache_dir="cache/llm", base_dir="models/base", scrub=None):
        """`scrub`, when given, rewrites every reply text before it is cached or
        returned (faqforge.pii: personal data and secrets the teacher writes
        never reach the disk); a cached reply it would change is rewritten too."""
        params = checked("teacher", params)
        backend = params["backend"]
        if not params["model"]:
            raise PipelineError("params.yaml: teacher.model is empty; set it to a model name or "
                                "embedded:smollm2-135m-instruct.")
        self.params = params
        self.backend = backend
        self.model_id = f"{backend}:{params['model']}"
        self.base_dir = base_dir
        self.scrub = scrub
        self.cache = ResponseCache(cache_dir)
        Path(cache_dir).mkdir(parents=True, exist_ok=True)  # a DVC output even when nothing is asked
        self.sampling = {k: params[k] for k in SAMPLING_KEYS}
        if backend == "local" and params["guided_no_repeat_ngram"]:
            # It changes what the local model writes, so it is part of every cache key.
            self.sampling["guided_no_repeat_ngram"] = params["guided_no_repeat_ngram"]
        self.prices = (float(params["usd_per_1m_prompt_tokens"]), float(params["usd_per_1m_completion_tokens"]))
        self.budget = params["budget_usd"]
        self.stats = {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0,
                      "errors": 0, "errors_by_kind": {}, "retries": 0, "retry_wait_seconds": 0.0,
                      "schema_fallbacks": 0, "wall_seconds": 0.0, "cost_usd": 0.0}
        self._local = None
        self._schema_unsupported = False
        self._committed_usd = 0.0  # spent plus the worst case of requests in flight

    def cost(self, prompt_tokens, completion_tokens):
        return (prompt_tokens * self.prices[0] + completion_tokens * self.prices[1]) / 1e6

    def chat(self, conversations, desc="teacher", response_formats=None, top_logprobs=None, **overrides):
        """Answer each conversation. `response_formats` holds one OpenAI
        response_format (or None) per conversation; `top_logprobs` asks for the
        top-k log-probabilities of every reply token. Returns dicts with `text`
        (None on error), `error`, `cached`, `prompt_tokens`, `completion_tokens`,
        `finish_reason` and, when asked, `logprobs`."""
        sampling = {**self.sampling, **overrides}
        formats = response_formats or [None] * len(conversations)
        requests = []
        for messages, response_format in zip(conversations, formats):
            extra = {k: v for k, v in (("response_format", response_format),
                                        ("top_logprobs", top_logprobs)) if v}
            requests.append((messages, {**sampling, **extra}))
        keys = [request_key(self.model_id, m, s) for m, s in requests]
        results = [self.cache.get(k) for k in keys]
        todo = [i for i, r in enumerate(results) if r is None]
        self.stats["cache_hits"] += len(conversations) - len(todo)
        for key, r in zip(keys, results):
            if r is not None:
                if self.scrub and r.get("text") and self.scrub(r["text"]) != r["text"]:
                    r["text"] = self.scrub(r["text"])  # cached before the policy asked for it
                    self.cache.put(key, r)
                r.pop("request", None)
                r["cached"] = True
        if not todo:
            return results
        start = time.monotonic()

        def finished(i, r):
            """Account for and cache one fresh answer (with the request it answers,
            for auditing), as soon as it arrives."""
            self.stats["calls"] += 1
            if r.get("error"):
                self.stats["errors"] += 1
                kind = r["error"]
                self.stats["errors_by_kind"][kind] = self.stats["errors_by_kind"].get(kind, 0) + 1
            else:
                if self.scrub and r.get("text"):
                    r = {**r, "text": self.scrub(r["text"])}
                self.stats["prompt_tokens"] += r["prompt_tokens"]
                self.stats["completion_tokens"] += r["completion_tokens"]
                self.stats["cost_usd"] += self.cost(r["prompt_tokens"], r["completion_tokens"])
                messages, request_sampling = requests[i]
                self.cache.put(keys[i], {**r, "request": {"model": self.model_id, "messages": messages,
                                                          "sampling": request_sampling}})
            results[i] = {**r, "cached": False}

        try:
            if self.backend == "local":
                self._chat_local([requests[i] for i in todo], desc,
                                 lambda k, r: finished(todo[k], r))
            else:
                asyncio.run(self._chat_openai([requests[i] for i in todo], desc,
                                              lambda k, r: finished(todo[k], r)))
        finally:
            self.stats["wall_seconds"] += time.monotonic() - start
        return results

    def _chat_local(self, requests, desc, finished):
        from faqforge.generation import generate_chat
        from faqforge.guided import schema_of
        from faqforge.models import load_model, local_checkpoint
        if self._local is None:
            self._local = load_model(local_checkpoint(self.params["model"], self.base_dir))
        model, tokenizer = self._local
        groups = {}
        for k, (_, sampling) in enumerate(requests):
            plain = {key: v for key, v in sampling.items() if key != "response_format"}
            groups.setdefault(json.dumps(plain, sort_keys=True), []).append(k)
        for members in groups.values():
            sampling = requests[members[0]][1]
            generate_chat(
                model, tokenizer, [requests[k][0] for k in members],
                max_new_tokens=sampling.get("max_tokens", 256), temperature=sampling.get("temperature", 0.0),
                top_p=sampling.get("top_p", 1.0), seed=sampling.get("seed", 0),
                batch_size=self.params["batch_size"], desc=desc,
                schemas=[schema_of(requests[k][1].get("response_format")) for k in members],
                no_repeat_ngram=sampling.get("guided_no_repeat_ngram", 0),
                top_logprobs=sampling.get("top_logprobs"),
                on_result=lambda j, reply, members=members: finished(members[j], reply))

    async def _chat_openai(self, requests, desc, finished):
        import openai
        key_env = self.params["api_key_env"] or ""
        # Servers without auth (a local vLLM) accept any key; hosted APIs answer 401.
        api_key = os.environ.get(key_env) or "EMPTY"
        client = openai.AsyncOpenAI(base_url=self.params["base_url"], api_key=api_key,
                                    timeout=self.params["timeout"], max_retries=0)
        limit = asyncio.Semaphore(self.params["concurrency"])
        rpm = self.params["requests_per_minute"]
        tpm = self.params["tokens_per_minute"]
        request_pace = RateLimiter(rpm) if rpm else None
        token_pace = RateLimiter(tpm) if tpm else None
        bar = tqdm(total=len(requests), desc=desc, unit="req")

        async def one(k, messages, sampling):
            async with limit:
                estimate = sum(len(m["content"]) for m in messages) // 3 + sampling.get("max_tokens", 512)
                worst_case = self.cost(estimate, sampling.get("max_tokens", 512))
                if self.budget is not None and self._committed_usd + worst_case > self.budget:
                    reply = {"text": None, "error": "BudgetExhausted",
                             "message": f"not sent: it could take the cost past teacher.budget_usd "
                                        f"{self.budget} (spent {self.stats['cost_usd']:.4f})"}
                else:
                    self._committed_usd += worst_case
                    if request_pace:
                        await request_pace.acquire()
                    if token_pace:
                        await token_pace.acquire(estimate)
                    reply = await self._request_with_retries(client, messages, sampling, api_key, openai)
                    if token_pace:
                        token_pace.settle(estimate, reply.get("prompt_tokens", 0) + reply.get("completion_tokens", 0))
                    self._committed_usd += self.cost(reply.get("prompt_tokens", 0),
                                                     reply.get("completion_tokens", 0)) - worst_case
                finished(k, reply)
                bar.update(1)
                bar.set_postfix(errors=self.stats["errors"], retries=self.stats["retries"], refresh=False)

        try:
            await asyncio.gather(*(one(k, m, s) for k, (m, s) in enumerate(requests)))
        finally:
            bar.close()
            await client.close()

    async def _request_with_retries(self, client, messages, sampling, api_key, openai):
        """One request, retried on transient failures; an error record when it still fails."""
        attempts = 1 + int(self.params["max_retries"])
        base, cap = float(self.params["backoff_seconds"]), float(self.params["max_backoff_seconds"])
        attempt = 0
        while True:
            retry_after = None
            sent_schema = bool(sampling.get("response_format")) and not self._schema_unsupported
            try:
                return await self._request(client, messages, sampling)
            except openai.BadRequestError as e:
                if sent_schema and _about_schema(e):
                    # This server cannot constrain output to a schema: ask without it from
                    # now on (not counted as a retry), and rely on the worked examples
                    # and the lenient parser.
                    if not self._schema_unsupported:
                        self._schema_unsupported = True
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
        if self._schema_unsupported:
            body.pop("response_format", None)
        if sampling.get("top_logprobs"):
            body.update(logprobs=True, top_logprobs=sampling["top_logprobs"])
        try:
            reply = await client.chat.completions.create(model=self.params["model"], messages=messages, **body)
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
