"""Review the pairs in the browser.

    python -m faqforge review                 # http://127.0.0.1:8001/
    FAQFORGE_REVIEWER=ana python -m faqforge review --port 8002

Shows every pair curate kept or dropped (and what dedup and decontaminate then
did), with its chunk and the sentences that support it, the judge's verdict
and the duplicates; approve, reject (with a reason), edit, rescue a dropped
pair, add your own pairs or import a CSV/JSONL of them, and try the tuned bot.
Decisions go to data/review.jsonl (commit it with git); `dvc repro` then
reruns split and what follows it. It listens on this machine only.
"""

import argparse
import os
import sys

from faqforge.core.io import PipelineError


def chat_backend(model, student, index, bot_url=None, bot_model="chatbot", key_env="FAQFORGE_SERVE_KEY"):
    """A function building the bot on first use: the student beside its base (or, with
    `bot_url`, the model an OpenAI-compatible server serves as `bot_model`), prompted as
    trained (the student's prompt.json), with retrieval when it was trained with passages."""
    def build():
        from faqforge.answering.bots import compose_bot
        generator = {"base_url": bot_url, "api_key_env": key_env, "models": [bot_model]} if bot_url else None
        return compose_bot({} if bot_url else {"chatbot": student}, model, index=index, layout_from=student,
                           generator=generator, batch_size=4, max_wait_ms=10)[0]
    return build


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m faqforge review", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--reviewer", help="the name decisions are signed with (default: FAQFORGE_REVIEWER, "
                                           "params.yaml review.reviewer, the login name)")
    parser.add_argument("--model", default="models/base", help="the bot's base model")
    parser.add_argument("--student", default="models/adapter", help="the bot: the fine-tuned student")
    parser.add_argument("--index", default="data/index", help="the retrieval index the bot reads")
    parser.add_argument("--bot-url", help="try a served bot instead: an OpenAI-compatible /v1 URL (faqforge serve, "
                                          "vLLM)")
    parser.add_argument("--bot-model", default="chatbot", help="with --bot-url: the served model's name")
    parser.add_argument("--bot-key-env", default="FAQFORGE_SERVE_KEY", help="with --bot-url: its key's variable")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    try:
        from faqforge.core.config import load_config
        from faqforge.core.sections import Decontaminate, Review
        config = (load_config(sections=["review", "decontaminate"]) if os.path.exists("params.yaml")
                  else {"review": Review(), "decontaminate": Decontaminate()})
        reviewer = args.reviewer or os.environ.get("FAQFORGE_REVIEWER") or config["review"].reviewer
        from faqforge.review.store import Store
        store = Store(".", reviewer, config["decontaminate"])
        if not store.rows:
            raise PipelineError("no pairs to review here: run `dvc repro curate` first (data/qa_curated.jsonl)")
        from faqforge.answering.serve import bind
        sock = bind("127.0.0.1", args.port)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    import uvicorn

    from faqforge.review.app import create_review_app
    bot = (chat_backend(args.model, args.student, args.index, args.bot_url, args.bot_model, args.bot_key_env)
           if args.bot_url or os.path.exists(args.student) else None)
    app = create_review_app(store, bot)
    print(f"reviewing {len(store.rows)} pairs as {store.reviewer} on http://127.0.0.1:{sock.getsockname()[1]}/",
          flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level=args.log_level)).run(sockets=[sock])
    return 0
