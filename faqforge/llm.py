"""The one client layer for every teacher call: generate, curate, augment, judge.

Two backends behind one method, `Teacher.chat(conversations)`:
  local   transformers in-process, batched (the embedded model, or any local checkpoint)
  openai  any OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp, hosted APIs)

Every answer is cached on disk under cache/llm/, keyed by the content of the
request (backend, model, messages, sampling settings), so a rerun, an
interrupted run or a run after adding one document only calls the LLM for
requests it has never answered. The API key is never part of a key or an entry.
"""

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

from tqdm import tqdm

from faqforge.io import PipelineError, atomic_path

SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed")


def request_key(model_id, messages, sampling):
    """Content hash of a request: the same request always maps to the same entry."""
    blob = json.dumps({"model": model_id, "messages": messages, "sampling": sampling},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """One JSON file per answered request, written atomically."""

    def __init__(self, directory):
        self.directory = Path(directory)

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


class Teacher:
    """Chat completions with caching and accounting. `stats` holds the counts."""

    def __init__(self, params, cache_dir="cache/llm", base_dir="models/base"):
        backend = params.get("backend")
        if backend not in ("local", "openai"):
            raise PipelineError(f"params.yaml: teacher.backend must be 'local' or 'openai', got {backend!r}.")
        if not params.get("model"):
            raise PipelineError("params.yaml: teacher.model is empty; set it to a model name or "
                                "embedded:smollm2-135m-instruct.")
        self.params = params
        self.backend = backend
        self.model_id = f"{backend}:{params['model']}"
        self.base_dir = base_dir
        self.cache = ResponseCache(cache_dir)
        self.sampling = {k: params[k] for k in SAMPLING_KEYS if params.get(k) is not None}
        self.stats = {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0,
                      "errors": 0, "errors_by_kind": {}, "llm_seconds": 0.0}
        self._local = None

    def chat(self, conversations, desc="teacher", **overrides):
        """Answer each conversation. Returns dicts with `text` (None on error),
        `error`, `cached`, `prompt_tokens`, `completion_tokens`, `finish_reason`."""
        sampling = {**self.sampling, **overrides}
        keys = [request_key(self.model_id, messages, sampling) for messages in conversations]
        results = [self.cache.get(k) for k in keys]
        todo = [i for i, r in enumerate(results) if r is None]
        self.stats["cache_hits"] += len(conversations) - len(todo)
        for r in results:
            if r is not None:
                r["cached"] = True
        if todo:
            start = time.monotonic()
            call = self._chat_local if self.backend == "local" else self._chat_openai
            fresh = call([conversations[i] for i in todo], sampling, desc)
            self.stats["llm_seconds"] += time.monotonic() - start
            for i, r in zip(todo, fresh):
                self.stats["calls"] += 1
                if r.get("error"):
                    self.stats["errors"] += 1
                    kind = r["error"]
                    self.stats["errors_by_kind"][kind] = self.stats["errors_by_kind"].get(kind, 0) + 1
                else:
                    self.stats["prompt_tokens"] += r["prompt_tokens"]
                    self.stats["completion_tokens"] += r["completion_tokens"]
                    self.cache.put(keys[i], r)  # errors are not cached: a rerun asks again
                results[i] = {**r, "cached": False}
        return results

    def _chat_local(self, conversations, sampling, desc):
        from faqforge.models import generate_chat, load_model, local_checkpoint
        if self._local is None:
            self._local = load_model(local_checkpoint(self.params["model"], self.base_dir))
        model, tokenizer = self._local
        return generate_chat(model, tokenizer, conversations,
                             max_new_tokens=sampling.get("max_tokens", 256),
                             temperature=sampling.get("temperature", 0.0),
                             top_p=sampling.get("top_p", 1.0),
                             seed=sampling.get("seed", 0),
                             batch_size=self.params.get("batch_size", 8), desc=desc)

    def _chat_openai(self, conversations, sampling, desc):
        return asyncio.run(self._chat_openai_async(conversations, sampling, desc))

    async def _chat_openai_async(self, conversations, sampling, desc):
        import openai
        key_env = self.params.get("api_key_env") or ""
        # Servers without auth (a local vLLM) accept any key; hosted APIs answer 401.
        api_key = os.environ.get(key_env) or "EMPTY"
        client = openai.AsyncOpenAI(base_url=self.params.get("base_url"), api_key=api_key,
                                    timeout=self.params.get("timeout", 120),
                                    max_retries=self.params.get("max_retries", 5))
        limit = asyncio.Semaphore(self.params.get("concurrency", 8))
        bar = tqdm(total=len(conversations), desc=desc, unit="req")

        async def one(messages):
            async with limit:
                try:
                    reply = await client.chat.completions.create(
                        model=self.params["model"], messages=messages,
                        **{k: v for k, v in sampling.items()})
                    choice = reply.choices[0]
                    usage = reply.usage
                    return {"text": (choice.message.content or "").strip(),
                            "prompt_tokens": usage.prompt_tokens if usage else 0,
                            "completion_tokens": usage.completion_tokens if usage else 0,
                            "finish_reason": choice.finish_reason}
                except openai.APIError as e:
                    return {"text": None, "error": type(e).__name__,
                            "message": redact(str(e), api_key)}
                finally:
                    bar.update(1)

        try:
            return await asyncio.gather(*(one(m) for m in conversations))
        finally:
            bar.close()
            await client.close()


def redact(text, secret):
    """Remove a secret from text that will be written to disk."""
    if secret and secret != "EMPTY":
        text = text.replace(secret, "[REDACTED]")
    return text
