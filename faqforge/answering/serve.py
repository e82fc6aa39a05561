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
import json
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from faqforge.answering.backends import BadRequest, Forwarder, ModelServer, Retrieving
from faqforge.core.chat_format import trained_layout
from faqforge.core.io import PipelineError


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
