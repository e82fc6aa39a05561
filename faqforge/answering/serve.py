"""An OpenAI-compatible HTTP server for a local base model and named LoRA adapters.

    python -m faqforge serve --lora-modules chatbot=models/adapter          # finetune.method lora
    python -m faqforge serve --model models/adapter --served-model-name chatbot   # finetune.method full
    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \
         -d '{"model": "chatbot", "messages": [{"role": "user", "content": "How do I add documents?"}]}'

Like vLLM's `--lora-modules`: the base model answers under its name (`base`
unless --served-model-name says otherwise) and each adapter under its own.
Endpoints: GET /v1/models, POST /v1/chat/completions with temperature, top_p,
seed, max_tokens, logprobs/top_logprobs and response_format json_schema
(guided decoding, faqforge.models.guided). Requests that arrive together are answered
in one batch (up to --batch-size, waiting at most --max-wait-ms for company),
so concurrent clients share the forward passes.

Retrieval: for a student trained with passages (RAFT; its prompt.json says so)
the server shows each question the top --passages passages of --index in the
training layout, fills in the training system prompt when a request has none,
and returns the passages the answer cites in a `sources` field next to the
choice's message. A request whose last user turn already holds passages (a
client that built the prompt, e.g. `faqforge chat`) is answered as it is.

    python -m faqforge serve --generator-url http://gpu-host:8000/v1

forwards the built prompt to an OpenAI-compatible generator (vLLM serving the
adapter, say) instead of running a model in-process: the deployment gets
retrieval and sources without a model in this process.
"""

import argparse
import contextlib
import json
import os
import queue
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from faqforge.core.chat_format import sources, trained_layout, with_passages
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


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet keep-alive HTTP/1.1 handler that answers JSON promptly."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_body(self, status, data, headers=None, length=None):
        """Send `data`; a `length` larger than the data makes a truncated response."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length or len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        if length:
            self.close_connection = True

    def _send(self, status, payload, headers=None):
        self.send_body(status, json.dumps(payload).encode(), headers)


def make_http_server(model_server, host="127.0.0.1", port=8000, api_key=None):
    """A ThreadingHTTPServer speaking the OpenAI API in front of `model_server`."""

    class Handler(JsonHandler):
        def _authorised(self):
            if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                self._send(401, {"error": {"message": "invalid API key", "type": "authentication_error"}})
                return False
            return True

        def do_GET(self):
            if not self._authorised():
                return
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [
                    {"id": name, "object": "model", "owned_by": "faqforge"} for name in model_server.model_names()]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self):
            if not self._authorised():
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                if not isinstance(body, dict):
                    raise BadRequest(400, "the request body must be a JSON object")
                self._send(200, model_server.complete(body))
            except json.JSONDecodeError as e:
                self._send(400, {"error": {"message": f"the request body is not JSON: {e}",
                                           "type": "invalid_request_error"}})
            except BadRequest as e:
                kind = "invalid_request_error" if e.status < 500 else "server_error"
                self._send(e.status, {"error": {"message": str(e), "type": kind}})

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def parse_lora_modules(items):
    adapters = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise PipelineError(f"--lora-modules {item!r}: write it as name=path, e.g. chatbot=models/adapter")
        if not os.path.exists(os.path.join(path, "adapter_config.json")):
            if os.path.exists(os.path.join(path, "config.json")):
                raise PipelineError(f"--lora-modules {item!r}: {path} is a full fine-tune (finetune.method full), "
                                    f"not an adapter: serve it with --model {path} --served-model-name {name}")
            raise PipelineError(f"--lora-modules {item!r}: {path}/adapter_config.json not found; "
                                "train one with `dvc repro finetune`")
        adapters[name] = path
    return adapters


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m faqforge serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/base",
                        help="base model: a checkpoint directory, an HF id in the local cache, or embedded:...")
    parser.add_argument("--served-model-name", default="base", help="the name clients use for the base model")
    parser.add_argument("--lora-modules", nargs="*", metavar="NAME=PATH", help="adapters to serve, by name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--batch-size", type=int, default=8, help="requests answered together at most")
    parser.add_argument("--max-wait-ms", type=float, default=20, help="how long a request waits for company")
    parser.add_argument("--api-key-env", help="require `Authorization: Bearer $VAR` (the variable's name)")
    parser.add_argument("--passages", type=int, help="passages shown with each question (default: as the adapter "
                                                     "was trained, from its prompt.json; 0: no retrieval)")
    parser.add_argument("--index", default="data/index", help="the retrieval index (`dvc repro index` builds it)")
    parser.add_argument("--layout-from", help="the student whose prompt.json gives the system prompt and passages "
                                              "(default: the first --lora-modules path, else --model or "
                                              "models/adapter when it has one, else params.yaml)")
    parser.add_argument("--generator-url", help="forward the built prompts to this OpenAI-compatible /v1 server "
                                                "instead of loading a model")
    parser.add_argument("--generator-models", nargs="*", help="with --generator-url: the model names it serves "
                                                              "(default: its GET /v1/models)")
    parser.add_argument("--generator-key-env", help="with --generator-url: the variable holding its API key")
    args = parser.parse_args(argv)
    try:
        api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
        if args.api_key_env and not api_key:
            raise PipelineError(f"--api-key-env {args.api_key_env}: that environment variable is empty")
        adapters = parse_lora_modules(args.lora_modules)
        layout = trained_layout(args.layout_from or next(iter(adapters.values()), None) or next(
            (m for m in (args.model, "models/adapter") if os.path.exists(os.path.join(m, "prompt.json"))), None))
        k = layout["passages"] if args.passages is None else args.passages
        if k < 0:
            raise PipelineError(f"--passages {k}: give 0 (no retrieval) or more")
        if args.generator_url:
            model_server = Forwarder(args.generator_url, args.generator_key_env, args.generator_models)
        else:
            model_server = ModelServer(args.model, adapters, args.served_model_name, args.batch_size,
                                       args.max_wait_ms)
        if k:
            from faqforge.documents.retrieval import Retriever
            model_server = Retrieving(model_server, Retriever(args.index), k, layout["system_prompt"])
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    server = make_http_server(model_server, args.host, args.port, api_key)
    host, port = server.server_address[:2]
    print(f"serving {', '.join(model_server.model_names())} on http://{host}:{port}/v1", flush=True)
    if k:
        print(f"each question is shown its top {k} passages of {args.index}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
