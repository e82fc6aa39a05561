"""Where every completion comes from: three parts that compose behind one small
protocol.

    LocalModel    (faqforge.models.local)          a checkpoint in this process, batched
    OpenAIClient  (faqforge.models.openai_client)  an OpenAI-compatible server or a fleet of them
    Cached        (here)                           the content cache in front of either

A completer answers a batch: `complete(requests, desc, finished, budget=None)`
with `requests` a list of (messages, Sampling) and `finished(k, reply)` called as
each reply is ready, in any order. A reply is a dict with `text`,
`prompt_tokens`, `completion_tokens`, `finish_reason` (and `logprobs` when
asked), or an error record (`text` None, `error`, `message`). A streamer answers
one conversation piece by piece: `stream(messages, sampling)` yields text
(LocalModel, faqforge.models.served.Server).
"""

from typing import Protocol

from faqforge.models.cache import ResponseCache, request_key


class Completer(Protocol):
    def complete(self, requests, desc, finished, budget=None): ...


class Streamer(Protocol):
    def stream(self, messages, sampling): ...


class Cached:
    """A completer behind the content cache: each request is kept under a hash of
    `model_id`, its messages and its sampling settings, with the request it answers
    (for auditing); a request answered before is not sent again, failed ones are not
    kept. `lookup` and `put` serve a caller that sends the rest itself (the teacher's
    streaming map); `complete` does both around `inner`."""

    def __init__(self, inner, model_id, cache):
        """`cache`: a ResponseCache, or the directory of one."""
        self.inner, self.model_id = inner, model_id
        self.cache = cache if isinstance(cache, ResponseCache) else ResponseCache(cache)

    def key(self, messages, sampling):
        return request_key(self.model_id, messages, sampling.key())

    def lookup(self, keys):
        """The cached reply (marked `cached`) or None, per key."""
        found = self.cache.get_many(keys)
        for reply in found:
            if reply is not None:
                reply.pop("request", None)
                reply["cached"] = True
        return found

    def put(self, key, request, reply, replace=False):
        """Keep a fresh reply to the (messages, Sampling) `request`, unless it failed;
        `replace`: a reply that rewrites the one kept under `key`."""
        if reply.get("error"):
            return
        messages, sampling = request
        entry = {**reply, "request": {"model": self.model_id, "messages": messages, "sampling": sampling.key()}}
        (self.cache.replace if replace else self.cache.put)(key, entry)

    def complete(self, requests, desc, finished, budget=None):
        keys = [self.key(*request) for request in requests]
        todo = []
        for k, reply in enumerate(self.lookup(keys)):
            if reply is None:
                todo.append(k)
            else:
                finished(k, reply)
        if not todo:
            return

        def fresh(j, reply):
            k = todo[j]
            self.put(keys[k], requests[k], reply)
            finished(k, {**reply, "cached": False})
        self.inner.complete([requests[k] for k in todo], desc, fresh, budget=budget)

    def close(self):
        """Seal this run's cache segment (also done at exit)."""
        self.cache.close()
