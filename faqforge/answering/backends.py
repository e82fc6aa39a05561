"""What answers a chat completion request behind `faqforge serve`: a local
model with its named adapters, batching requests that arrive together
(ModelServer); an OpenAI-compatible generator the built prompt is forwarded to
(Forwarder); and retrieval around either, showing each question its passages
in the training layout and returning the cited sources (Retrieving)."""


import contextlib
import json
import os
import queue
import threading
import time
import uuid

from faqforge.core.chat_format import sources, with_passages
from faqforge.core.io import PipelineError
from faqforge.hygiene.secrets import redact
from faqforge.models.guided import schema_of, string_array_shape

SAMPLING_DEFAULTS = {"max_tokens": 256, "temperature": 1.0, "top_p": 1.0, "seed": 0, "top_logprobs": None}


class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ModelServer:
    """The model, its adapters and the batching worker; `complete(body)` answers one request."""

    def __init__(self, model_spec, adapters=None, name="base", batch_size=8, max_wait_ms=20):
        from faqforge.models.checkpoints import load_model
        model, self.tokenizer = load_model(model_spec)
        self.name = name
        self.adapters = dict(adapters or {})
        if self.adapters:
            from peft import PeftModel
            (first, path), *rest = self.adapters.items()
            model = PeftModel.from_pretrained(model, path, adapter_name=first)
            for adapter, path in rest:
                model.load_adapter(path, adapter_name=adapter)
            model.eval()
        self.model = model
        self.batch_size = batch_size
        self.max_wait = max_wait_ms / 1000
        self.queue = queue.Queue()
        self.stats = {"requests": 0, "batches": 0}
        threading.Thread(target=self._worker, daemon=True).start()

    def model_names(self):
        return [self.name, *self.adapters]

    def complete(self, body):
        """Validate one chat completion request and wait for its answer."""
        if body.get("model") not in self.model_names():
            raise BadRequest(404, f"model {body.get('model')!r} is not served; choose one of {self.model_names()}")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in messages):
            raise BadRequest(400, "messages must be a non-empty list of {role, content} objects")
        if body.get("n", 1) != 1:
            raise BadRequest(400, "only n=1 is supported")
        if body.get("stream"):
            raise BadRequest(400, "stream is not supported; ask without it")
        sampling = {k: body.get(k) if body.get(k) is not None else v for k, v in SAMPLING_DEFAULTS.items()}
        if body.get("max_completion_tokens"):
            sampling["max_tokens"] = body["max_completion_tokens"]
        if not body.get("logprobs"):
            sampling["top_logprobs"] = None
        elif not sampling["top_logprobs"]:
            sampling["top_logprobs"] = 1
        response_format = body.get("response_format")
        if response_format and response_format.get("type") not in ("text", "json_schema"):
            raise BadRequest(400, f"response_format type {response_format.get('type')!r} is not supported; "
                                  "use json_schema")
        try:
            schema = schema_of(response_format)
            if schema is not None:
                string_array_shape(schema)
        except PipelineError as e:
            raise BadRequest(400, f"response_format json_schema: {e}") from None
        job = {"model": body["model"], "messages": messages, "sampling": sampling, "schema": schema,
               "done": threading.Event()}
        self.queue.put(job)
        job["done"].wait()
        if "error" in job:
            raise BadRequest(500, job["error"])
        return self._response(body["model"], job["reply"])

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
                key = (job["model"], json.dumps(job["sampling"], sort_keys=True))
                groups.setdefault(key, []).append(job)
            for (model_name, _), group in groups.items():
                self._run(model_name, group)

    def _run(self, model_name, jobs):
        from faqforge.models.decoding import generate_chat
        sampling = jobs[0]["sampling"]
        try:
            self.stats["batches"] += 1
            self.stats["requests"] += len(jobs)
            context = contextlib.nullcontext()
            if self.adapters and model_name in self.adapters:
                self.model.set_adapter(model_name)
            elif self.adapters:
                context = self.model.disable_adapter()
            with context:
                replies = generate_chat(
                    self.model, self.tokenizer, [job["messages"] for job in jobs],
                    max_new_tokens=sampling["max_tokens"], temperature=sampling["temperature"],
                    top_p=sampling["top_p"], seed=sampling["seed"], batch_size=len(jobs),
                    schemas=[job["schema"] for job in jobs], top_logprobs=sampling["top_logprobs"])
            for job, reply in zip(jobs, replies):
                job["reply"] = reply
        except Exception as e:  # a failed batch answers its requests with the error, the server lives on
            for job in jobs:
                job["error"] = f"{type(e).__name__}: {e}"
        for job in jobs:
            job["done"].set()

    def _response(self, model_name, reply):
        choice = {"index": 0, "finish_reason": reply["finish_reason"],
                  "message": {"role": "assistant", "content": reply["text"]}, "logprobs": None}
        if "logprobs" in reply:
            choice["logprobs"] = {"content": [
                {"token": t["token"], "logprob": t["logprob"], "bytes": list(t["token"].encode()),
                 "top_logprobs": [{"token": k, "logprob": v, "bytes": list(k.encode())} for k, v in t["top"].items()]}
                for t in reply["logprobs"]]}
        usage = {"prompt_tokens": reply["prompt_tokens"], "completion_tokens": reply["completion_tokens"],
                 "total_tokens": reply["prompt_tokens"] + reply["completion_tokens"]}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name, "choices": [choice], "usage": usage}


