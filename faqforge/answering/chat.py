"""Chat with the fine-tuned model in the terminal.

    python -m faqforge chat                                       # models/base + models/adapter
    python -m faqforge chat --question "How do I add documents?"  # one answer, for scripts
    python -m faqforge chat --base-url http://gpu-host:8000/v1 --model chatbot   # a served model

Each question sees the conversation so far; /reset starts over, /quit (or
Ctrl-D) leaves. Answers stream token by token. The prompt is the one the
student was trained with (models/adapter/prompt.json, else params.yaml and prompts.yaml): its
system prompt and, for a RAFT student, the top passages of data/index/ for the
question in the training layout, so the chat sees exactly the prompts
evaluation saw. Under each answer a `Sources:` block names the passages it
cites (document, section, pages). --passages 0 asks closed book.
"""

import argparse
import sys

from faqforge.answering.bots import retriever_for
from faqforge.core.chat_format import question_messages, sources, sources_block, trained_layout, with_passages
from faqforge.core.io import PipelineError
from faqforge.documents.evidence import evidence_reply
from faqforge.models.sampling import Sampling

PROMPT = "you> "


def local_bot(base, student, dtype="auto"):
    """The student (a LoRA adapter on `base` or a full fine-tune; '' or None: the base
    alone) answering in this process, decoded as serve decodes."""
    from faqforge.models.local import local_models
    if not student:
        return local_models(base, dtype=dtype)["base"]
    try:
        return local_models(base, {"chatbot": student}, dtype=dtype)["chatbot"]
    except PipelineError as e:
        raise PipelineError(f"--adapter {e}, or pass --adapter '' to chat with the base model") from None


class ServedBot:
    """A model behind an OpenAI-compatible server (vLLM, `python -m faqforge serve`), streamed."""

    def __init__(self, base_url, model, api_key_env, insecure_http=False):
        from faqforge.models.served import Server
        self.server, self.model = Server(base_url, api_key_env, insecure_http), model

    def stream(self, messages, sampling):
        return self.server.stream(self.model, messages, sampling)


def answer_turn(bot, messages, sampling, out, retriever=None, k=0, evidence=False):
    """Stream one answer to `out`, the question shown with the top k passages when
    there is a retriever, then the sources it cites; returns the answer's text. With
    `evidence` the answer is evidence first (a quote of the passages, or the refusal)."""
    prompt, shown = with_passages(messages, retriever, k)
    if evidence and shown:
        pieces = [evidence_reply(messages[-1]["content"], shown, retriever.abstain_below)]
    else:
        pieces = bot.stream(prompt, sampling)
    parts = []
    for piece in pieces:
        parts.append(piece)
        out.write(piece)
        out.flush()
    out.write("\n")
    text = "".join(parts).strip()
    if shown:
        out.write(sources_block(sources(text, shown)) + "\n")
    return text


def converse(bot, system_prompt, sampling, read=input, out=sys.stdout, retriever=None, k=0, evidence=False):
    """The interactive loop: a multi-turn conversation until /quit or end of input.
    Earlier turns stay as asked; only the newest question is shown its passages."""
    start = [{"role": "system", "content": system_prompt}] if system_prompt else []
    history = list(start)
    out.write("Ask a question; /reset starts over, /quit leaves.\n")
    while True:
        try:
            line = read(PROMPT).strip()
        except EOFError:
            out.write("\n")
            return
        if line == "/quit":
            return
        if line == "/reset":
            history = list(start)
            out.write("(conversation reset)\n")
            continue
        if not line:
            continue
        history.append({"role": "user", "content": line})
        history.append({"role": "assistant",
                        "content": answer_turn(bot, history, sampling, out, retriever, k, evidence)})


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m faqforge chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--question", help="answer this one question and exit")
    parser.add_argument("--model", help="local: the base model (default models/base); "
                                        "with --base-url: the served model's name (e.g. chatbot)")
    parser.add_argument("--adapter", default="models/adapter", help="local: the fine-tuned student, a LoRA adapter "
                                                                    "or a full checkpoint ('' for the base alone)")
    parser.add_argument("--base-url", help="chat with a model behind this OpenAI-compatible /v1 URL instead")
    parser.add_argument("--api-key-env", default="FAQFORGE_SERVE_KEY",
                        help="with --base-url: the variable holding the server's key (faqforge serve's by default)")
    parser.add_argument("--insecure-http", action="store_true",
                        help="with --base-url: allow sending the key over plain http to another host")
    parser.add_argument("--system", help="system prompt (default: the one the student was trained with)")
    parser.add_argument("--passages", type=int, help="passages shown with each question (default: as the student "
                                                     "was trained, split.raft.passages for RAFT; 0: closed book)")
    parser.add_argument("--index", default="data/index", help="the retrieval index (`dvc repro index` builds it)")
    parser.add_argument("--answer", default="evidence", choices=["evidence", "model"],
                        help="evidence: a verbatim quote of the passages and its citation, or that the documents "
                             "do not cover it (no model generates); model: the model writes the answer")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 answers greedily")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed when --temperature > 0")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="end an answer where this text first appears (repeat for several)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="local: the precision to answer in (auto: bfloat16/float16 on a GPU, float32 on a CPU)")
    args = parser.parse_args(argv)
    try:
        layout = trained_layout(args.adapter)
        system_prompt = args.system if args.system is not None else layout["system_prompt"]
        k = args.passages if args.passages is not None else layout["passages"]
        if k < 0:
            raise PipelineError(f"--passages {k}: give 0 (closed book) or more")
        retriever = retriever_for([k], args.index)
        evidence = args.answer == "evidence"
        sampling = Sampling(max_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                            stop=tuple(args.stop))
        if args.base_url:
            if not args.model:
                raise PipelineError("--base-url needs --model, the name the server serves (e.g. chatbot)")
            bot = ServedBot(args.base_url, args.model, args.api_key_env, args.insecure_http)
        else:
            bot = local_bot(args.model or "models/base", args.adapter, args.dtype)
        if args.question:
            answer_turn(bot, question_messages(args.question, system_prompt), sampling, sys.stdout, retriever, k,
                        evidence)
        else:
            try:
                import readline  # noqa: F401  line editing and history for input()
            except ImportError:
                pass
            converse(bot, system_prompt, sampling, retriever=retriever, k=k, evidence=evidence)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
    return 0
