"""The OpenAI chat completions API's shapes as faqforge serve speaks them: the
errors (BadRequest), the checks every backend applies to a request
(sampling_of), and the response and stream-chunk objects."""

import uuid

from faqforge.models.sampling import Sampling

DEFAULT_MAX_TOKENS = 256
MAX_STOP = 4   # stop strings a request may give, as in the OpenAI API


class BadRequest(Exception):
    """A request the server answers with an OpenAI-shaped error: status, message,
    and for 429/503 the seconds a client should wait (Retry-After)."""

    def __init__(self, status, message, param=None, retry_after=None):
        super().__init__(message)
        self.status, self.param, self.retry_after = status, param, retry_after

    def body(self):
        kind = {401: "authentication_error", 404: "not_found_error", 408: "timeout", 413: "invalid_request_error",
                429: "rate_limit_error", 504: "timeout"}.get(self.status)
        kind = kind or ("invalid_request_error" if self.status < 500 else "server_error")
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.status}}


def sampling_of(body, names, max_tokens_limit):
    """Check the parts of a chat completion request every backend reads; returns its Sampling."""
    if body.get("model") not in names:
        raise BadRequest(404, f"model {body.get('model')!r} is not served; choose one of {names}", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str)
            for m in messages):
        raise BadRequest(400, "messages must be a non-empty list of {role, content} objects with string content",
                         "messages")
    if body.get("n", 1) != 1:
        raise BadRequest(400, "only n=1 is supported", "n")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or min(DEFAULT_MAX_TOKENS,
                                                                                     max_tokens_limit)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest(400, f"max_tokens must be a positive integer, not {max_tokens!r}", "max_tokens")
    if max_tokens > max_tokens_limit:
        raise BadRequest(400, f"max_tokens {max_tokens} is over this server's limit of {max_tokens_limit} "
                              "(serve --max-tokens-limit)", "max_tokens")
    for key, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        value = body.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not low <= value <= high):
            raise BadRequest(400, f"{key} must be a number from {low} to {high}, not {value!r}", key)
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise BadRequest(400, f"seed must be an integer, not {seed!r}", "seed")
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop
    if stop is not None and not (isinstance(stops, list) and len(stops) <= MAX_STOP
                                 and all(isinstance(s, str) and s for s in stops)):
        raise BadRequest(400, f"stop must be a non-empty string or a list of at most {MAX_STOP} of them, "
                              f"not {stop!r}", "stop")
    if body.get("logprobs") and body.get("stream"):
        raise BadRequest(400, "logprobs are returned only without stream", "logprobs")
    return Sampling.from_openai(body, max_tokens)


def completion_id():
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(reply):
    return {"prompt_tokens": reply["prompt_tokens"], "completion_tokens": reply["completion_tokens"],
            "total_tokens": reply["prompt_tokens"] + reply["completion_tokens"]}


def chunk(reply, model, delta, finish_reason=None):
    """One `chat.completion.chunk` of a streamed answer."""
    reply_id, created = reply
    return {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}


def response(reply_id_created, model, reply, token_ids=False):
    """A `chat.completion` from a generate_chat result."""
    reply_id, created = reply_id_created
    choice = {"index": 0, "finish_reason": reply["finish_reason"],
              "message": {"role": "assistant", "content": reply["text"]}, "logprobs": None}
    if "logprobs" in reply:
        choice["logprobs"] = {"content": [
            {"token": t["token"], "logprob": t["logprob"], "bytes": list(t["token"].encode()),
             "top_logprobs": [{"token": k, "logprob": v, "bytes": list(k.encode())} for k, v in t["top"].items()]}
            for t in reply["logprobs"]]}
    out = {"id": reply_id, "object": "chat.completion", "created": created, "model": model, "choices": [choice],
           "usage": usage(reply)}
    if token_ids:  # as vLLM's `return_token_ids`: the ids the model read and wrote
        out["prompt_token_ids"] = reply["prompt_token_ids"]
        choice["token_ids"] = reply["token_ids"]
    return out
