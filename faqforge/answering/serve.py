"""An OpenAI-compatible server for the base model and the fine-tuned students,
on FastAPI and uvicorn.

    python -m faqforge serve                                  # base, and models/adapter as chatbot
    python -m faqforge serve --lora-modules chatbot=models/adapter support=models/support-adapter
    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
         -d '{"model": "chatbot", "messages": [{"role": "user", "content": "How do I add documents?"}]}'

Like vLLM's `--lora-modules`: the base model answers under its name (`base`
unless --served-model-name says otherwise) and each student under its own, a
LoRA adapter on the shared base or a full fine-tune loaded beside it.
Endpoints: GET /v1/models, POST /v1/chat/completions (streamed with
"stream": true) with temperature, top_p, seed, max_tokens, stop, logprobs and
response_format json_schema (guided decoding), GET /health. Requests that arrive
together are answered in one batch (up to --batch-size, waiting at most
--max-wait-ms for company).

Each student is prompted as it was trained, from the prompt.json stored with
it: a request without a system message gets the student's system prompt, and
a student trained with passages (RAFT) has each question shown the top
passages of --index in the training layout and returns the passages its
answer cites in a `sources` field. The base model is prompted like the first
student (as evaluation's base arms are) unless --layout-from names another.

Safe by default: with the variable named by --api-key-env set
(FAQFORGE_SERVE_KEY), every /v1 request needs `Authorization: Bearer <key>`;
without a key the server refuses any address but this machine's unless
--insecure says so. Bodies, max_tokens, concurrent generations and time per
request are limited (see the options).

    python -m faqforge serve --generator-url https://gpu-host:8000/v1

forwards the built prompts to an OpenAI-compatible generator (vLLM serving the
adapter, say) instead of running a model in-process: the deployment gets the
training prompt, retrieval and sources without a model in this process.
"""

import argparse
import os
import socket
import sys

from faqforge.answering.bots import compose_bot, parse_lora_modules
from faqforge.core.io import PipelineError
from faqforge.hygiene.keys import api_key, is_loopback

DEFAULT_KEY_ENV = "FAQFORGE_SERVE_KEY"
DEFAULT_STUDENT = "models/adapter"


def bind(host, port):
    """A listening socket (port 0: a free one), so the address is known before uvicorn starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise PipelineError(f"--host {host} --port {port}: cannot listen there ({e.strerror})") from None
    sock.listen(2048)
    return sock


def parser():
    p = argparse.ArgumentParser(prog="python -m faqforge serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/base",
                   help="base model: a checkpoint directory, an HF id in the local cache, or embedded:...")
    p.add_argument("--served-model-name", default="base", help="the name clients use for the base model")
    p.add_argument("--lora-modules", nargs="*", metavar="NAME=PATH",
                   help=f"students to serve by name (default: chatbot={DEFAULT_STUDENT} when it exists)")
    p.add_argument("--host", default="127.0.0.1", help="another address than this machine's needs a key")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.add_argument("--api-key-env", default=DEFAULT_KEY_ENV, help="the variable holding the key clients must send")
    p.add_argument("--insecure", action="store_true", help="serve a non-loopback address without a key")
    p.add_argument("--batch-size", type=int, default=8, help="requests answered together at most")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="the precision to answer in (auto: bfloat16/float16 on a GPU, float32 on a CPU)")
    p.add_argument("--max-wait-ms", type=float, default=20, help="how long a request waits for company")
    p.add_argument("--max-concurrent", type=int, default=32,
                   help="requests generating or waiting at once; more get 503 with Retry-After")
    p.add_argument("--max-tokens-limit", type=int, default=1024, help="the largest max_tokens a request may ask")
    p.add_argument("--request-timeout", type=float, default=120, help="seconds a request may take, waiting included")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="the largest request body")
    p.add_argument("--body-timeout", type=float, default=10, help="seconds a client has to send its body")
    p.add_argument("--passages", type=int, help="passages shown with each question (default: as each student was "
                                                "trained, from its prompt.json; 0: no retrieval)")
    p.add_argument("--index", default="data/index", help="the retrieval index (`dvc repro index` builds it)")
    p.add_argument("--answer", default="evidence", choices=["evidence", "model"],
                   help="evidence: answer a question with a verbatim quote of its passages and its citation, or "
                        "say the documents do not cover it (no model generates); model: the model writes the answer")
    p.add_argument("--layout-from", help="the student whose prompt.json the base model is prompted with")
    p.add_argument("--generator-url", help="forward the built prompts to this OpenAI-compatible /v1 server "
                                           "instead of loading a model")
    p.add_argument("--generator-models", nargs="*", help="with --generator-url: the model names it serves "
                                                         "(default: its GET /v1/models)")
    p.add_argument("--generator-key-env", help="with --generator-url: the variable holding its API key")
    p.add_argument("--insecure-http", action="store_true",
                   help="with --generator-url: allow sending its key over plain http to another host")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def build(args):
    """(the app, the names it serves, the passages per name) for parsed arguments."""
    from faqforge.answering.app import Limits, create_app
    key = api_key(args.api_key_env)
    if not key and not is_loopback(args.host) and not args.insecure:
        raise PipelineError(f"--host {args.host}: refusing to serve another address than this machine's without a "
                            f"key; export one in {args.api_key_env} (clients send it as a bearer token), or pass "
                            "--insecure for a network you trust")
    generator = None
    if args.generator_url:
        generator = {"base_url": args.generator_url, "api_key_env": args.generator_key_env,
                     "models": args.generator_models, "insecure_http": args.insecure_http}
        students = {}
    else:
        items = args.lora_modules
        if items is None:
            items = [f"chatbot={DEFAULT_STUDENT}"] if os.path.exists(DEFAULT_STUDENT) else []
        students = parse_lora_modules(items)
    bot, shown = compose_bot(students, args.model, args.served_model_name, args.index, args.passages,
                             args.layout_from, generator, args.dtype, args.batch_size, args.max_wait_ms,
                             args.max_tokens_limit, evidence=args.answer == "evidence")
    limits = Limits(args.max_body_bytes, args.body_timeout, args.max_concurrent, args.request_timeout)
    return create_app(bot, key, limits), bot.model_names(), shown


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        app, names, shown = build(args)
        sock = bind(args.host, args.port)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    import uvicorn
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    print(f"serving {', '.join(names)} on http://{host}:{port}/v1", flush=True)
    for name in names:
        if shown[name]["passages"]:
            print(f"{name}: each question is shown its top {shown[name]['passages']} passages of {args.index}",
                  flush=True)
    # Idle connections are kept longer than clients' pools (httpx: 5 s) and load balancers (60 s) keep
    # theirs, so a client never sends on a connection the server is closing at that moment.
    config = uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=5, timeout_keep_alive=65,
                            limit_concurrency=args.max_concurrent * 4 + 64)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
