"""Which replica gets the next request, and how many may be in flight.

`teacher.base_url` may list several replicas of one model (vLLM servers on
several GPUs or machines): no load balancer to run. Each request goes to the
replica with the lowest expected wait, its requests in flight (against its
limit) weighed by how often it has failed lately, so a slow replica, which
holds its requests longer, and a flaky one get fewer. A replica failing
`EJECT_AFTER` requests in a row (dropped connections, time-outs, 5xx) is taken
out (in a fleet of two or more) for `COOLDOWN` seconds, doubling up to
`MAX_COOLDOWN` while it keeps failing, then given one request to prove itself
before it gets more.

How many requests a replica gets at once: a fixed `concurrency` shared by the
fleet, or `auto`, a limit per replica that adapts to what the server can take
(additive increase, multiplicative decrease, as TCP does): it grows by one per
reply (slow start) until the first sign of a full server, then by one per round
of replies (half that past where it was last cut), and only while the replica
has about as many in flight as its limit allows. A 429 or 503 (the server says
it is full) cuts it by `BACKOFF`, and so does a recent latency (a fast moving
average) above `LATENCY_TOLERANCE` times the long-run one (the server queues;
replies of different lengths average out). One signal per round trip: the
replies to requests sent before the last cut do not cut it again. A request the
server refuses (400, 401: the request's fault) says nothing about its load.
"""

import asyncio
import random
import time

EJECT_AFTER, COOLDOWN, MAX_COOLDOWN = 3, 5.0, 60.0
START_LIMIT, BACKOFF, LATENCY_TOLERANCE = 8, 0.9, 2.0
OVERLOAD_STATUS = {429, 503}


class Replica:
    """One server: its client, its requests in flight, its limit and its health."""

    def __init__(self, url, client, limit, adaptive, max_limit):
        self.url, self.client = url, client
        self.limit, self.adaptive, self.max_limit = float(limit), adaptive, max_limit
        self.in_flight = 0
        self.recent = self.usual = None   # fast and slow moving averages of the latency
        self.slow_start = adaptive
        self.last_cut = 0.0           # replies to requests sent before this do not cut again
        self.cut_at = None            # the limit when it was last cut
        self.failures_in_row, self.ejections, self.out_until = 0, 0, 0.0
        self.failure_rate = 0.0       # moving average of failed requests
        self.counts = {"requests": 0, "errors": 0, "overloaded": 0, "ejected": 0}
        self.can_eject = False        # only in a fleet: a lone server's failures are the retries' backoff to handle

    def available(self, now, fleet_full):
        if self.out_until > now:
            return False
        if self.ejections and self.failures_in_row:   # back from a time out: one request at a time
            return self.in_flight == 0
        return not fleet_full and self.in_flight < int(self.limit)

    def expected_wait(self):
        return (self.in_flight + 1) / self.limit / max(1.0 - self.failure_rate, 0.05)

    def record(self, sent_at, latency, outcome):
        """outcome: "ok", "refused" (a 4xx the request caused), "overloaded"
        (429/503) or "failed" (anything else retryable)."""
        if outcome == "refused":
            return
        self.failure_rate = 0.9 * self.failure_rate + 0.1 * (outcome == "failed")
        self.counts["errors"] += outcome != "ok"
        if outcome == "failed":
            self.failures_in_row += 1
            if self.can_eject and (self.failures_in_row >= EJECT_AFTER or self.ejections):
                self.ejections += 1
                self.counts["ejected"] += 1
                self.out_until = time.monotonic() + min(MAX_COOLDOWN, COOLDOWN * 2 ** (self.ejections - 1))
            return
        self.failures_in_row, self.ejections = 0, 0
        if outcome == "overloaded":
            self.counts["overloaded"] += 1
            self._cut(sent_at)
            return
        self.recent = latency if self.recent is None else 0.8 * self.recent + 0.2 * latency
        self.usual = latency if self.usual is None else 0.99 * self.usual + 0.01 * latency
        if not self.adaptive:
            return
        if self.recent > LATENCY_TOLERANCE * self.usual:
            self._cut(sent_at)
        elif self.in_flight + 1 < self.limit / 2:
            return   # the limit is not what holds requests back: no evidence it could be higher
        elif self.slow_start:
            self.limit = min(self.max_limit, self.limit + 1)
        else:   # one more per round trip back up to where it was cut, half that beyond
            step = 1.0 if self.cut_at is None or self.limit < self.cut_at else 0.5
            self.limit = min(self.max_limit, self.limit + step / self.limit)

    def _cut(self, sent_at):
        if self.adaptive and sent_at >= self.last_cut:
            self.cut_at = self.limit
            self.limit = max(1.0, self.limit * BACKOFF)
            self.slow_start = False
            self.last_cut = time.monotonic()


class Fleet:
    """The replicas and the waiting room for a free slot."""

    def __init__(self, replicas, concurrency):
        self.replicas = replicas
        for replica in replicas:
            replica.can_eject = len(replicas) > 1
        self.total_limit = None if concurrency == "auto" else int(concurrency)
        self.changed = asyncio.Condition()

    def _pick(self, avoid):
        now = time.monotonic()
        full = self.total_limit is not None and sum(r.in_flight for r in self.replicas) >= self.total_limit
        ready = [r for r in self.replicas if r.available(now, full)]
        if len(ready) > 1 and avoid in ready:
            ready.remove(avoid)   # a retry goes elsewhere when it can
        if not ready:
            return None
        best = min(r.expected_wait() for r in ready)
        return random.choice([r for r in ready if r.expected_wait() == best])

    def _next_return(self):
        waiting = [r.out_until for r in self.replicas if r.out_until > time.monotonic()]
        return max(0.01, min(waiting) - time.monotonic()) if waiting else None

    async def acquire(self, avoid=None):
        """A replica with a free slot (waiting for one), its slot taken."""
        async with self.changed:
            while (replica := self._pick(avoid)) is None:
                try:
                    await asyncio.wait_for(self.changed.wait(), self._next_return())
                except TimeoutError:
                    pass
            replica.in_flight += 1
            replica.counts["requests"] += 1
            return replica

    async def release(self, replica, sent_at, outcome):
        async with self.changed:
            replica.in_flight -= 1
            replica.record(sent_at, time.monotonic() - sent_at, outcome)
            # Wake as many waiters as there are free slots, not all of them: thousands
            # of requests may be waiting, and waking each on every reply costs O(n^2).
            free = sum(max(0, int(r.limit) - r.in_flight) for r in self.replicas)
            self.changed.notify(max(1, free))

    def stats(self):
        return {r.url: {**r.counts, "limit": round(r.limit, 1)} for r in self.replicas}


def replica_limits(concurrency, max_concurrency):
    """(starting limit, adaptive?, ceiling) of each replica for a `concurrency` setting."""
    if concurrency == "auto":
        return START_LIMIT, True, max_concurrency
    return int(concurrency), False, int(concurrency)
