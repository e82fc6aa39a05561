"""Batched chat generation with a local model: every in-process answer (the
local teacher, the evaluation's students, chat and serve, through
faqforge.models.local) comes from `generate_chat`.

Replies can be guided to a JSON schema (faqforge.models.guided) and can carry per-token
log-probabilities in the OpenAI API's shape.
"""

import math

import torch
from tqdm import tqdm
from transformers import DynamicCache, StaticCache, StoppingCriteria, StoppingCriteriaList
from transformers.cache_utils import DynamicLayer
from transformers.generation.streamers import BaseStreamer

from faqforge.models.checkpoints import chat_prompt
from faqforge.models.guided import JsonSchemaGuide, string_array_shape
from faqforge.models.sampling import Sampling

GREEDY = Sampling()
# Below this many shared prompt tokens a batch is read in whole: the saving would not pay for the extra pass.
MIN_SHARED_PREFIX = 16


@torch.inference_mode()
def generate_chat(model, tokenizer, conversations, sampling=GREEDY, batch_size=8, desc="generating",
                  schemas=None, on_result=None, static_cache=True, shared_prefix=True, on_token=None,
                  should_stop=None, return_token_ids=False):
    """Answer each conversation (a list of chat messages) with the decoding settings
    `sampling` (its response_format aside); returns one dict per input.

    Conversations are sorted by prompt length and batched with left padding, so a
    batch wastes little compute on padding. Greedy when temperature is 0.
    `schemas` (one JSON schema or None per conversation) guides those replies
    to valid JSON of that shape (faqforge.models.guided).
    Each result has `text`, `prompt_tokens`, `completion_tokens`, `finish_reason`,
    and with `sampling.top_logprobs` k also `logprobs`: per reply token its text, log-probability
    and the k most likely tokens with theirs (the OpenAI API's shape).
    `on_result(i, result)` is called as each batch finishes, so a caller can keep
    what is done before the whole list is.
    With `static_cache` (and a model that supports it) the key/value cache is
    allocated once per batch for the prompt plus `max_new_tokens`, instead of
    transformers' default cache, which grows by concatenation and copies itself
    at every step: the same tokens, decoding about a fifth faster here
    (bench/generation.py). Not compiled: a batch's shapes change with its prompts.
    With `shared_prefix`, the tokens every prompt of a batch starts with (a
    teacher stage's system prompt and worked examples) are read in once and
    their keys and values copied to every row, instead of once per row: each row
    is laid out as [shared prefix | padding | its own tokens], the padding masked
    and the positions counted from the mask, so each row still reads its own
    prompt token for token (bench/generation.py).
    `on_token(i, token_id)` is called for each new token of conversation i as it
    is chosen (streaming), and `should_stop(i)`, checked every step, ends
    conversation i early (a client gone, a deadline passed) while the rest of its
    batch goes on. With `return_token_ids` each result also has
    `prompt_token_ids` and `token_ids`, the ids the model read and wrote.
    """
    shapes = [string_array_shape(s) if s is not None else None for s in (schemas or [None] * len(conversations))]
    prompts = [chat_prompt(tokenizer, messages) for messages in conversations]
    token_ids = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    lengths = [len(ids) for ids in token_ids]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    results = [None] * len(prompts)
    max_new_tokens, top_logprobs = sampling.max_tokens, sampling.top_logprobs
    decoding = sampling.to_transformers()
    if sampling.stop:
        decoding["tokenizer"] = tokenizer   # what stop strings are matched in
    torch.manual_seed(sampling.seed)
    stop_ids = {tokenizer.eos_token_id, *_stop_ids(model)}
    static = static_cache and getattr(model, "_can_compile_fullgraph", False)  # the models with a static cache
    share = shared_prefix and _plain_attention_cache(model)
    n_batches = math.ceil(len(order) / batch_size)
    for b in tqdm(range(n_batches), desc=desc, unit="batch", disable=n_batches < 2):
        idx = order[b * batch_size:(b + 1) * batch_size]
        rows = [token_ids[i] for i in idx]
        shared = _common_prefix(rows) if share and len(rows) > 1 else 0
        if shared < MIN_SHARED_PREFIX:
            shared = 0
        batch = {k: v.to(model.device) for k, v in _padded(rows, shared, tokenizer.pad_token_id).items()}
        caching = {}
        if shared:
            caching["past_key_values"] = _prefix_cache(model, rows[0][:shared], len(rows),
                                                       batch["input_ids"].shape[1] + max_new_tokens, static)
        elif static:
            caching = {"cache_implementation": "static", "disable_compile": True}
        processors = []
        if any(shapes[i] for i in idx):
            processors.append(JsonSchemaGuide(tokenizer, model.config.vocab_size, [shapes[i] for i in idx],
                                              stop_id=tokenizer.eos_token_id,
                                              no_repeat_ngram=sampling.no_repeat_ngram))
        recorder = LogprobRecorder(top_logprobs) if top_logprobs else None
        if recorder:
            processors.append(recorder)
        hooks = {}
        if on_token or should_stop:
            feed = RowFeed(idx, stop_ids, on_token, should_stop)
            hooks = {"streamer": feed, "stopping_criteria": StoppingCriteriaList([feed])}
        out = model.generate(**batch, pad_token_id=tokenizer.pad_token_id, logits_processor=processors, **caching,
                             **decoding, **hooks)
        new_tokens = out[:, batch["input_ids"].shape[1]:]
        for row, i in enumerate(idx):
            ids = new_tokens[row].tolist()
            stopped = not stop_ids.isdisjoint(ids)
            kept = [t for t in ids if t != tokenizer.pad_token_id]
            text = tokenizer.decode(kept, skip_special_tokens=True).strip()
            cut = min((text.index(s) for s in sampling.stop if s in text), default=None)
            if cut is not None:
                text, stopped = text[:cut].rstrip(), True
            results[i] = {"text": text, "prompt_tokens": lengths[i], "completion_tokens": len(kept),
                          "finish_reason": "stop" if stopped else "length"}
            if return_token_ids:
                results[i].update(prompt_token_ids=token_ids[i], token_ids=kept)
            if recorder:
                results[i]["logprobs"] = recorder.tokens(row, ids, tokenizer, stop_ids | {tokenizer.pad_token_id})
            if on_result:
                on_result(i, results[i])
    return results


