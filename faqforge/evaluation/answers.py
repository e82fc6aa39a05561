"""The students' answers to the eval set, per arm: in-process (cached by
content, so a rerun that changes no input generates nothing) or from an
OpenAI-compatible server that serves the base model and the adapter by name."""

import torch

from faqforge.core.chat_format import question_messages
from faqforge.core.io import PipelineError
from faqforge.evaluation.scores import MODEL_ARMS
from faqforge.models.cache import ResponseCache
from faqforge.models.checkpoints import answering_dtype
from faqforge.models.completion import Cached
from faqforge.models.local import local_models
from faqforge.models.openai_client import OpenAIClient
from faqforge.models.sampling import Sampling


def decoding(params):
    """The students' sampling settings, from the evaluate section."""
    return Sampling(max_tokens=params.max_new_tokens, temperature=params.temperature, seed=params.seed,
                    stop=tuple(params.stop))


def local_answers(arm_chats, params, base="models/base", trained="models/adapter", cache_dir=None, dtype="auto"):
    """({arm: replies}, stats) from the students in-process, in batches: an arm
    name starting with base_ answers with the base (any adapter switched off),
    tuned_ with the trained student. With `cache_dir` each answer is kept under a
    hash of the checkpoint's files, the prompt and the decoding settings, so a rerun
    that changes none of them (a report change, a forced rerun) generates nothing
    and loads no model; `stats` counts answers, cache hits and the tokens generated."""
    sampling = decoding(params)
    models = local_models(base, {"tuned": trained}, dtype=dtype, batch_size=params.batch_size)
    precision = answering_dtype(dtype)[0]
    # Half precision answers differently: kept apart in the cache.
    suffix = "" if precision == torch.float32 else " " + str(precision).removeprefix("torch.")
    cache = ResponseCache(cache_dir) if cache_dir else None
    replies, stats = {}, {"answers": 0, "generated": 0, "generated_tokens": 0, "cache_hits": 0}
    for arm, chats in arm_chats.items():
        model = models[arm.split("_")[0]]
        completer = Cached(model, f"student:{model.fingerprint()}{suffix}", cache) if cache else model
        answers = replies[arm] = [None] * len(chats)
        completer.complete([(chat, sampling) for chat in chats], f"{arm} answers", answers.__setitem__)
        for answer in answers:
            stats["answers"] += 1
            if answer.get("cached"):
                stats["cache_hits"] += 1
            else:
                stats["generated"] += 1
                stats["generated_tokens"] += answer["completion_tokens"]
    if cache:
        cache.close()
    return replies, stats


def served_answers(arm_chats, params):
    """{arm: replies} from the models an OpenAI-compatible server serves
    under `served.base_model` and `served.tuned_model`, with the same decoding
    as in-process, through evaluate.served's own transport (its concurrency,
    time-out and retries). Not cached: a server can serve a new adapter under the
    same name. Any failed request stops the evaluation rather than score a gap."""
    served = params.served
    sampling = decoding(params)
    replies = {}
    for arm, chats in arm_chats.items():
        name = served.tuned_model if arm.startswith("tuned") else served.base_model
        client = OpenAIClient(name, served.transport(), endpoint="evaluate.served")
        answers = [None] * len(chats)
        client.complete([(chat, sampling) for chat in chats], f"{arm} answers ({name})", answers.__setitem__)
        failed = [r for r in answers if r.get("error")]
        if failed:
            raise PipelineError(f"params.yaml: evaluate.served: {len(failed)} of {len(chats)} requests to "
                                f"{served.base_url} for model {name!r} failed ({failed[0]['error']}: "
                                f"{failed[0].get('message')}); check the server and the model names it "
                                "serves (GET /v1/models).")
        replies[arm] = answers
    return replies


def arm_chats(questions, hits, system_prompt, closed_book=True):
    """{arm: chats}: every question in the student's chat layout with its retrieved passages, and
    with `closed_book` also without them (the base_closed and tuned_closed arms)."""
    return {arm: [question_messages(q, system_prompt, h if arm.endswith("_rag") else None)
                  for q, h in zip(questions, hits)] for arm in MODEL_ARMS if closed_book or arm.endswith("_rag")}


def student_names(served):
    """What answered as base and tuned, for metrics/eval.json."""
    if served.base_url:
        return {"base": f"{served.base_model} at {served.base_url}",
                "tuned": f"{served.tuned_model} at {served.base_url}"}
    return {"base": "models/base", "tuned": "models/adapter"}
