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
import threading
from pathlib import Path

from faqforge.core.chat_format import question_messages, sources, sources_block, trained_layout, with_passages
from faqforge.core.io import PipelineError
from faqforge.hygiene.keys import api_key, check_key_transport
from faqforge.hygiene.secrets import redact
from faqforge.models.checkpoints import chat_prompt, load_model

PROMPT = "you> "


class LocalChat:
    """A local model, with an adapter when given one, answering through its chat template."""

    def __init__(self, model_spec, adapter, max_new_tokens, temperature, seed=0, dtype="auto"):
        self.seed = seed
        if adapter and not (Path(adapter) / "adapter_config.json").exists():
            if not (Path(adapter) / "config.json").exists():
                raise PipelineError(f"--adapter {adapter}: neither a LoRA adapter (adapter_config.json) nor a "
                                    "fine-tuned checkpoint (config.json) there; train one with `dvc repro "
                                    "finetune`, or pass --adapter '' to chat with the base model.")
            model_spec, adapter = adapter, None  # finetune.method full: the checkpoint is the model
        self.model, self.tokenizer = load_model(model_spec, adapter=adapter, dtype=dtype)
        self.sampling = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            self.sampling["temperature"] = temperature

    def stream(self, messages):
        import torch
        from transformers import TextIteratorStreamer
        torch.manual_seed(self.seed)  # with temperature > 0, the same conversation gets the same answer
        inputs = self.tokenizer(chat_prompt(self.tokenizer, messages), return_tensors="pt",
                                add_special_tokens=False).to(self.model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        worker = threading.Thread(target=self.model.generate, kwargs={
            **inputs, **self.sampling, "streamer": streamer, "pad_token_id": self.tokenizer.pad_token_id})
        worker.start()
        yield from streamer
        worker.join()


class ServedChat:
    """A model behind an OpenAI-compatible server (vLLM, `python -m faqforge serve`), streamed."""

    def __init__(self, base_url, model, api_key_env, max_tokens, temperature, insecure_http=False):
        import openai
        key = api_key(api_key_env)
        check_key_transport(base_url, key, insecure_http, "--base-url", api_key_env, "pass --insecure-http")
        self.client = openai.OpenAI(base_url=base_url, api_key=key or "none")
        self.model, self.sampling = model, {"max_tokens": max_tokens, "temperature": temperature}

    def stream(self, messages):
        import openai
        try:
            for chunk in self.client.chat.completions.create(model=self.model, messages=messages, stream=True,
                                                              **self.sampling):
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except openai.OpenAIError as e:
            raise PipelineError(f"{self.client.base_url}: {type(e).__name__}: "
                                f"{redact(str(e).splitlines()[0], [self.client.api_key])}") from None


def answer(bot, messages, out, retriever=None, k=0):
    """Stream one answer to `out`, the question shown with the top k passages when
    there is a retriever, then the sources it cites; returns the answer's text."""
    prompt, shown = with_passages(messages, retriever, k)
    parts = []
    for piece in bot.stream(prompt):
        parts.append(piece)
        out.write(piece)
        out.flush()
    out.write("\n")
    text = "".join(parts).strip()
    if shown:
        out.write(sources_block(sources(text, shown)) + "\n")
    return text


def converse(bot, system_prompt, read=input, out=sys.stdout, retriever=None, k=0):
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
        history.append({"role": "assistant", "content": answer(bot, history, out, retriever, k)})


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
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 answers greedily")
    parser.add_argument("--seed", type=int, default=0, help="local: sampling seed when --temperature > 0")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="local: the precision to answer in (auto: bfloat16/float16 on a GPU, float32 on a CPU)")
    args = parser.parse_args(argv)
    try:
        layout = trained_layout(args.adapter)
        system_prompt = args.system if args.system is not None else layout["system_prompt"]
        k = args.passages if args.passages is not None else layout["passages"]
        if k < 0:
            raise PipelineError(f"--passages {k}: give 0 (closed book) or more")
        retriever = None
        if k:
            from faqforge.documents.retrieval import Retriever
            retriever = Retriever(args.index)
        if args.base_url:
            if not args.model:
                raise PipelineError("--base-url needs --model, the name the server serves (e.g. chatbot)")
            bot = ServedChat(args.base_url, args.model, args.api_key_env, args.max_new_tokens, args.temperature,
                             args.insecure_http)
        else:
            bot = LocalChat(args.model or "models/base", args.adapter, args.max_new_tokens, args.temperature,
                            args.seed, args.dtype)
        if args.question:
            answer(bot, question_messages(args.question, system_prompt), sys.stdout, retriever, k)
        else:
            try:
                import readline  # noqa: F401  line editing and history for input()
            except ImportError:
                pass
            converse(bot, system_prompt, retriever=retriever, k=k)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
    return 0
