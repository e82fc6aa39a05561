"""The students' answers to the eval set, per arm: in-process (cached by
content, so a rerun that changes no input generates nothing) or from an
OpenAI-compatible server that serves the base model and the adapter by name."""

import contextlib
from pathlib import Path

import torch

from faqforge.core.chat_format import question_messages
from faqforge.core.config import checked
from faqforge.core.io import PipelineError
from faqforge.evaluation.scores import MODEL_ARMS
from faqforge.models.checkpoints import answering_dtype, checkpoint_fingerprint, load_model
from faqforge.models.decoding import generate_chat
from faqforge.teacher.cache import ResponseCache, request_key
from faqforge.teacher.transport import OpenAITransport


def load_students(base="models/base", trained="models/adapter", dtype="auto"):
    """{"base": model, "tuned": model}, tokenizer: one model with the adapter
    switched off and on (LoRA), or two models (a full fine-tune)."""
    if (Path(trained) / "adapter_config.json").exists():
        model, tokenizer = load_model(base, adapter=trained, dtype=dtype)
        return {"base": model, "tuned": model}, tokenizer
    tuned, tokenizer = load_model(trained, dtype=dtype)
    return {"base": load_model(base, dtype=dtype)[0], "tuned": tuned}, tokenizer


def local_answers(arm_chats, params, base="models/base", trained="models/adapter", cache_dir=None, dtype="auto"):
    """({arm: replies}, stats) from the students in-process, in batches; an arm
    name starting with base_ answers with the adapter disabled. With `cache_dir`
    each answer is kept under a hash of the checkpoint's files, the prompt and the
    decoding settings, so a rerun that changes none of them (a report change, a
    forced rerun) generates nothing and loads no model; `stats` counts answers,
    cache hits and the tokens generated."""
    settings = {"max_new_tokens": params["max_new_tokens"], "temperature": params["temperature"],
                "seed": params["seed"]}
    keyed = dict(settings)
    precision = answering_dtype(dtype)[0]
    if precision != torch.float32:   # half precision answers differently: kept apart in the cache
        keyed["dtype"] = str(precision).removeprefix("torch.")
    adapter = (Path(trained) / "adapter_config.json").exists()
    fingerprints = {"base": checkpoint_fingerprint(base)}
    fingerprints["tuned"] = (fingerprints["base"] + "+" if adapter else "") + checkpoint_fingerprint(trained)
    cache = ResponseCache(cache_dir) if cache_dir else None
    replies, keys, missing = {}, {}, {}
    for arm, chats in arm_chats.items():
        model_id = f"student:{fingerprints[arm.split('_')[0]]}"
        keys[arm] = [request_key(model_id, chat, keyed) for chat in chats]
        replies[arm] = [cache.get(key) if cache else None for key in keys[arm]]
        for reply in replies[arm]:
            if reply:
                reply.pop("request", None)
        missing[arm] = [i for i, reply in enumerate(replies[arm]) if reply is None]
    stats = {"answers": sum(len(c) for c in arm_chats.values()), "generated": sum(len(m) for m in missing.values()),
             "generated_tokens": 0}
    stats["cache_hits"] = stats["answers"] - stats["generated"]
    if not stats["generated"]:
        return replies, stats
    models, tokenizer = load_students(base, trained, dtype)
    for arm, todo in missing.items():
        if not todo:
            continue
        side = arm.split("_")[0]
        model = models[side]
        shared = side == "base" and models["base"] is models["tuned"]
        with model.disable_adapter() if shared else contextlib.nullcontext():
            answers = generate_chat(model, tokenizer, [arm_chats[arm][i] for i in todo], desc=f"{arm} answers",
                                    batch_size=params["batch_size"], **settings)
        for i, answer in zip(todo, answers):
            replies[arm][i] = answer
            stats["generated_tokens"] += answer["completion_tokens"]
            if cache:   # with the request it answers, as the teacher's entries, for auditing
                request = {"model": f"student:{fingerprints[side]}", "messages": arm_chats[arm][i],
                           "sampling": keyed}
                cache.put(keys[arm][i], {**answer, "request": request})
    if cache:
        cache.close()
    return replies, stats


def served_answers(arm_chats, params, teacher_params):
    """{arm: replies} from the models an OpenAI-compatible server serves
    under `served.base_model` and `served.tuned_model`, with the same decoding
    as in-process, through the teacher's transport (its concurrency, time-out
    and retries). Not cached: a server can serve a new adapter under the same
    name. Any failed request stops the evaluation rather than score a gap."""
    served = params["served"]
    sampling = {"temperature": params["temperature"], "top_p": 1.0, "max_tokens": params["max_new_tokens"],
                "seed": params["seed"]}
    replies = {}
    for arm, chats in arm_chats.items():
        name = served[f"{arm.split('_')[0]}_model"]
        transport = OpenAITransport(name, {**checked("teacher", teacher_params), "base_url": served["base_url"],
                                           "api_key_env": served["api_key_env"]}, endpoint="evaluate.served")
        answers = [None] * len(chats)
        transport.answer([(chat, sampling) for chat in chats], f"{arm} answers ({name})", answers.__setitem__)
        failed = [r for r in answers if r.get("error")]
        if failed:
            raise PipelineError(f"params.yaml: evaluate.served: {len(failed)} of {len(chats)} requests to "
                                f"{served['base_url']} for model {name!r} failed ({failed[0]['error']}: "
                                f"{failed[0].get('message')}); check the server and the model names it "
                                "serves (GET /v1/models).")
        replies[arm] = answers
    return replies


def arm_chats(questions, hits, system_prompt):
    """{arm: chats}: every question in the student's chat layout, closed book or with its retrieved passages."""
    return {arm: [question_messages(q, system_prompt, h if arm.endswith("_rag") else None)
                  for q, h in zip(questions, hits)] for arm in MODEL_ARMS}


def student_names(served):
    """What answered as base and tuned, for metrics/eval.json."""
    if served["base_url"]:
        return {side: f"{served[side + '_model']} at {served['base_url']}" for side in ("base", "tuned")}
    return {"base": "models/base", "tuned": "models/adapter"}
