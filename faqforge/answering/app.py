"""The ASGI app `faqforge serve` runs under uvicorn: the OpenAI API's
GET /v1/models and POST /v1/chat/completions (a JSON answer, or server-sent
events in the chunk format the openai SDK parses, ending in `data: [DONE]`),
and GET /health for load balancers, in front of a backend
(faqforge.answering.backends).

Limits, each answered the way OpenAI clients expect: a bearer key compared in
constant time (401); a body over `max_body_bytes` (413) or not all sent within
`body_timeout` seconds (408); more than `max_concurrent` generations at once
(503 with Retry-After, which the openai SDK and faqforge's teacher honour); a
generation over `request_timeout` seconds (504, or an error event mid-stream).
A client that disconnects stops its generation.
"""

import asyncio
import hmac
import json
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from faqforge.answering.api import BadRequest


@dataclass
class Limits:
    max_body_bytes: int = 1 << 20
    body_timeout: float = 10.0
    max_concurrent: int = 32
    request_timeout: float = 120.0


def error_response(error):
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


class BodyLimit:
    """ASGI middleware: reads a POST body whole, refusing one over `limit` bytes (by its
    Content-Length before reading, or as it arrives) or slower than `timeout` seconds,
    then hands it to the app. (A Content-Length that is not a number never gets here:
    uvicorn answers 400.)"""

    def __init__(self, app, limit, timeout):
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and int(declared) > self.limit:
            return await error_response(self._too_large())(scope, receive, send)
        body = bytearray()
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.limit:
                        return await error_response(self._too_large())(scope, receive, send)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            error = BadRequest(408, f"the request body did not arrive within {self.timeout:g} s "
                                    "(is its Content-Length right?)")
            return await error_response(error)(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, replay, send)

    def _too_large(self):
        return BadRequest(413, f"the request body is over this server's limit of {self.limit} bytes "
                               "(serve --max-body-bytes)")


def create_app(backend, api_key=None, limits=None):
    """The app serving `backend`; with `api_key`, every /v1 route wants `Authorization: Bearer <key>`."""
    limits = limits or Limits()
    app = FastAPI(title="faqforge", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes, timeout=limits.body_timeout)
    state = {"in_flight": 0, "durations": deque(maxlen=32)}
    app.state.generation = state

    @app.exception_handler(BadRequest)
    async def bad_request(request, error):
        return error_response(error)

    @app.exception_handler(HTTPException)
    async def http_error(request, error):
        return error_response(BadRequest(error.status_code, f"{request.method} {request.url.path}: {error.detail}"))

    def authorise(request):
        if api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # compare_digest takes as long for a near miss as for a wild guess
        if not (hmac.compare_digest(given.encode(), api_key.encode()) and scheme.lower() == "bearer"):
            raise BadRequest(401, "missing or wrong API key: send Authorization: Bearer <key>")

    @app.get("/health")
    async def health():
        return {"status": "ok", "in_flight": state["in_flight"]}

    @app.get("/v1/models")
    async def models(request: Request):
        authorise(request)
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "faqforge"}
                                           for name in backend.model_names()]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        authorise(request)
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadRequest(400, f"the request body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise BadRequest(400, "the request body must be a JSON object")
        if state["in_flight"] >= limits.max_concurrent:
            wait = math.ceil(statistics.median(state["durations"])) if state["durations"] else 1
            raise BadRequest(503, f"the server is answering its limit of {limits.max_concurrent} requests; "
                                  f"retry in {wait} s", retry_after=max(1, wait))
        state["in_flight"] += 1
        start = time.monotonic()

        def done():
            state["in_flight"] -= 1
            state["durations"].append(time.monotonic() - start)
        try:
            reply = await until_disconnected(request, backend.respond(body, limits.request_timeout))
            if not isinstance(reply, dict):  # a stream: errors before its first chunk keep their status
                first = await until_disconnected(request, anext(reply, None))
                if first is None:
                    raise BadRequest(502, "the backend's stream ended before its first chunk")
        except BaseException:
            done()
            raise
        if isinstance(reply, dict):
            done()
            return reply
        return EventStream(first, reply, done)

    return app


async def until_disconnected(request, answer):
    """Await `answer`, cancelling it (and so its generation) if the client goes away first."""
    task = asyncio.ensure_future(answer)
    watch = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        raise BadRequest(499, "the client closed the request")
    return task.result()


async def _disconnect(request):
    while (await request.receive())["type"] != "http.disconnect":
        pass


class EventStream(StreamingResponse):
    """Server-sent events of a streamed answer, from its (already started) chunks. An
    error after the stream has begun becomes an error event, which the openai SDK
    raises (the status line has gone). However the response ends (finished, client
    gone, server stopping), the chunks are closed, which stops their generation, and
    `release` runs once."""

    def __init__(self, first, chunks, release):
        self.chunks, self.release = chunks, release
        super().__init__(self._events(first), media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _events(self, first):
        try:
            yield f"data: {json.dumps(first)}\n\n"
            async for part in self.chunks:
                yield f"data: {json.dumps(part)}\n\n"
            yield "data: [DONE]\n\n"
        except BadRequest as e:
            yield f"data: {json.dumps(e.body())}\n\n"

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.chunks.aclose()
            self.release()
