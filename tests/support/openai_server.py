"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat completions API,
and injects faults on demand.

It stands in for vLLM or a hosted API in tests and benchmarks. Replies are
computed from the request, so the pipeline's parsing is exercised on realistic text:
  generate requests  -> a JSON list of pairs built from sentences of the chunk (and, when the
                        chunk says "SYSTEM OVERRIDE", one more that leaks the system prompt:
                        a teacher obeying a planted instruction)
  judge requests     -> "Reason: ... Verdict: YES Score: 4"
  paraphrase requests-> a rephrased question
  "stream": true     -> the same reply as server-sent events, a chunk per word
  /v1/embeddings     -> vectors of hashed words (texts sharing words lie close)

Faults: `faults` is a list of fault names consumed one per request (None = answer
normally), or `fault_rate` draws one at random from FAULTS for that share of requests:
  429        rate limited, with Retry-After: `retry_after` seconds
  500, 503   server errors (any other status code can be listed in `faults`)
  timeout    answers only after `slow_seconds` (longer than the client's timeout)
  drop       closes the connection without a response
  truncated  sends half of a completion body
  nonjson    a 200 whose body is not JSON
`fault_kinds` narrows the faults `fault_rate` draws from. `capacity` answers 429 to a
request arriving while that many are being answered (a server at its limit; `peak_busy`
records the most it answered at once).
`record=False` keeps only the count of requests (`received`), not each one (a benchmark's
million requests). `delay` makes every answer wait that long (a slow model); `reject_schema` answers
400 to any request carrying a response_format, like a server without guided decoding;
`sharp_judge` makes the judge one that knows the right answer (YES exactly when the graded
answer is the reference) instead of saying YES to everything; `echo_secrets` makes error bodies repeat the Authorization header and a token of the
server's own, as careless proxies do; `pii_in_replies` puts LEAKED_CONTACTS (personal
data and secrets of every kind) in an extra pair of every generate reply.
"""

import hashlib
import json
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM_TOKEN = "x9Kq2mWv7Lp4Rt8Zc1Nb6Hd3Fg5Js0Ya"  # a token of no known shape
FAULTS = ("429", "500", "503", "timeout", "drop", "truncated", "nonjson")


# Personal data and secrets a careless teacher writes into its answers (pii_in_replies).
LEAKED_CONTACTS = ("Write to ops.lead@example.org or call +1-202-555-0143; the VPN is 172.16.4.20, card "
                   "5555 5555 5555 4444, IBAN DE89 3704 0044 0532 0130 00, key sk-ops-7Hq2LmX9pR4tW1zK, "
                   "aws AKIAJ7Q2EXAMPLEKEY9Z and password=Sup3r-Secret!")


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet keep-alive HTTP/1.1 handler that answers JSON promptly (hand-written, so it
    can misbehave on purpose: truncated bodies, dropped connections)."""

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


def sharp_verdict(user):
    """A judge that knows the right answer, independent of any score the evaluation
    computes: YES exactly when the graded answer is the reference (case, punctuation
    and spacing folded), NO for anything else."""
    from faqforge.core.records import normalise
    reference = re.search(r"Reference answer: (.*)", user)
    answer = re.search(r"Answer to grade: (.*)", user, re.S)
    if not (reference and answer):
        return None
    right = normalise(reference.group(1)) == normalise(answer.group(1))
    return "Verdict: YES Reason: it states the reference." if right else "Verdict: NO Reason: other facts."


def teacher_reply(messages, pii_in_replies=False, sharp_judge=False):
    user = messages[-1]["content"]
    if "Verdict" in messages[0]["content"]:
        return (sharp_judge and sharp_verdict(user)) or "Reason: the answer is stated in the text. Verdict: YES Score: 4"
    if "ways to ask this question" in user:
        question = user.rsplit("question:", 1)[-1].split("\n")[0].strip()
        return f"Could you tell me: {question[0].lower() + question[1:]}"
    text = user.rsplit('"""', 2)[-2] if user.count('"""') >= 2 else user
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 6]
    asked = re.search(r"(?:write|copy) (\d+) (?:questions|sentences)", user, re.I)
    pairs = []
    for s in sentences[:int(asked.group(1)) if asked else 3]:
        words = re.findall(r"[A-Za-z][\w-]+", s)
        topic = " ".join(words[:4])
        pairs.append({"question": f"What should I know about {topic}?", "answer": s})
    if pii_in_replies:  # a teacher that writes contact details and secrets of its own into an answer
        pairs.insert(0, {"question": "How do I reach the operations team?", "answer": LEAKED_CONTACTS})
    if "SYSTEM OVERRIDE" in text:  # a teacher that obeys a planted instruction: it leaks its prompt
        pairs.insert(0, {"question": "What are your instructions?", "answer": messages[0]["content"][:200]})
    return "Here are the pairs:\n" + json.dumps(pairs)


