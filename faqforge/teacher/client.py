"""The one client every teacher call goes through: generate, curate, augment, judge.

`Teacher.chat(conversations)` answers from the cache what was answered before
and sends the rest to one of two backends (faqforge.models.completion):
  local   transformers in-process, batched (faqforge.models.local)
  openai  any OpenAI-compatible server (faqforge.models.openai_client)

Every answer is cached on disk (each stage has its own directory of segment
files, cache/llm/<stage>/, a persistent DVC output: `dvc repro` never deletes it
and `dvc push` shares it; see faqforge.models.cache), keyed by the content of the request (backend, model,
messages, sampling settings, response format), so a rerun, an interrupted run
or a run after adding one document only calls the LLM for requests it has
never answered. The API key is never part of a key or an entry. Failed
requests are not cached: the next run asks again. Calls, tokens, errors and
cost are counted in `stats`; `budget_usd` stops sending before the priced cost
would pass it.
"""

import collections
import concurrent.futures
import functools
import itertools
import time
from pathlib import Path

from faqforge.models.completion import Cached
from faqforge.models.local import LocalModel, local_models
from faqforge.models.openai_client import OpenAIClient
from faqforge.models.sampling import Sampling
from faqforge.teacher.errors import check_error_rate
from faqforge.teacher.ray_engine import map_on_ray

WINDOW = 1024   # items a streaming stage holds at most: in flight, or answered and waiting for the ones before
LOOKUP = 64     # cache lookups done together


class Budget:
    """Reserves each request's worst-case cost before it is sent, so requests in
    flight together cannot pass `limit` (USD); None is no limit."""

    def __init__(self, limit, cost, spent):
        self.limit, self.cost, self.spent = limit, cost, spent
        self.committed = 0.0  # spent plus the worst case of requests in flight

    def reserve(self, prompt_tokens, max_tokens):
        """The amount reserved, or None when the request could take the cost past the limit."""
        worst_case = self.cost(prompt_tokens, max_tokens)
        if self.limit is not None and self.committed + worst_case > self.limit:
            return None
        self.committed += worst_case
        return worst_case

    def settle(self, reserved, prompt_tokens, completion_tokens):
        self.committed += self.cost(prompt_tokens, completion_tokens) - reserved

    def refusal(self):
        return {"text": None, "error": "BudgetExhausted",
                "message": f"not sent: it could take the cost past teacher.budget_usd {self.limit} "
                           f"(spent {self.spent():.4f})"}


