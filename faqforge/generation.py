"""Batched chat generation with a local model: the local teacher backend, the
evaluator and `serve` all answer through `generate_chat`.

Replies can be guided to a JSON schema (faqforge.guided) and can carry per-token
log-probabilities in the OpenAI API's shape.
"""

import math

import torch
from tqdm import tqdm

from faqforge.guided import JsonSchemaGuide, string_array_shape
from faqforge.models import chat_prompt


@torch.inference_mode()
def generate_chat(model, tokenizer, conversations, max_new_tokens=256, temperature=0.0,
                  top_p=1.0, batch_size=8, seed=0, desc="generating", schemas=None, no_repeat_ngram=0, top_logprobs=None,
                  on_result=None, static_cache=True):
    """Answer each conversation (a list of chat messages); returns one dict per input.

    Conversations are sorted by prompt length and batched with left padding, so a
    batch wastes little compute on padding. Greedy when temperature is 0.
    `schemas` (one JSON schema or None per conversation) guides those replies
    to valid JSON of that shape (faqforge.guided).
    Each result has `text`, `prompt_tokens`, `completion_tokens`, `finish_reason`,
    and with `top_logprobs=k` also `logprobs`: per reply token its text, log-probability
    and the k most likely tokens with theirs (the OpenAI API's shape).
    `on_result(i, result)` is called as each batch finishes, so a caller can keep
    what is done before the whole list is.
    With `static_cache` (and a model that supports it) the key/value cache is
    allocated once per batch for the prompt plus `max_new_tokens`, instead of
    transformers' default cache, which grows by concatenation and copies itself
    at every step: the same tokens, decoding about a fifth faster here
    (bench/generation.py). Not compiled: a batch's shapes change with its prompts.
    """
    shapes = [string_array_shape(s) if s is not None else None for s in (schemas or [None] * len(conversations))]
    prompts = [chat_prompt(tokenizer, messages) for messages in conversations]
    lengths = [len(tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    results = [None] * len(prompts)
    tokenizer.padding_side = "left"
    sampling = {"do_sample": False}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
    torch.manual_seed(seed)
    stop_ids = {tokenizer.eos_token_id, *_stop_ids(model)}
    if static_cache and getattr(model, "_can_compile_fullgraph", False):  # the models with a static cache
        sampling.update(cache_implementation="static", disable_compile=True)
    n_batches = math.ceil(len(order) / batch_size)
    for b in tqdm(range(n_batches), desc=desc, unit="batch", disable=n_batches < 2):
        idx = order[b * batch_size:(b + 1) * batch_size]
        batch = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                          add_special_tokens=False)
        processors = []
        if any(shapes[i] for i in idx):
            processors.append(JsonSchemaGuide(tokenizer, model.config.vocab_size, [shapes[i] for i in idx],
                                              stop_id=tokenizer.eos_token_id, no_repeat_ngram=no_repeat_ngram))
        recorder = LogprobRecorder(top_logprobs) if top_logprobs else None
        if recorder:
            processors.append(recorder)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             logits_processor=processors, **sampling)
        new_tokens = out[:, batch.input_ids.shape[1]:]
        for row, i in enumerate(idx):
            ids = new_tokens[row].tolist()
            stopped = not stop_ids.isdisjoint(ids)
            kept = [t for t in ids if t != tokenizer.pad_token_id]
            text = tokenizer.decode(kept, skip_special_tokens=True).strip()
            results[i] = {"text": text, "prompt_tokens": lengths[i], "completion_tokens": len(kept),
                          "finish_reason": "stop" if stopped else "length"}
            if recorder:
                results[i]["logprobs"] = recorder.tokens(row, ids, tokenizer, stop_ids | {tokenizer.pad_token_id})
            if on_result:
                on_result(i, results[i])
    return results


class LogprobRecorder:
    """A logits processor that changes nothing and keeps, for every step, the
    top-k log-probabilities and the log-probability of the token then chosen."""

    def __init__(self, k):
        self.k = k
        self.steps = []      # [top ids, top logprobs, chosen logprob per row] per step
        self.last = None     # the latest step's full distribution

    def __call__(self, input_ids, scores):
        if self.last is not None:
            self.steps[-1][2] = self.last.gather(1, input_ids[:, -1:]).squeeze(1).tolist()
        self.last = torch.log_softmax(scores.float(), dim=-1)
        top = self.last.topk(self.k, dim=-1)
        self.steps.append([top.indices.tolist(), top.values.tolist(), None])
        return scores

    def tokens(self, row, ids, tokenizer, stop_ids):
        out = []
        for step, token_id in enumerate(ids):
            if token_id in stop_ids or step >= len(self.steps):
                break
            top_ids, top_values, chosen = self.steps[step]
            logprob = chosen[row] if chosen is not None else float(self.last[row, token_id])
            out.append({"token": tokenizer.decode([token_id]), "logprob": logprob,
                        "top": {tokenizer.decode([t]): v for t, v in zip(top_ids[row], top_values[row])}})
        return out


def _stop_ids(model):
    eos = model.generation_config.eos_token_id
    if eos is None:
        return []
    return eos if isinstance(eos, list) else [eos]
