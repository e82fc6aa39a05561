"""`teacher.engine: ray`: the requests a stage has not answered yet, sent by a
Ray Data job, when one machine's client is not enough.

The stage's Teacher.map first reads its input once, answering what the cache
holds and writing every other request to a spool; the spool goes to Ray in
shards (`ray_shard` requests: the driver never holds more), each a
`ray.data.from_items(...).map_batches(RayAnswerer, concurrency=ray_actors)`
whose actors send their batches through the project's own transport
(faqforge.models.openai_client: retries, rate limits, the replica fleet, adaptive
concurrency). The answers come back to the driver, which accounts for and
caches each one exactly as the in-process engine does (Teacher.record): one
writer, the same cache, the same metrics. Then the stage reads its input again,
every answer now in the cache, so what it writes and `dvc repro` do not change.

`ray.init()` joins the cluster named by RAY_ADDRESS, or starts a local Ray
instance. On GPU nodes where vLLM is installed, `ray.data.llm`'s vLLM engine
processor can answer the same shards without a server (docs/guide.md).
"""

import itertools
import json
import pickle
import tempfile
import time

from faqforge.core.io import PipelineError
from faqforge.models.sampling import Sampling

BATCH = 64   # requests an actor sends together (its transport keeps them in flight at once)


class RayAnswerer:
    """A Ray Data actor: answers batches of requests through an OpenAIClient."""

    def __init__(self, model, transport):
        from faqforge.models.openai_client import OpenAIClient
        self.client = OpenAIClient(model, transport)

    def __call__(self, batch):
        requests = [(json.loads(m), Sampling.from_key(json.loads(s))) for m, s in zip(batch["messages"],
                                                                                     batch["sampling"])]
        replies = [None] * len(requests)
        self.client.complete(requests, "ray", replies.__setitem__)
        return {"key": list(batch["key"]), "messages": list(batch["messages"]), "sampling": list(batch["sampling"]),
                "reply": [json.dumps(r, ensure_ascii=False) for r in replies]}


def vllm_row(row):
    """A pending request as ray.data.llm's vLLM processor reads it: the chat and the
    engine's sampling parameters (a response_format's schema as guided JSON)."""
    sampling = Sampling.from_key(json.loads(row["sampling"]))
    return {**row, "messages": json.loads(row["messages"]), "sampling_params": sampling.to_vllm()}


def vllm_reply(row):
    """The processor's output row as the transport's reply record."""
    reply = {"text": (row.get("generated_text") or "").strip(), "prompt_tokens": int(row.get("num_input_tokens") or 0),
             "completion_tokens": int(row.get("num_generated_tokens") or 0), "finish_reason": "stop"}
    return {"key": row["key"], "messages": json.dumps(row["messages"], ensure_ascii=False),
            "sampling": row["sampling"], "reply": json.dumps(reply, ensure_ascii=False)}


def vllm_processor(model, actors):
    """backend local with engine ray: ray.data.llm's vLLM engine, `actors` replicas
    of `model` on the cluster's GPUs (needs vLLM installed there; no server to run)."""
    from ray.data.llm import build_llm_processor, vLLMEngineProcessorConfig
    config = vLLMEngineProcessorConfig(model_source=model, concurrency=actors, batch_size=BATCH,
                                       engine_kwargs={"enable_prefix_caching": True})
    return build_llm_processor(config, preprocess=vllm_row, postprocess=vllm_reply)


def answer_pending(pending, model, transport, actors, shard, on_reply, stop=None):
    """Answer every (key, messages, sampling) of the iterable `pending` on Ray,
    `shard` requests at a time, calling `on_reply(key, request, reply)` in the driver as
    the answers come back; `stop()` (a spent budget) ends it between shards. With
    `transport` None (backend local) the model runs in vLLM engines on the
    cluster (vllm_processor), else each actor sends through the transport.
    Returns how many requests were sent."""
    try:
        import ray
    except ImportError:
        raise PipelineError("params.yaml: teacher.engine is ray but ray is not installed; "
                            "`pip install 'ray[data]==2.60.0'` (or `make setup`), or set teacher.engine: process.") \
            from None
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    sent = 0
    pending = iter(pending)
    while rows := [{"key": k, "messages": json.dumps(m, ensure_ascii=False), "sampling": json.dumps(
            s.key(), ensure_ascii=False)} for k, m, s in itertools.islice(pending, shard)]:
        if stop and stop():
            break
        dataset = ray.data.from_items(rows)
        if transport is None:
            answered = vllm_processor(model, actors)(dataset)
        else:
            answered = dataset.map_batches(RayAnswerer, fn_constructor_args=(model, transport),
                                           batch_size=BATCH, concurrency=actors, batch_format="default")
        for batch in answered.iter_batches(batch_size=BATCH, batch_format="default"):
            for key, messages, sampling, reply in zip(batch["key"], batch["messages"], batch["sampling"],
                                                      batch["reply"]):
                request = json.loads(messages), Sampling.from_key(json.loads(sampling))
                on_reply(str(key), request, json.loads(reply))
        sent += len(rows)
    return sent


def map_on_ray(teacher, items, request, desc, lookup):
    """Teacher.map's two passes with engine ray: the input spooled to disk while the
    cache answers what it can, the rest answered on Ray into the cache, then the
    input again with every reply (see the module's docstring); `lookup` items are
    looked up in the cache at once."""
    failed = {}   # key -> error record of a request that failed (not cached, as in-process)

    def answered(key, req, reply):
        if reply.get("error"):
            failed[key] = reply
        teacher.record(key, req, reply)

    with tempfile.TemporaryFile() as spool, tempfile.TemporaryFile() as pending:
        asked = 0
        while batch := list(itertools.islice(items, lookup)):
            for item, (key, req, hit) in zip(batch, teacher.lookup(batch, request)):
                pickle.dump(item, spool)
                if req is not None and hit is None:
                    pickle.dump((key, *req), pending)
                    asked += 1
        if asked:
            pending.seek(0)
            budget = teacher.budget
            print(f"{desc}: {asked} requests to answer on Ray", flush=True)
            params = teacher.params
            local = params.backend == "local"   # the in-process backend: vLLM engines on Ray
            start = time.monotonic()
            answer_pending(_unpickled(pending), params.model, None if local else params,
                           params.ray_actors, params.ray_shard, answered,
                           stop=lambda: budget.limit is not None and teacher.cost_usd >= budget.limit)
            teacher.wall_seconds += time.monotonic() - start
        spool.seek(0)
        items = _unpickled(spool)
        while batch := list(itertools.islice(items, lookup)):
            for item, (key, req, hit) in zip(batch, teacher.lookup(batch, request, count=False)):
                if req is not None and hit is None:
                    hit = failed.get(key) or teacher.budget.refusal()
                    if key not in failed:   # not sent: the budget was spent
                        teacher.record(key, req, hit)
                yield item, hit


def _unpickled(f):
    while True:
        try:
            yield pickle.load(f)
        except EOFError:
            return
