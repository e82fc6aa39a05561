"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat completions API.

It stands in for vLLM or a hosted API in tests. Replies are computed from the
request, so the pipeline's parsing is exercised on realistic text:
  generate requests  -> a JSON list of pairs built from sentences of the chunk
  judge requests     -> "Reason: ... Verdict: YES Score: 4"
  paraphrase requests-> a rephrased question
`fail_first` makes the first N requests answer 500, to exercise retries.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def teacher_reply(messages):
    user = messages[-1]["content"]
    if "Verdict" in messages[0]["content"]:
        return "Reason: the answer is stated in the text. Verdict: YES Score: 4"
    if "ways to ask this question" in user:
        question = user.rsplit("question:", 1)[-1].split("\n")[0].strip()
        return f"Could you tell me: {question[0].lower() + question[1:]}"
    text = user.rsplit('"""', 2)[-2] if user.count('"""') >= 2 else user
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 6]
    asked = re.search(r"write (\d+) questions", user, re.I)
    pairs = []
    for s in sentences[:int(asked.group(1)) if asked else 3]:
        words = re.findall(r"[A-Za-z][\w-]+", s)
        topic = " ".join(words[:4])
        pairs.append({"question": f"What should I know about {topic}?", "answer": s})
    return "Here are the pairs:\n" + json.dumps(pairs)


class OpenAIServer:
    def __init__(self, fail_first=0):
        self.requests = []
        self.fail_first = fail_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body,
                                        "auth": self.headers.get("Authorization")})
                if len(server.requests) <= server.fail_first:
                    self._send(500, {"error": {"message": "temporary failure", "type": "server_error"}})
                    return
                text = teacher_reply(body["messages"])
                self._send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 50, "completion_tokens": len(text.split()),
                              "total_tokens": 50 + len(text.split())},
                })

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
