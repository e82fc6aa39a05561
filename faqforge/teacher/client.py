"""The one client every teacher call goes through: generate, curate, augment, judge.

`Teacher.chat(conversations)` answers from the cache what was answered before
and sends the rest to one of two backends:
  local   transformers in-process, batched (faqforge.teacher.local)
  openai  any OpenAI-compatible server (faqforge.teacher.transport)

Every answer is cached on disk (each stage has its own directory,
cache/llm/<stage>/, a persistent DVC output: `dvc repro` never deletes it and
`dvc push` shares it), keyed by the content of the request (backend, model,
messages, sampling settings, response format), so a rerun, an interrupted run
or a run after adding one document only calls the LLM for requests it has
never answered. The API key is never part of a key or an entry. Failed
requests are not cached: the next run asks again. Calls, tokens, errors and
cost are counted in `stats`; `budget_usd` stops sending before the priced cost
would pass it.
"""

import time
from pathlib import Path

from faqforge.core.config import checked
from faqforge.core.io import PipelineError
from faqforge.teacher.cache import ResponseCache, request_key
from faqforge.teacher.local import LocalBackend
from faqforge.teacher.transport import OpenAITransport

SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed")


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
        """`scrub`, when given, rewrites every reply text before it is cached or
        returned (faqforge.hygiene.pii: personal data and secrets the teacher writes
        never reach the disk); a cached reply it would change is rewritten too."""
        params = checked("teacher", params)
        backend = params["backend"]
        if not params["model"]:
            raise PipelineError("params.yaml: teacher.model is empty; set it to a model name or "
                                "embedded:smollm2-135m-instruct.")
        self.params = params
        self.model_id = f"{backend}:{params['model']}"
        self.scrub = scrub
        self.cache = ResponseCache(cache_dir)
        Path(cache_dir).mkdir(parents=True, exist_ok=True)  # a DVC output even when nothing is asked
        self.sampling = {k: params[k] for k in SAMPLING_KEYS}
        if backend == "local" and params["guided_no_repeat_ngram"]:
            # It changes what the local model writes, so it is part of every cache key.
            self.sampling["guided_no_repeat_ngram"] = params["guided_no_repeat_ngram"]
        self.prices = (float(params["usd_per_1m_prompt_tokens"]), float(params["usd_per_1m_completion_tokens"]))
        self.counts = {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0,
                       "errors": 0, "errors_by_kind": {}}
        self.wall_seconds, self.cost_usd = 0.0, 0.0
        self.budget = Budget(params["budget_usd"], self.cost, lambda: self.cost_usd)
        if backend == "local":
            self.backend = LocalBackend(params["model"], base_dir, params["batch_size"])
        else:
            self.backend = OpenAITransport(params["model"], params)

    @property
    def stats(self):
        transport = getattr(self.backend, "stats", {"retries": 0, "retry_wait_seconds": 0.0, "schema_fallbacks": 0})
        return {**self.counts, **transport, "wall_seconds": self.wall_seconds, "cost_usd": self.cost_usd}

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
        self.counts["cache_hits"] += len(conversations) - len(todo)
        for key, r in zip(keys, results):
            if r is not None:
                if self.scrub and r.get("text") and self.scrub(r["text"]) != r["text"]:
                    r["text"] = self.scrub(r["text"])  # cached before the policy asked for it
                    self.cache.put(key, r)
                r.pop("request", None)
                r["cached"] = True
        if not todo:
            return results

        def finished(k, r):
            """Account for and cache one fresh answer (with the request it answers,
            for auditing), as soon as it arrives."""
            i = todo[k]
            self.counts["calls"] += 1
            if r.get("error"):
                self.counts["errors"] += 1
                by_kind = self.counts["errors_by_kind"]
                by_kind[r["error"]] = by_kind.get(r["error"], 0) + 1
            else:
                if self.scrub and r.get("text"):
                    r = {**r, "text": self.scrub(r["text"])}
                self.counts["prompt_tokens"] += r["prompt_tokens"]
                self.counts["completion_tokens"] += r["completion_tokens"]
                self.cost_usd += self.cost(r["prompt_tokens"], r["completion_tokens"])
                messages, request_sampling = requests[i]
                self.cache.put(keys[i], {**r, "request": {"model": self.model_id, "messages": messages,
                                                          "sampling": request_sampling}})
            results[i] = {**r, "cached": False}

        start = time.monotonic()
        try:
            self.backend.answer([requests[i] for i in todo], desc, finished, budget=self.budget)
        finally:
            self.wall_seconds += time.monotonic() - start
        return results
