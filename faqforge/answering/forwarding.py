"""A backend that forwards each request to an OpenAI-compatible generator (vLLM
serving the adapter, a hosted API, another faqforge serve), so a deployment
gets the training prompt, retrieval and sources without a model in this
process. Streams are passed through chunk by chunk; a client that goes away
closes the upstream stream, which stops the generator's work too."""

from faqforge.answering.api import BadRequest, sampling_of
from faqforge.core.io import PipelineError
from faqforge.models.served import Server, UpstreamError

FORWARDED = ("model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop",
             "logprobs", "top_logprobs", "response_format", "n", "presence_penalty", "frequency_penalty", "stream",
             "stream_options")


class Forwarder:
    """Answers through the generator at `base_url`; its errors come back with the generator's status."""

    def __init__(self, base_url, api_key_env=None, models=None, max_tokens_limit=1024, insecure_http=False):
        self.server = Server(base_url, api_key_env, insecure_http, where="--generator-url")
        self.max_tokens_limit = max_tokens_limit
        try:
            self.names = list(models) if models else self.server.models()
        except PipelineError as e:
            raise PipelineError(f"{e}; give them with --generator-models") from None

    def model_names(self):
        return self.names

    async def respond(self, body, timeout=None):
        sampling_of(body, self.names, self.max_tokens_limit)
        try:
            reply = await self.server.forward({k: body[k] for k in FORWARDED if k in body}, timeout)
        except UpstreamError as e:
            raise BadRequest(e.status, str(e)) from None
        return reply if isinstance(reply, dict) else self._chunks(reply)

    async def _chunks(self, stream):
        try:
            async for part in stream:
                yield part
        except UpstreamError as e:
            raise BadRequest(e.status, str(e)) from None
        finally:
            await stream.aclose()
