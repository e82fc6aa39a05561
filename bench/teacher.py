"""Teacher client throughput and rate limiting against a local OpenAI-compatible server.

    .venv/bin/python -m bench.teacher

The server (tests/openai_server.py, real HTTP on 127.0.0.1) answers every
request after 200 ms, so with 16 requests in flight the ideal is 80 requests/s.
Baseline, measured in the same run: the same client with one request in flight
(ideal 5/s). Targets: concurrency 16 reaches >= 90% of 80/s; with
requests_per_minute 120 the rate the server sees is within 5% of 2/s.

The client's own cost: 3,000 generate-shaped requests (params.yaml's worked
examples and JSON schema) against a server answering at once, in a process of
its own: faqforge's transport against the SDK's usual
`client.chat.completions.create` (the baseline), in the same run.

Adaptive concurrency (`concurrency: auto`): a server that answers at most
CAPACITY requests at once, each in 200 ms, and 429 (Retry-After 0.1 s) to any
beyond (in a process of its own, so the client's CPU is not the server's). The
ideal is CAPACITY / 0.2 s. Against it, in the same run: the old default
(concurrency 8) and the best fixed setting, which needs the capacity known
(concurrency CAPACITY). Target: auto >= 90% of the ideal, backing off on 429.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faqforge.core.sections import Teacher as TeacherSection
from faqforge.models.openai_client import OpenAIClient
from faqforge.teacher.client import Teacher
from tests.support.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parents[1]
DELAY = 0.2


def run(server, n, **params):
    """Requests/s for n distinct requests (fresh cache), as the client measures it,
    and as the server sees it (first to last arrival)."""
    with tempfile.TemporaryDirectory() as cache:
        teacher = Teacher(TeacherSection(backend="openai", model="bench", base_url=server.base_url, api_key_env="NONE",
                                         max_tokens=16, timeout=30, max_retries=0, **params), cache_dir=cache)
        first = len(server.requests)
        start = time.monotonic()
        results = teacher.chat([[{"role": "user", "content": f"bench question {i} {time.time()}"}] for i in range(n)],
                               desc=f"{params}")
        elapsed = time.monotonic() - start
    assert all(r["text"] for r in results), "a request failed"
    arrivals = [r["time"] for r in server.requests[first:]]
    seen_rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return n / elapsed, seen_rate


CAPACITY, ADAPTIVE_REQUESTS = 32, 4000
SERVER = """
import sys, time
from tests.support.openai_server import OpenAIServer
with OpenAIServer(delay={delay}, capacity={capacity}, retry_after=0.1, record=False) as server:
    print(server.base_url, flush=True)
    sys.stdin.read()
"""


def adaptive():
    """(label, req/s, 429s, final limit) for fixed 8, fixed CAPACITY and auto."""
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(delay=DELAY, capacity=CAPACITY)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    base_url = server.stdout.readline().strip()
    rows = []
    try:
        for concurrency in (8, CAPACITY, "auto"):
            with tempfile.TemporaryDirectory() as cache:
                teacher = Teacher(TeacherSection(backend="openai", model="bench", base_url=base_url, api_key_env="NONE",
                                                 max_tokens=16, timeout=30, max_retries=50, concurrency=concurrency),
                                  cache_dir=cache)
                start = time.monotonic()
                results = teacher.chat([[{"role": "user", "content": f"bench question {i} {time.time()}"}]
                                        for i in range(ADAPTIVE_REQUESTS)], desc=f"concurrency {concurrency}")
                elapsed = time.monotonic() - start
                teacher.close()
            assert all(r["text"] for r in results), "a request failed"
            [replica] = teacher.stats["replicas"].values()
            rows.append((concurrency, ADAPTIVE_REQUESTS / elapsed, replica["overloaded"], replica["limit"]))
    finally:
        server.stdin.close()
        server.wait()
    return rows


class SdkCreate(OpenAIClient):
    """The baseline for the client's own cost: the request sent with the SDK's usual
    `client.chat.completions.create`, which type-checks every message and the schema."""

    async def _request(self, client, messages, sampling):
        reply = await client.chat.completions.create(model=self.model, messages=messages, **sampling.to_openai())
        usage = reply.usage
        return {"text": reply.choices[0].message.content or "", "finish_reason": reply.choices[0].finish_reason,
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": usage.completion_tokens if usage else 0}


def client_cost(n=3000):
    """req/s for n generate-shaped requests (the worked examples and the JSON schema
    of params.yaml) against an instant server in its own process: the SDK's create
    (baseline) and faqforge's transport, which posts the same body."""
    from faqforge.core.config import load_config
    from faqforge.synthesis.generate import generation_request
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(delay=0, capacity=None)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    base_url = server.stdout.readline().strip()
    params = load_config(str(Path(__file__).resolve().parents[1] / "params.yaml"), ["generate"])["generate"]
    chunks = [{"chunk_id": f"c{i}", "doc": "d.md", "n_tokens": 200, "text": f"Section {i}: the cache keeps {i} "
               "copies of each answer; `dvc push` sends them to the remote storage. " * 3} for i in range(n)]
    rates = {}
    try:
        for name, transport in (("SDK create (baseline)", SdkCreate), ("faqforge transport", None)):
            with tempfile.TemporaryDirectory() as cache:
                teacher = Teacher(TeacherSection(backend="openai", model="bench", base_url=base_url, api_key_env="NONE",
                                                 timeout=30, max_retries=0), cache_dir=cache)
                if transport:
                    teacher.backend = transport("bench", teacher.backend.transport)
                start = time.monotonic()
                replies = [r for _, r in teacher.map(chunks, lambda c: generation_request(c, params), name)]
                rates[name] = n / (time.monotonic() - start)
                teacher.close()
            assert all(r["text"] for r in replies), "a request failed"
    finally:
        server.stdin.close()
        server.wait()
    return rates


def main():
    rates = client_cost()
    base = rates["SDK create (baseline)"]
    for name, rate in rates.items():
        print(f"client cost, generate-shaped requests, instant server: {name:22} {rate:6.1f} req/s "
              f"({rate / base:.2f}x)")
    ideal = CAPACITY / DELAY
    for concurrency, rate, rejected, limit in adaptive():
        print(f"capacity {CAPACITY}, concurrency {concurrency!s:>4}: {rate:6.1f} req/s ({rate / ideal:.0%} of ideal "
              f"{ideal:.0f}/s), {rejected} x 429, final limit {limit}" + ("; target >= 90%" * (concurrency == "auto")))
    with OpenAIServer(delay=DELAY) as server:
        sequential, _ = run(server, 25, concurrency=1)
        concurrent, _ = run(server, 800, concurrency=16)
        _, paced = run(server, 61, concurrency=16, requests_per_minute=120)
    ideal_sequential, ideal = 1 / DELAY, 16 / DELAY
    print(f"concurrency 1 (baseline):  {sequential:6.1f} req/s  ({sequential / ideal_sequential:.0%} of ideal "
          f"{ideal_sequential:.0f}/s)")
    print(f"concurrency 16:            {concurrent:6.1f} req/s  ({concurrent / ideal:.0%} of ideal {ideal:.0f}/s, "
          f"{concurrent / sequential:.1f}x baseline; target >= 90%)")
    print(f"requests_per_minute 120:   {paced * 60:6.1f} req/min as the server sees them "
          f"({paced * 60 / 120 - 1:+.1%} from 120; target within 5%)")


if __name__ == "__main__":
    main()
