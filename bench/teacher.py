"""Teacher client throughput and rate limiting against a local OpenAI-compatible server.

    .venv/bin/python bench/teacher.py

The server (tests/openai_server.py, real HTTP on 127.0.0.1) answers every
request after 200 ms, so with 16 requests in flight the ideal is 80 requests/s.
Baseline, measured in the same run: the same client with one request in flight
(ideal 5/s). Targets: concurrency 16 reaches >= 90% of 80/s; with
requests_per_minute 120 the rate the server sees is within 5% of 2/s.
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from faqforge.teacher.client import Teacher  # noqa: E402
from openai_server import OpenAIServer  # noqa: E402

DELAY = 0.2


def run(server, n, **params):
    """Requests/s for n distinct requests (fresh cache), as the client measures it,
    and as the server sees it (first to last arrival)."""
    with tempfile.TemporaryDirectory() as cache:
        teacher = Teacher({"backend": "openai", "model": "bench", "base_url": server.base_url, "api_key_env": "NONE",
                           "max_tokens": 16, "timeout": 30, "max_retries": 0, **params}, cache_dir=cache)
        first = len(server.requests)
        start = time.monotonic()
        results = teacher.chat([[{"role": "user", "content": f"bench question {i} {time.time()}"}] for i in range(n)],
                               desc=f"{params}")
        elapsed = time.monotonic() - start
    assert all(r["text"] for r in results), "a request failed"
    arrivals = [r["time"] for r in server.requests[first:]]
    seen_rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return n / elapsed, seen_rate


def main():
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