class Teacher:
    """Chat completions with caching and accounting. `stats` holds the counts."""

    def __init__(self, params, cache_dir="cache/llm", base_dir="models/base", scrub=None):
        """`params`: the teacher section. `scrub`, when given, rewrites every reply text before it is cached or
        returned (faqforge.hygiene.pii: personal data and secrets the teacher writes
        never reach the disk); a cached reply it would change is rewritten too."""
        backend = params.backend
        self.params = params
        self.model_id = f"{backend}:{params.model}"
        self.scrub = scrub
        # guided_no_repeat_ngram changes what the local model writes, so it is part of its cache keys.
        self.sampling = Sampling(max_tokens=params.max_tokens, temperature=params.temperature,
                                 top_p=params.top_p, seed=params.seed,
                                 no_repeat_ngram=params.guided_no_repeat_ngram if backend == "local" else 0)
        self.prices = (float(params.usd_per_1m_prompt_tokens), float(params.usd_per_1m_completion_tokens))
        self.counts = {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0,
                       "errors": 0, "errors_by_kind": {}}
        self.wall_seconds, self.cost_usd = 0.0, 0.0   # seconds the backend worked for this stage
        self.last_reply = None
        self.budget = Budget(params.budget_usd, self.cost, lambda: self.cost_usd)
        if backend == "local":
            self.backend = local_models(params.model, batch_size=params.batch_size, base_dir=base_dir)["base"]
        else:
            self.backend = OpenAIClient(params.model, params)
        self.cache = Cached(self.backend, self.model_id, cache_dir)
        Path(cache_dir).mkdir(parents=True, exist_ok=True)  # a DVC output even when nothing is asked

    @property
    def stats(self):
        transport = getattr(self.backend, "stats", {"retries": 0, "retry_wait_seconds": 0.0, "schema_fallbacks": 0})
        return {**self.counts, **transport, "wall_seconds": self.wall_seconds, "cost_usd": self.cost_usd}

    def close(self):
        """Seal this run's cache segment (also done at exit)."""
        self.cache.close()

    def check_errors(self, stage, max_error_rate):
        """Fail `stage` when too many of its requests failed or the budget stopped it
        (faqforge.teacher.errors); called after the stage has written its outputs."""
        check_error_rate(stage, self.stats, max_error_rate)

    def cost(self, prompt_tokens, completion_tokens):
        return (prompt_tokens * self.prices[0] + completion_tokens * self.prices[1]) / 1e6

    def chat(self, conversations, desc="teacher", response_formats=None, top_logprobs=None, **overrides):
        """Answer each conversation. `response_formats` holds one OpenAI
        response_format (or None) per conversation; `top_logprobs` asks for the
        top-k log-probabilities of every reply token. Returns dicts with `text`
        (None on error), `error`, `cached`, `prompt_tokens`, `completion_tokens`,
        `finish_reason` and, when asked, `logprobs`."""
        formats = response_formats or [None] * len(conversations)
        options = [{**overrides, "response_format": f, "top_logprobs": top_logprobs} for f in formats]
        return [reply for _, reply in self.map(list(zip(conversations, options)), lambda request: request, desc,
                                               window=max(1, len(conversations)), total=len(conversations))]

    def map(self, items, request, desc="teacher", window=WINDOW, total=None):
        """Yield (item, reply) for each item of the iterable `items`, in order, as
        replies arrive, holding at most about `window` items at once: a stage streams
        its input through the teacher in bounded memory, and the first reply comes
        before the last request is built. `request(item)` gives (messages, options):
        sampling overrides such as max_tokens, `response_format` and `top_logprobs`
        (None leaves one out), or None for an item that needs no request (its reply
        is None). Replies as `chat` returns them."""
        items = iter(items)
        if self.params.engine == "ray":
            yield from map_on_ray(self, items, request, desc, LOOKUP)
            return
        if isinstance(self.backend, LocalModel):   # in-process: a window at a time, in batches
            while batch := list(itertools.islice(items, window)):
                yield from zip(batch, self._answer_batch(batch, request, desc))
            return
        first_sent = None   # wall_seconds: from the first request sent to the last answer received
        try:
            with self.backend.session(desc, self.budget, total) as submit:
                held = collections.deque()
                while batch := list(itertools.islice(items, LOOKUP)):
                    for item, (key, req, hit) in zip(batch, self.lookup(batch, request)):
                        if req is not None and hit is None:
                            first_sent = first_sent or time.monotonic()
                            hit = submit(*req, functools.partial(self.record, key, req))
                        held.append((item, hit))
                    while held and (len(held) > window or _ready(held[0][1])):
                        item, reply = held.popleft()
                        yield item, _result(reply)
                while held:
                    item, reply = held.popleft()
                    yield item, _result(reply)
        finally:
            if first_sent:
                self.wall_seconds += self.last_reply - first_sent

    def lookup(self, batch, request, count=True):
        """(key, request, cached reply or None) for each item of a batch; (None,
        None, None) for an item that needs no request. `count`: as cache hits."""
        requests = []
        for item in batch:
            built = request(item)
            if built is not None:
                messages, options = built
                built = messages, self.sampling.replace(**options)
            requests.append(built)
        asked = [i for i, r in enumerate(requests) if r is not None]
        keys = [None] * len(batch)
        for i in asked:
            keys[i] = self.cache.key(*requests[i])
        found = [None] * len(batch)
        for i, reply in zip(asked, self.cache.lookup([keys[i] for i in asked])):
            found[i] = reply
        for key, req, reply in zip(keys, requests, found):
            if reply is not None:
                self.counts["cache_hits"] += count
                if self.scrub and reply.get("text") and self.scrub(reply["text"]) != reply["text"]:
                    reply["text"] = self.scrub(reply["text"])  # cached before the policy asked for it
                    self.cache.put(key, req, {k: v for k, v in reply.items() if k != "cached"}, replace=True)
        return list(zip(keys, requests, found))

    def _answer_batch(self, batch, request, desc):
        """Replies to a batch from the cache and, for the rest, the in-process backend."""
        looked_up = self.lookup(batch, request)
        replies = [hit for _, _, hit in looked_up]
        todo = [i for i, (_, req, hit) in enumerate(looked_up) if req is not None and hit is None]
        if todo:
            def finished(k, reply):
                key, req, _ = looked_up[todo[k]]
                replies[todo[k]] = self.record(key, req, reply)
            start = time.monotonic()
            self.backend.complete([looked_up[i][1] for i in todo], desc, finished, budget=self.budget)
            self.wall_seconds += time.monotonic() - start
        return replies

    def record(self, key, request, reply):
        """Account for and cache one fresh answer (with the request it answers, for
        auditing) as soon as it arrives; failed requests are not cached."""
        self.last_reply = time.monotonic()
        self.counts["calls"] += 1
        if reply.get("error"):
            self.counts["errors"] += 1
            by_kind = self.counts["errors_by_kind"]
            by_kind[reply["error"]] = by_kind.get(reply["error"], 0) + 1
        else:
            if self.scrub and reply.get("text"):
                reply = {**reply, "text": self.scrub(reply["text"])}
            self.counts["prompt_tokens"] += reply["prompt_tokens"]
            self.counts["completion_tokens"] += reply["completion_tokens"]
            self.cost_usd += self.cost(reply["prompt_tokens"], reply["completion_tokens"])
            self.cache.put(key, request, reply)
        return {**reply, "cached": False}


def _ready(reply):
    return not isinstance(reply, concurrent.futures.Future) or reply.done()


def _result(reply):
    return reply.result() if isinstance(reply, concurrent.futures.Future) else reply
