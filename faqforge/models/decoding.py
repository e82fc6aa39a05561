"""Batched chat generation with a local model: every in-process answer (the
local teacher, the evaluation's students, chat and serve, through
faqforge.models.local) comes from `generate_chat`.

Replies can be guided to a JSON schema (faqforge.models.guided) and can carry per-token
log-probabilities in the OpenAI API's shape.
"""

import math

import torch
from tqdm import tqdm
from transformers import DynamicCache, TemperatureLogitsWarper, TopPLogitsWarper
from transformers.cache_utils import DynamicLayer

from faqforge.models.checkpoints import chat_prompt
from faqforge.models.guided import JsonSchemaGuide, string_array_shape
from faqforge.models.sampling import Sampling

GREEDY = Sampling()
# Below this many shared prompt tokens a batch is read in whole: the saving would not pay for the extra pass.
MIN_SHARED_PREFIX = 16


@torch.inference_mode()
def generate_chat(model, tokenizer, conversations, sampling=GREEDY, batch_size=8, desc="generating",
                  schemas=None, on_result=None, shared_prefix=True, on_token=None, should_stop=None,
                  return_token_ids=False):
    """Answer each conversation (a list of chat messages) with the decoding settings
    `sampling` (its response_format aside); returns one dict per input.

    Conversations are sorted by prompt length and batched with left padding, so a
    batch wastes little compute on padding. Greedy when temperature is 0; sampled
    replies draw from a generator seeded with `sampling.seed` for each conversation,
    so a reply does not depend on the others in its batch.
    `schemas` (one JSON schema or None per conversation) guides those replies
    to valid JSON of that shape (faqforge.models.guided).
    Each result has `text`, `prompt_tokens`, `completion_tokens`, `finish_reason`,
    and with `sampling.top_logprobs` k also `logprobs`: per reply token its text, log-probability
    and the k most likely tokens with theirs (the OpenAI API's shape).
    `on_result(i, result)` is called as each batch finishes, so a caller can keep
    what is done before the whole list is.
    A row that has finished (its end token, a stop string, `max_tokens`) leaves
    the batch at once, its key/value cache with it, so the rest decode without
    it: replies of a batch differ in length several-fold (a teacher's pairs, a
    student's answers), and transformers' `generate` would carry every finished
    row to the end of the longest (bench/generation.py).
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
    stop_ids = {tokenizer.eos_token_id, *_stop_ids(model)}
    share = shared_prefix and _plain_attention_cache(model)
    n_batches = math.ceil(len(order) / batch_size)
    for b in tqdm(range(n_batches), desc=desc, unit="batch", disable=n_batches < 2):
        idx = order[b * batch_size:(b + 1) * batch_size]
        rows = [token_ids[i] for i in idx]
        shared = _common_prefix(rows) if share and len(rows) > 1 else 0
        if shared < MIN_SHARED_PREFIX:
            shared = 0
        guide = None
        if any(shapes[i] for i in idx):
            guide = JsonSchemaGuide(tokenizer, model.config.vocab_size, [shapes[i] for i in idx],
                                    stop_id=tokenizer.eos_token_id, no_repeat_ngram=sampling.no_repeat_ngram)
        recorder = LogprobRecorder(sampling.top_logprobs, len(idx)) if sampling.top_logprobs else None
        ends = RowEnds(idx, stop_ids, tokenizer, sampling.stop, on_token, should_stop)
        new_tokens = _decode(model, _padded(rows, shared, tokenizer.pad_token_id), shared, sampling, guide,
                             recorder, ends)
        for row, i in enumerate(idx):
            ids = new_tokens[row]
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


def _decode(model, batch, shared, sampling, guide, recorder, ends):
    """The new token ids of each row of a left-padded batch (its first `shared` tokens
    the same in every row), one token a step for every row still going; a row that
    ends (RowEnds) is taken out of the batch, its cache entries too."""
    ids, mask = (batch[k].to(model.device) for k in ("input_ids", "attention_mask"))
    n = ids.shape[0]
    cache = _prefix_cache(model, ids[0, :shared].tolist(), n) if shared else DynamicCache(config=model.config)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids[:, shared:], attention_mask=mask, position_ids=positions[:, shared:],
                   past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    live, out = list(range(n)), [[] for _ in range(n)]
    warpers = _warpers(sampling)
    # one generator a row, each seeded alike: a sampled reply does not depend on its batch
    generators = [torch.Generator(model.device).manual_seed(sampling.seed) for _ in range(n)] if warpers else None
    for step in range(sampling.max_tokens):
        scores = logits.float()
        if guide:
            scores = guide(ids, scores)
        if warpers:
            warped = scores
            for warp in warpers:
                warped = warp(ids, warped)
            probs = torch.softmax(warped, dim=-1)
            chosen = torch.cat([torch.multinomial(probs[k], 1, generator=generators[r]) for k, r in enumerate(live)])
        else:
            chosen = scores.argmax(dim=-1)
        if recorder:
            recorder.record(live, scores, chosen)
        ended = []
        for k, (r, token_id) in enumerate(zip(live, chosen.tolist())):
            out[r].append(token_id)
            if ends.ended(r, out[r]):
                ended.append(k)
        ids = torch.cat([ids, chosen[:, None]], dim=1)
        if len(ended) == len(live) or step + 1 == sampling.max_tokens:
            break
        if ended:
            keep = [k for k in range(len(live)) if k not in ended]
            index = torch.tensor(keep, device=ids.device)
            cache.batch_select_indices(index)
            ids, mask, chosen = ids[index], mask[index], chosen[index]
            live = [live[k] for k in keep]
            if guide:
                guide.select(keep)
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
        logits = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1,
                       past_key_values=cache, use_cache=True).logits[:, -1]
    return out


def _warpers(sampling):
    """transformers' temperature and top-p warpers for a sampled reply; none for greedy."""
    if sampling.temperature <= 0:
        return []
    warpers = [TemperatureLogitsWarper(sampling.temperature)]
    if sampling.top_p < 1:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    return warpers


