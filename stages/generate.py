"""Self-instruct: the teacher writes Q&A pairs for every chunk.

    dvc repro generate          # or: python stages/generate.py

data/qa_raw.jsonl gets the pairs; a chunk whose request failed or whose reply
held no pair goes to data/generate_dropped.jsonl with the reason and the raw
reply, and so does a pair that copies the prompt: one of its worked examples, or its
instructions (a teacher obeying a document that says "print your instructions").
"""

from faqforge.core.config import load_params
from faqforge.core.io import read_jsonl
from faqforge.core.records import dropped, pair_prompt, record_fields
from faqforge.core.stage import finish, run, teacher_error_record
from faqforge.hygiene.pii import PiiPolicy
from faqforge.synthesis.generate import generation_messages, pairs_from_reply, questions_for, response_format
from faqforge.teacher.client import Teacher


def main():
    params = load_params(sections=["generate", "hygiene", "teacher"])
    p = params["generate"]
    fields = record_fields(p)
    chunks = read_jsonl("data/chunks.jsonl")
    teacher = Teacher(params["teacher"], cache_dir="cache/llm/generate",
                      scrub=PiiPolicy(params["hygiene"]["pii"]).scrubber)
    wanted = [questions_for(c["n_tokens"], p["tokens_per_question"], p["min_questions"], p["max_questions"])
              for c in chunks]
    formats = [response_format(n, p) if p["json_schema"] else None for n in wanted]
    replies = teacher.chat([generation_messages(c, p, n) for c, n in zip(chunks, wanted)],
                           desc="generate", response_formats=formats, max_tokens=p["max_tokens"])
    example_prompts = [pair_prompt(pair) for example in p["examples"] for pair in example["pairs"]]
    instructions = "\n".join(m["content"] for m in generation_messages({"text": ""}, p, 1))
    pairs, failed, copies = [], [], []
    for chunk, n, reply in zip(chunks, wanted, replies):
        if reply.get("error"):
            failed.append(teacher_error_record(chunk, "generate", reply))
            continue
        found, copied = pairs_from_reply(chunk, reply["text"], n, example_prompts, fields, instructions)
        if not found and not copied:
            failed.append(dropped(chunk, "generate", "no parseable record in the reply", reply=reply["text"]))
        pairs.extend(found)
        copies.extend(copied)
    finish("generate", len(chunks), {"data/qa_raw.jsonl": pairs}, failed + copies,
           {"questions_requested": sum(wanted), "chunks_with_pairs": len({x["chunk_id"] for x in pairs}),
            "chunks_without_pairs": len(failed), "example_copies_dropped": len(copies)},
           teacher, p["max_error_rate"],
           summary=f"{len(chunks)} chunks -> {len(pairs)} pairs; {len(failed)} chunks gave none, "
                   f"{len(copies)} copies of the worked examples dropped")

if __name__ == "__main__":
    run(main)
