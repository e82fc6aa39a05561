"""A backend that forwards each request to an OpenAI-compatible generator (vLLM
serving the adapter, a hosted API, another faqforge serve), so a deployment
gets the training prompt, retrieval and sources without a model in this
process. Streams are passed through chunk by chunk; a client that goes away
closes the upstream stream, which stops the generator's work too."""

from faqforge.answering.api import BadRequest, sampling_of
from faqforge.core.io import PipelineError
from faqforge.hygiene.keys import api_key, check_key_transport
from faqforge.hygiene.secrets import redact

FORWARDED = ("model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop",
             "logprobs", "top_logprobs", "response_format", "n", "presence_penalty", "frequency_penalty", "stream",
             "stream_options")


class Forwarder:
    """Answers through the generator at `base_url`; its errors come back with the generator's status."""

    def __init__(self, base_url, api_key_env=None, models=None, max_tokens_limit=1024, insecure_http=False):
        import openai
        self.api_key = api_key(api_key_env)
        check_key_transport(base_url, self.api_key, insecure_http, "--generator-url", api_key_env,
                            "pass --insecure-http")
        self.base_url, self.max_tokens_limit = base_url, max_tokens_limit
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=self.api_key or "none", max_retries=2)
        try:
            self.names = list(models) if models else [m.id for m in openai.OpenAI(
                base_url=base_url, api_key=self.api_key or "none", max_retries=1).models.list()]
        except openai.OpenAIError as e:
            raise PipelineError(f"--generator-url {base_url}: cannot list its models ({self._why(e)}); "
                                "give them with --generator-models") from None

    def _why(self, error):
        return f"{type(error).__name__}: {redact(str(error).splitlines()[0], [self.api_key or ''])}"

    def model_names(self):
        return self.names

    async def answer(self, body, timeout=None):
        import openai
        sampling_of(body, self.names, self.max_tokens_limit)
        request = {k: body[k] for k in FORWARDED if k in body}
        try:
            reply = await self.client.chat.completions.create(**request, timeout=timeout)
        except openai.APIStatusError as e:
            raise BadRequest(e.status_code, f"generator {self.base_url}: {self._why(e)}") from None
        except openai.APITimeoutError as e:
            raise BadRequest(504, f"generator {self.base_url}: {self._why(e)}") from None
        except openai.OpenAIError as e:
            raise BadRequest(502, f"generator {self.base_url}: {self._why(e)}") from None
        if not body.get("stream"):
            return reply.model_dump(exclude_none=True)
        return self._chunks(reply)

    async def _chunks(self, stream):
        import openai
        try:
            async for part in stream:
                yield part.model_dump(exclude_none=True)
        except openai.OpenAIError as e:
            raise BadRequest(502, f"generator {self.base_url}: {self._why(e)}") from None
        finally:
            await stream.close()