class RowEnds:
    """When a row of a batch is done: it wrote an end token, a stop string, or its
    caller says so (`should_stop(i)`); `on_token(i, id)` gets each token before that.
    `rows` maps a batch row to its conversation's index."""

    def __init__(self, rows, stop_ids, tokenizer, stop=(), on_token=None, should_stop=None):
        self.rows, self.stop_ids, self.tokenizer, self.stop = rows, stop_ids, tokenizer, tuple(stop)
        self.on_token, self.should_stop = on_token, should_stop

    def ended(self, row, tokens):
        """Whether batch row `row`, having written `tokens`, is done."""
        if tokens[-1] in self.stop_ids:
            return True
        if self.on_token:
            self.on_token(self.rows[row], tokens[-1])
        if self.stop and any(s in self.tokenizer.decode(tokens, skip_special_tokens=True) for s in self.stop):
            return True
        return bool(self.should_stop and self.should_stop(self.rows[row]))


class LogprobRecorder:
    """Keeps, for every step of every row, the top-k log-probabilities and the
    log-probability of the token then chosen (the distribution after guided decoding,
    before temperature)."""

    def __init__(self, k, rows):
        self.k = k
        self.steps = [[] for _ in range(rows)]   # per row: (top ids, top logprobs, chosen logprob) per step

    def record(self, rows, scores, chosen):
        logprobs = torch.log_softmax(scores.float(), dim=-1)
        top = logprobs.topk(self.k, dim=-1)
        picked = logprobs.gather(1, chosen[:, None]).squeeze(1).tolist()
        for k, (ids, values) in enumerate(zip(top.indices.tolist(), top.values.tolist())):
            self.steps[rows[k]].append((ids, values, picked[k]))

    def tokens(self, row, ids, tokenizer, stop_ids):
        out = []
        for (top_ids, top_values, logprob), token_id in zip(self.steps[row], ids):
            if token_id in stop_ids:
                break
            out.append({"token": tokenizer.decode([token_id]), "logprob": logprob,
                        "top": {tokenizer.decode([t]): v for t, v in zip(top_ids, top_values)}})
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


def _prefix_cache(model, prefix, rows):
    """A key/value cache for `rows` rows holding `prefix`, read in once."""
    once = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([prefix], device=model.device), past_key_values=once, use_cache=True, logits_to_keep=1)
    cache = DynamicCache(config=model.config)
    for layer_idx, layer in enumerate(once.layers):
        cache.update(layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1), layer_idx)
    return cache


def _stop_ids(model):
    eos = model.generation_config.eos_token_id
    if eos is None:
        return []
    return eos if isinstance(eos, list) else [eos]
