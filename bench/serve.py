"""Load on `faqforge serve`: concurrent streaming clients for a fixed time against
the embedded model on 127.0.0.1, against one client alone in the same run.

    .venv/bin/python -m bench.serve [seconds per phase] [clients below the limit] [clients above it]

First the same model answers the same requests in this process, one after
another, with generate_chat (the library's own path, no HTTP): the floor for
one client. Then it starts `python -m faqforge serve` (the embedded
SmolLM2-135M-Instruct, closed book, --max-concurrent 16, batches of 8) and runs
three phases, each client a
loop of streamed requests (the eval set's questions, 48 tokens each, with
usage) through the official openai SDK, without retries:
  alone   one client: the baseline
  below   N clients, fewer than the limit: every request must succeed
  above   M clients, more than the limit: the excess must get clean 503s with
          Retry-After, nothing else
Prints requests completed, errors by kind, p50/p99 latency and time to first
token, completion tokens per second, and the throughput against one client.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 16


async def client(aclient, questions, until, k, record):
    n = k
    while time.monotonic() < until:
        question = questions[n % len(questions)]
        n += 1
        start = time.monotonic()
        first = None
        try:
            stream = await aclient.chat.completions.create(
                model="base", messages=[{"role": "user", "content": question}], max_tokens=48, temperature=0,
                stream=True, stream_options={"include_usage": True})
            tokens = 0
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.monotonic() - start
                if chunk.usage:
                    tokens = chunk.usage.completion_tokens
            record.append({"ok": True, "latency": time.monotonic() - start, "ttft": first or 0.0, "tokens": tokens})
        except openai.APIStatusError as e:
            retry_after = e.response.headers.get("retry-after")
            record.append({"ok": False, "error": f"{e.status_code}" + (" with Retry-After" if retry_after else "")})
            await asyncio.sleep(float(retry_after or 1))  # as the SDK's own retry would
        except openai.OpenAIError as e:
            record.append({"ok": False, "error": type(e).__name__})


async def phase(url, questions, clients, seconds):
    record = []
    async with openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0, timeout=120) as aclient:
        start = time.monotonic()
        await asyncio.gather(*[client(aclient, questions, start + seconds, k, record) for k in range(clients)])
        wall = time.monotonic() - start
    done = [r for r in record if r["ok"]]
    errors = {}
    for r in record:
        if not r["ok"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    latencies = sorted(r["latency"] for r in done)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"clients": clients, "completed": len(done), "errors": errors, "p50_s": round(q[49], 2),
            "p99_s": round(q[98], 2), "ttft_p50_s": round(statistics.median(r["ttft"] for r in done), 2),
            "tokens_per_s": round(sum(r["tokens"] for r in done) / wall, 1), "wall_s": round(wall, 1)}


def in_process(questions, seconds):
    """Tokens per second of generate_chat answering one request at a time, greedy, 48 tokens."""
    from faqforge.models.checkpoints import load_model
    from faqforge.models.decoding import generate_chat
    from faqforge.models.sampling import Sampling
    model, tokenizer = load_model("embedded:smollm2-135m-instruct")
    tokens, n, start = 0, 0, time.monotonic()
    while time.monotonic() - start < seconds:
        [reply] = generate_chat(model, tokenizer, [[{"role": "user", "content": questions[n % len(questions)]}]],
                                Sampling(max_tokens=48))
        tokens, n = tokens + reply["completion_tokens"], n + 1
    wall = time.monotonic() - start
    return {"completed": n, "tokens_per_s": round(tokens / wall, 1), "wall_s": round(wall, 1)}


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30
    below = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    above = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    questions = [item["question"] for item in json.loads((ROOT / "data/eval/evalset.json").read_text())]
    floor = in_process(questions, seconds)
    print(f"in-process: {floor['completed']} requests in {floor['wall_s']} s, {floor['tokens_per_s']} tokens/s "
          "(generate_chat, one at a time)", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "FAQFORGE_SERVE_KEY"}
    server = subprocess.Popen(
        [sys.executable, "-m", "faqforge", "serve", "--model", "embedded:smollm2-135m-instruct", "--lora-modules",
         "--passages", "0", "--port", "0", "--max-concurrent", str(LIMIT), "--batch-size", "8",
         "--log-level", "warning"], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = server.stdout.readline().split(" on ")[1].strip()
        results = {}
        for name, clients in (("alone", 1), ("below", below), ("above", above)):
            results[name] = asyncio.run(phase(url, questions, clients, seconds))
            r = results[name]
            ratio = r["tokens_per_s"] / results["alone"]["tokens_per_s"]
            print(f"{name:>10}: {clients:>2} clients, {r['completed']} requests in {r['wall_s']} s, errors "
                  f"{r['errors'] or 0}; latency p50 {r['p50_s']} s, p99 {r['p99_s']} s, first token p50 "
                  f"{r['ttft_p50_s']} s; {r['tokens_per_s']} tokens/s = {ratio:.2f}x one client, "
                  f"{r['tokens_per_s'] / floor['tokens_per_s']:.2f}x in-process", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    below_clean = not results["below"]["errors"]
    above_clean = set(results["above"]["errors"]) <= {"503 with Retry-After"}
    print(f"below the limit ({LIMIT}): {'no errors' if below_clean else 'ERRORS'}; above it: "
          f"{'only 503 with Retry-After' if above_clean else 'OTHER ERRORS'}")
    return 0 if below_clean and above_clean else 1


if __name__ == "__main__":
    sys.exit(main())
