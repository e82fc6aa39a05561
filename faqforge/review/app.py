"""The review screen's ASGI app: the page and its assets (served by the app itself:
no build step, no CDN) and a small JSON API over faqforge.review.store.

    GET  /                      the page
    GET  /api/facets            documents, sources, totals, the reviewer's name
    GET  /api/pairs?...         a page of pairs matching the filters, and how many match
    GET  /api/pairs/{id}        one pair with its chunk, the supporting sentences, its history
    POST /api/decisions         {pair_id, action, reason?, question?, answer?}
    POST /api/pairs             {question, answer, doc?}: a person's own pair
    POST /api/import            {format: csv | jsonl, text}: many of them
    POST /api/chat              {messages}: the bot's answer, streamed as JSON lines
    GET  /api/eval              the last evaluation's questions, answers shuffled and unnamed, their grades
    POST /api/grades            {question, answer, grade}: right, partly or wrong

Writes must be `Content-Type: application/json`, which a page of another origin
cannot send without a preflight this app never grants, so no other site can
post decisions through a reviewer's browser.
"""

import asyncio
import csv
import io
import json
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from faqforge.core.io import PipelineError
from faqforge.models.sampling import Sampling
from faqforge.review.grading import Grading

STATIC = Path(__file__).parent / "static"


def create_review_app(store, chat=None, grading=None):
    """The app over `store`; `chat` is a backend (faqforge.answering) for the bot page, or
    a function that builds one on first use, or None; `grading` the grades view's
    data (faqforge.review.grading; by default the store's project, graded as its reviewer)."""
    grading = grading or Grading(store.root, store.reviewer)
    app = FastAPI(title="faqforge review", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    bot = {"backend": chat}

    @app.exception_handler(PipelineError)
    async def refused(request, error):
        return JSONResponse({"error": str(error)}, status_code=409)

    async def body_of(request):
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise PipelineError("send JSON (Content-Type: application/json)")
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError as e:
            raise PipelineError(f"the request body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise PipelineError("the request body must be a JSON object")
        return body

    @app.get("/")
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/facets")
    async def facets():
        return store.facets()

    @app.get("/api/pairs")
    async def pairs(q: str = "", doc: str | None = None, source: str | None = None, verdict: str | None = None,
                    min_score: float | None = None, max_score: float | None = None, reviewed: str | None = None,
                    state: str | None = None, reason: str | None = None, page: int = 1, size: int = 50):
        start = time.perf_counter()
        store.refresh()
        rows, total = store.query(q, doc or None, source or None, verdict or None, min_score, max_score,
                                  reviewed or None, state or None, page, max(1, min(size, 500)), reason or None)
        return {"rows": rows, "total": total, "page": page, "size": size,
                "ms": round((time.perf_counter() - start) * 1000, 1)}

    @app.get("/api/pairs/{pair_id}")
    async def detail(pair_id: str):
        store.refresh()
        try:
            return store.detail(pair_id)
        except KeyError:
            return JSONResponse({"error": f"no pair {pair_id!r}"}, status_code=404)

    @app.post("/api/decisions")
    async def decide(request: Request):
        body = await body_of(request)
        return store.decide(str(body.get("pair_id")), body.get("action"), body.get("reason") or None,
                            body.get("question") or None, body.get("answer") or None)

    @app.post("/api/pairs")
    async def add(request: Request):
        body = await body_of(request)
        return store.add(body.get("question"), body.get("answer"), body.get("doc"))

    @app.post("/api/import")
    async def import_pairs(request: Request):
        body = await body_of(request)
        added, refused = 0, []
        for n, item in enumerate(parse_import(body.get("format"), body.get("text") or ""), 1):
            try:
                store.add(item.get("question"), item.get("answer"), item.get("doc"))
                added += 1
            except PipelineError as e:
                refused.append({"row": n, "question": item.get("question"), "why": str(e)})
        return {"added": added, "refused": refused}

    @app.get("/api/eval")
    async def evaluation():
        return grading.questions()

    @app.post("/api/grades")
    async def grade(request: Request):
        body = await body_of(request)
        return grading.grade(body.get("question"), body.get("answer"), body.get("grade"))

    @app.post("/api/chat")
    async def chat(request: Request):
        body = await body_of(request)
        if bot["backend"] is None:
            raise PipelineError("no bot to try: start the review with a trained model (dvc repro finetune)")
        if callable(bot["backend"]) and not hasattr(bot["backend"], "respond"):
            bot["backend"] = await asyncio.to_thread(bot["backend"])
        backend = bot["backend"]
        name = backend.model_names()[-1]
        sampling = Sampling(max_tokens=int(body.get("max_tokens") or 256),
                            temperature=float(body.get("temperature") or 0))
        chunks = await backend.respond({"model": name, "messages": body.get("messages") or [], "stream": True,
                                       **sampling.to_openai()})

        async def lines():
            async for part in chunks:
                for choice in part.get("choices", []):
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        yield json.dumps({"delta": delta}) + "\n"
                    if choice.get("finish_reason"):
                        yield json.dumps({"done": True, "sources": choice.get("sources") or []}) + "\n"
        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


def parse_import(kind, text):
    """Pairs from a CSV (a header with question and answer, optionally doc) or JSON lines."""
    if kind == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and not {"question", "answer"} <= set(rows[0]):
            raise PipelineError("the CSV needs a header with question and answer columns (and optionally doc)")
        return rows
    if kind == "jsonl":
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise PipelineError(f"line {n} is not JSON ({e.msg})") from None
        return items
    raise PipelineError(f"format {kind!r}: give csv or jsonl")
