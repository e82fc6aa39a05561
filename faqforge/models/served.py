"""One-off calls to an OpenAI-compatible server: list its models, stream one
chat answer (faqforge chat --base-url), forward a request as it came (faqforge
serve --generator-url) and embed texts (index.dense.base_url). Batches of
requests with retries, pacing and a fleet of replicas: faqforge.models.openai_client.

The key comes from the variable the caller names and never crosses the network
in the clear (faqforge.hygiene.keys); errors come back with the key redacted.
"""

import numpy as np

from faqforge.core.io import PipelineError
from faqforge.hygiene.keys import api_key, check_key_transport
from faqforge.hygiene.secrets import redact


class UpstreamError(Exception):
    """A forwarded request the server failed: the HTTP status to answer with, and why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Server:
    """The server at `base_url`, its key in the variable `key_env`. `where` names the
    setting that gave the URL and `override` how to allow plain http, for errors."""

    def __init__(self, base_url, key_env=None, insecure_http=False, where="--base-url",
                 override="pass --insecure-http", max_retries=2):
        self.base_url, self.where, self.max_retries = base_url, where, max_retries
        self.key = api_key(key_env)
        check_key_transport(base_url, self.key, insecure_http, where, key_env, override)
        self._async = None

    def why(self, error):
        """An OpenAI SDK error in one line, the key redacted."""
        return f"{type(error).__name__}: {redact(str(error).splitlines()[0], [self.key or ''])}"

    def _client(self, max_retries=None):
        import openai
        return openai.OpenAI(base_url=self.base_url, api_key=self.key or "none",
                             max_retries=self.max_retries if max_retries is None else max_retries)

    def models(self):
        """The names the server serves (GET /v1/models)."""
        import openai
        try:
            return [m.id for m in self._client(max_retries=1).models.list()]
        except openai.OpenAIError as e:
            raise PipelineError(f"{self.where} {self.base_url}: cannot list its models ({self.why(e)})") from None

    def stream(self, model, messages, sampling):
        """Yield the answer of `model` to one conversation as it streams in."""
        import openai
        try:
            for part in self._client().chat.completions.create(model=model, messages=messages, stream=True,
                                                               **sampling.to_openai()):
                if part.choices and part.choices[0].delta.content:
                    yield part.choices[0].delta.content
        except openai.OpenAIError as e:
            raise PipelineError(f"{self.base_url}: {self.why(e)}") from None

    async def forward(self, request, timeout=None):
        """The server's answer to a chat completions `request` (a dict of its fields): the
        response as a dict, or with `"stream": true` an async iterator of chunk dicts whose
        closing closes the upstream stream (the server stops generating). Failures raise
        UpstreamError with the server's status (504 on a time-out, 502 when unreachable)."""
        import openai
        if self._async is None:
            self._async = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.key or "none",
                                             max_retries=self.max_retries)
        try:
            reply = await self._async.chat.completions.create(**request, timeout=timeout)
        except openai.APIStatusError as e:
            raise UpstreamError(e.status_code, f"generator {self.base_url}: {self.why(e)}") from None
        except openai.APITimeoutError as e:
            raise UpstreamError(504, f"generator {self.base_url}: {self.why(e)}") from None
        except openai.OpenAIError as e:
            raise UpstreamError(502, f"generator {self.base_url}: {self.why(e)}") from None
        if not request.get("stream"):
            return reply.model_dump(exclude_none=True)
        return self._chunks(reply)

    async def _chunks(self, stream):
        import openai
        try:
            async for part in stream:
                yield part.model_dump(exclude_none=True)
        except openai.OpenAIError as e:
            raise UpstreamError(502, f"generator {self.base_url}: {self.why(e)}") from None
        finally:
            await stream.close()

    def embed(self, model, texts):
        """The embeddings of `texts` by `model`, one row per text, in order."""
        import openai
        try:
            reply = self._client().embeddings.create(model=model, input=texts)
        except openai.OpenAIError as e:
            raise PipelineError(f"{self.where} {self.base_url}: embeddings for model {model!r} failed: "
                                f"{self.why(e)}") from None
        data = sorted(reply.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise PipelineError(f"{self.where} {self.base_url}: returned {len(data)} embeddings for {len(texts)} "
                                "texts")
        return np.asarray([d.embedding for d in data], dtype=np.float32)
