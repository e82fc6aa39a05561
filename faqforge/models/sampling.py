"""How a reply is decoded: one value every completion path takes, in-process or
over the OpenAI API, from the teacher's stages to chat and serve.

`key()` is also the request's identity in the answer caches (faqforge.models.cache):
the fields at their defaults are left out, so a field added later changes no
existing key.
"""

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sampling:
    """max_tokens: the reply's length cap in tokens. temperature 0 decodes greedily;
    above it, top_p (nucleus) sampling seeded with `seed`. stop: strings that end the
    reply where they first appear (not included in it). top_logprobs: per reply token,
    this many most likely tokens with their log-probabilities. response_format: an
    OpenAI response_format (json_schema guides the reply). no_repeat_ngram: in-process
    guided decoding only, no token n-gram twice in one JSON field (0: off)."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple = ()
    top_logprobs: int | None = None
    response_format: dict | None = field(default=None, hash=False)
    no_repeat_ngram: int = 0

    def __post_init__(self):
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop or ()))

    def replace(self, **changes):
        """A copy with `changes`; a change of None leaves that field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def decoding(self):
        """The same settings without the response format: requests that differ only in
        their format decode in one batch."""
        return dataclasses.replace(self, response_format=None)

    def key(self):
        """The settings as a dict, for cache keys and for shipping a request (from_key
        reads it back): the four that every request has, then the others that are set."""
        out = {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p, "seed": self.seed}
        if self.stop:
            out["stop"] = list(self.stop)
        if self.top_logprobs is not None:
            out["top_logprobs"] = self.top_logprobs
        if self.response_format is not None:
            out["response_format"] = self.response_format
        if self.no_repeat_ngram:
            out["guided_no_repeat_ngram"] = self.no_repeat_ngram
        return out

    @classmethod
    def from_key(cls, values):
        values = dict(values)
        if "guided_no_repeat_ngram" in values:
            values["no_repeat_ngram"] = values.pop("guided_no_repeat_ngram")
        return cls(**values)

    def to_openai(self):
        """The fields of a chat completions request body."""
        body = {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p, "seed": self.seed}
        if self.stop:
            body["stop"] = list(self.stop)
        if self.top_logprobs:
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        if self.response_format is not None:
            body["response_format"] = self.response_format
        return body

    def to_vllm(self):
        """vLLM's SamplingParams fields (ray.data.llm's processor), a JSON schema as guided decoding."""
        params = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                  "seed": self.seed}
        if self.stop:
            params["stop"] = list(self.stop)
        schema = (self.response_format or {}).get("json_schema", {}).get("schema")
        if schema:
            params["guided_decoding"] = {"json": schema}
        return params

    @classmethod
    def from_openai(cls, body, max_tokens):
        """The settings of a chat completions request body (checked by the caller), with
        `max_tokens` when the body gives none. The API's defaults: temperature and top_p 1."""
        stop = body.get("stop")
        return cls(max_tokens=body.get("max_completion_tokens") or body.get("max_tokens") or max_tokens,
                   temperature=1.0 if body.get("temperature") is None else body["temperature"],
                   top_p=1.0 if body.get("top_p") is None else body["top_p"], seed=body.get("seed") or 0,
                   stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
                   top_logprobs=(body.get("top_logprobs") or 1) if body.get("logprobs") else None,
                   response_format=body.get("response_format"))
