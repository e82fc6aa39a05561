"""A fleet of teacher replicas and the adaptive concurrency, over real HTTP:
three local OpenAI-compatible servers, one failing half its requests, one slow."""

import json
import time

from faqforge.models.fleet import Fleet, Replica
from faqforge.teacher.client import Teacher
from tests.support.openai_server import OpenAIServer
from tests.support.sections import teacher_at


def conversations(n):
    return [[{"role": "user", "content": f"Write 1 question:\n\"\"\"Item {i} ships in {i % 7 + 1} days.\"\"\""}]
            for i in range(n)]


def answered(server):
    return [json.dumps(r["body"]["messages"]) for r in server.answered()]


def test_three_replicas_one_failing_half_one_slow_answer_everything_once(tmp_path):
    with OpenAIServer(delay=0.02) as good, \
            OpenAIServer(delay=0.02, fault_rate=0.5, fault_kinds=("500", "drop"), seed=3) as failing, \
            OpenAIServer(delay=0.4) as slow:
        servers = {"good": good, "failing": failing, "slow": slow}
        params = teacher_at(good, base_url=[s.base_url for s in servers.values()], max_retries=8,
                               concurrency="auto")
        teacher = Teacher(params, cache_dir=tmp_path)
        replies = teacher.chat(conversations(300))
        teacher.close()
    assert all(r["text"] and not r.get("error") for r in replies)
    # every request answered once: no answer lost, none answered twice (no hedged duplicates)
    everywhere = [m for s in servers.values() for m in answered(s)]
    assert len(everywhere) == len(set(everywhere)) == 300
    got = {name: len(s.requests) for name, s in servers.items()}
    kept = {name: len(s.answered()) for name, s in servers.items()}
    assert kept["failing"] < kept["good"] / 2, (got, kept)   # the load went away from the failing replica
    assert got["slow"] < got["good"] / 3, (got, kept)        # and from the slow one
    replicas = teacher.stats["replicas"]
    assert replicas[failing.base_url]["errors"] == len(failing.requests) - kept["failing"] > 0
    assert replicas[failing.base_url]["ejected"] >= 1
    assert replicas[good.base_url]["errors"] == 0
    assert teacher.stats["calls"] == 300 and teacher.stats["errors"] == 0


def test_a_replica_taken_out_gets_one_request_to_prove_itself_then_its_share_back():
    """The state machine on its own: three failures in a row take a replica out;
    after the cool-down it may hold one request; a success gives it its limit back."""
    replicas = [Replica(url, None, 4, False, 4) for url in ("a", "b")]
    fleet = Fleet(replicas, 8)
    a, b = replicas
    for _ in range(3):
        a.record(0.0, 0.01, "failed")
    assert a.out_until > 0 and not a.available(a.out_until - 1, False) and fleet._pick(None) is b
    a.out_until = 0.0   # the cool-down is over
    assert a.available(0.0, False)
    a.in_flight = 1
    assert not a.available(0.0, False)   # on probation: one at a time
    a.in_flight = 0
    a.record(0.0, 0.01, "ok")
    a.in_flight = 3
    assert a.available(0.0, False) and a.ejections == 0


def test_adaptive_concurrency_backs_off_on_429_and_settles_near_capacity(tmp_path):
    """A server answering at most 6 at once (429 beyond, Retry-After 0.05 s):
    starting at 8 and growing, the limit comes down to about the capacity, every
    request is answered, and 429s stay a small share of the traffic."""
    with OpenAIServer(delay=0.1, capacity=6, retry_after=0.05) as server:
        teacher = Teacher(teacher_at(server, concurrency="auto", max_retries=20), cache_dir=tmp_path)
        replies = teacher.chat(conversations(400))
        teacher.close()
    assert all(r["text"] for r in replies) and len(server.answered()) == 400
    limit = teacher.stats["replicas"][server.base_url]["limit"]
    rejected = sum(r["fault"] == "429" for r in server.requests)
    assert 4 <= limit <= 9, limit
    assert rejected < 0.25 * 400, rejected
    assert teacher.stats["replicas"][server.base_url]["overloaded"] == rejected


def test_the_limit_reads_queueing_not_refusals_or_replies_of_different_lengths():
    """Fast 400s (the request's fault) say nothing of the load; replies of mixed
    lengths (0.1 s and 0.3 s) do not look like a queue; latency that climbs does."""
    replica = Replica("a", None, 8, True, 256)
    replica.in_flight = 8
    for _ in range(20):
        replica.record(time.monotonic(), 0.002, "refused")
    for k in range(200):
        replica.record(time.monotonic(), 0.1 if k % 2 else 0.3, "ok")
    grown = replica.limit
    assert grown > 8 and replica.slow_start and replica.cut_at is None
    for k in range(20):
        replica.record(time.monotonic(), 0.2 * (2 + k / 4), "ok")   # from 0.4 s to 1.35 s: a queue builds
    assert replica.cut_at is not None and replica.limit < replica.cut_at <= grown + 20