class RowFeed(BaseStreamer, StoppingCriteria):
    """Per-row hooks on one `generate` call: hands each row's new tokens to
    `on_token(i, id)` until the row stops, and stops a row when `should_stop(i)`
    says so (generate then pads it while the other rows go on). `rows` maps a
    batch row to its conversation's index."""

    def __init__(self, rows, stop_ids, on_token=None, should_stop=None):
        self.rows, self.stop_ids, self.on_token, self.should_stop = rows, stop_ids, on_token, should_stop
        self.done = [False] * len(rows)
        self.stopping = set()

    def __call__(self, input_ids, scores, **kwargs):
        if self.should_stop:
            self.stopping.update(r for r, i in enumerate(self.rows) if not self.done[r] and self.should_stop(i))
        return torch.tensor([r in self.stopping for r in range(len(self.rows))], device=input_ids.device)

    def put(self, value):
        if value.dim() > 1:
            return  # the prompt, handed over before the first step
        for r, token_id in enumerate(value.tolist()):
            if self.done[r]:
                continue
            if token_id in self.stop_ids:
                self.done[r] = True
                continue
            if self.on_token:
                self.on_token(self.rows[r], token_id)
            self.done[r] = r in self.stopping

    def end(self):
        pass


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


def _common_prefix(rows):
    """How many leading tokens every row shares, leaving each row at least one of its own."""
    shared = min(len(r) for r in rows) - 1
    for n, column in enumerate(zip(*rows)):
        if n >= shared or len(set(column)) > 1:
            return min(n, shared)
    return max(shared, 0)


def _padded(rows, shared, pad_id):
    """Rows laid out as [shared prefix | padding | own tokens] with the matching attention mask
    (shared 0: ordinary left padding)."""
    width = max(len(r) for r in rows) - shared
    ids, mask = [], []
    for r in rows:
        pad = width - (len(r) - shared)
        ids.append(r[:shared] + [pad_id] * pad + r[shared:])
        mask.append([1] * shared + [0] * pad + [1] * (len(r) - shared))
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


def _plain_attention_cache(model):
    """Whether the model's key/value cache is plain attention layers, whose entries for a
    shared prefix can be computed once and copied (not sliding windows or recurrent states)."""
    try:
        layers = DynamicCache(config=model.config).layers
    except (TypeError, ValueError, AttributeError):
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _prefix_cache(model, prefix, rows, max_cache_len, static):
    """A key/value cache for `rows` rows holding `prefix`, read in once."""
    once = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([prefix], device=model.device), past_key_values=once, use_cache=True, logits_to_keep=1)
    cache = (StaticCache(config=model.config, max_cache_len=max_cache_len) if static
             else DynamicCache(config=model.config))
    for layer_idx, layer in enumerate(once.layers):
        cache.update(layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1), layer_idx)
    return cache


def _stop_ids(model):
    eos = model.generation_config.eos_token_id
    if eos is None:
        return []
    return eos if isinstance(eos, list) else [eos]