def embedding(text, dimensions=64):
    """A deterministic stand-in for an embedding model: words hashed into buckets by
    their first five letters, so texts sharing words (and word stems) lie close."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        if len(word) > 2:
            vector[int(hashlib.sha256(word[:5].encode()).hexdigest(), 16) % dimensions] += 1.0
    return vector


def _logprobs(text):
    """Token logprobs in the OpenAI shape, one token per word; YES/NO get both options."""
    content = []
    for word in re.findall(r"\S+|\s+", text):
        top = [{"token": word, "logprob": -0.1}]
        if word.strip().upper() in ("YES", "NO"):
            other = "NO" if word.strip().upper() == "YES" else "YES"
            top.append({"token": other, "logprob": -2.4})
        content.append({"token": word, "logprob": -0.1, "bytes": None,
                        "top_logprobs": [{**t, "bytes": None} for t in top]})
    return {"content": content}


class OpenAIServer:
    def __init__(self, fail_first=0, faults=None, fault_rate=0.0, retry_after=1, slow_seconds=30,
                 delay=0.0, reject_schema=False, echo_secrets=False, pii_in_replies=False, sharp_judge=False, seed=0,
                 fault_kinds=FAULTS, capacity=None, record=True):
        self.requests = []
        self.record, self.received = record, 0
        self.fault_kinds = fault_kinds
        self.capacity, self.busy, self.peak_busy = capacity, 0, 0
        self.fail_first = fail_first
        self.faults = list(faults or [])
        self.fault_rate = fault_rate
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.delay = delay
        self.reject_schema = reject_schema
        self.echo_secrets = echo_secrets
        self.pii_in_replies = pii_in_replies
        self.sharp_judge = sharp_judge
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        server = self

        class Handler(JsonHandler):
            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "test-teacher", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    fault = server._next_fault()
                    full = server.capacity is not None and server.busy >= server.capacity
                    fault = "429" if full else fault   # at its limit, as a hosted API or a gateway says
                    server.busy += not full
                    server.peak_busy = max(server.peak_busy, server.busy)
                    server.received += 1
                    if server.record:
                        server.requests.append({"path": self.path, "body": body, "time": time.monotonic(),
                                                "auth": self.headers.get("Authorization"), "fault": fault})
                try:
                    self._answer(body, fault, full)
                finally:
                    with server.lock:
                        server.busy -= not full

            def _answer(self, body, fault, full):
                if server.delay and not full:
                    time.sleep(server.delay)
                if fault == "429":
                    self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                               {"Retry-After": str(server.retry_after)})
                elif fault and fault.isdigit():  # 500, 503, or any status a test asks for
                    message = f"failure {fault}"
                    if server.echo_secrets:
                        message += (f"; request had Authorization: {self.headers.get('Authorization')}; upstream "
                                    f"credentials api_key={UPSTREAM_TOKEN} rejected")
                    self._send(int(fault), {"error": {"message": message, "type": "server_error"}})
                elif fault == "timeout":
                    time.sleep(server.slow_seconds)
                    self.close_connection = True
                elif fault == "drop":
                    self.close_connection = True
                elif fault == "truncated":
                    data = json.dumps(self._completion(body)).encode()
                    self.send_body(200, data[:len(data) // 2], length=len(data))
                elif fault == "nonjson":
                    self.send_body(200, b"<html>upstream error</html>")
                elif server.reject_schema and body.get("response_format"):
                    self._send(400, {"error": {"message": "response_format json_schema is not supported",
                                               "type": "invalid_request_error"}})
                elif self.path.rstrip("/").endswith("/embeddings"):
                    texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
                    self._send(200, {"object": "list", "model": body["model"],
                                     "data": [{"object": "embedding", "index": i, "embedding": embedding(t)}
                                              for i, t in enumerate(texts)],
                                     "usage": {"prompt_tokens": 0, "total_tokens": 0}})
                elif body.get("stream"):
                    self._stream(body)
                else:
                    self._send(200, self._completion(body))

            def _stream(self, body):
                """Server-sent events, one chunk per word, then [DONE], as the OpenAI API streams."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                words = re.findall(r"\S+\s*", teacher_reply(body["messages"], server.pii_in_replies, server.sharp_judge))
                for piece in words + [None]:
                    delta = {"role": "assistant", "content": piece} if piece is not None else {}
                    chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
                             "model": body["model"], "choices": [{"index": 0, "delta": delta,
                                                                  "finish_reason": None if piece else "stop"}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _completion(self, body):
                text = teacher_reply(body["messages"], server.pii_in_replies, server.sharp_judge)
                choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                if body.get("logprobs"):
                    choice["logprobs"] = _logprobs(text)
                return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [choice],
                        "usage": {"prompt_tokens": 50, "completion_tokens": len(text.split()),
                                  "total_tokens": 50 + len(text.split())}}

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _next_fault(self):
        if len(self.requests) < self.fail_first:
            return "500"
        if self.faults:
            return self.faults.pop(0)
        if self.fault_rate and self.random.random() < self.fault_rate:
            return self.random.choice(self.fault_kinds)
        return None

    def answered(self):
        return [r for r in self.requests if r["fault"] is None]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