FORWARDED = ("model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop",
             "logprobs", "top_logprobs", "response_format", "n", "presence_penalty", "frequency_penalty")


class Forwarder:
    """Answers by forwarding each request to an OpenAI-compatible generator
    (vLLM, a hosted API, another faqforge serve); errors come back with the
    generator's status."""

    def __init__(self, base_url, api_key_env=None, models=None):
        import openai
        self.api_key = os.environ.get(api_key_env or "") or "none"
        self.client = openai.OpenAI(base_url=base_url, api_key=self.api_key, max_retries=2)
        self.base_url = base_url
        try:
            self.names = list(models) if models else [m.id for m in self.client.models.list()]
        except openai.OpenAIError as e:
            raise PipelineError(f"--generator-url {base_url}: cannot list its models ({self._why(e)}); "
                                "give them with --generator-models") from None

    def _why(self, error):
        return f"{type(error).__name__}: {redact(str(error).splitlines()[0], [self.api_key])}"

    def model_names(self):
        return self.names

    def complete(self, body):
        import openai
        if body.get("model") not in self.names:
            raise BadRequest(404, f"model {body.get('model')!r} is not served; choose one of {self.names}")
        if body.get("stream"):
            raise BadRequest(400, "stream is not supported; ask without it")
        try:
            reply = self.client.chat.completions.create(**{k: body[k] for k in FORWARDED if k in body})
        except openai.APIStatusError as e:
            raise BadRequest(e.status_code, f"generator {self.base_url}: {self._why(e)}") from None
        except openai.OpenAIError as e:
            raise BadRequest(502, f"generator {self.base_url}: {self._why(e)}") from None
        return reply.model_dump(exclude_none=True)


class Retrieving:
    """Wraps a server (ModelServer or Forwarder): each question is shown its top
    k passages in the training layout, and the reply gets their `sources`."""

    def __init__(self, inner, retriever, k, system_prompt=None):
        self.inner, self.retriever, self.k, self.system_prompt = inner, retriever, k, system_prompt

    def model_names(self):
        return self.inner.model_names()

    def complete(self, body):
        messages = body.get("messages")
        if not (isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages)):
            return self.inner.complete(body)  # the inner server says what is wrong
        messages, shown = with_passages(messages, self.retriever, self.k, self.system_prompt)
        reply = self.inner.complete({**body, "messages": messages})
        for choice in reply.get("choices", []):
            choice["sources"] = sources(choice["message"].get("content") or "", shown) if shown else []
        return reply
