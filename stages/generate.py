"""Self-instruct: the teacher writes Q&A pairs for every chunk.

    dvc repro generate          # or: python stages/generate.py

data/qa_raw.jsonl gets the pairs; a chunk whose request failed or whose reply
held no pair goes to data/generate_dropped.jsonl with the reason and the raw
reply, and so does a pair that copies the prompt: one of its worked examples, or its
instructions (a teacher obeying a document that says "print your instructions").
"""

from faqforge.core.config import load_config
from faqforge.core.io import count_lines, iter_jsonl
from faqforge.core.records import dropped, pair_prompt, record_fields
from faqforge.core.stage import Outputs, finish, run
from faqforge.hygiene.pii import PiiPolicy
from faqforge.synthesis.generate import generation_messages, generation_request, pairs_from_reply, questions_wanted
from faqforge.teacher.client import Teacher
from faqforge.teacher.errors import teacher_error_record


def main():
    config = load_config(sections=["generate", "hygiene", "teacher"])
    p = config["generate"]
    fields = record_fields(p)
    teacher = Teacher(config["teacher"], cache_dir="cache/llm/generate",
                      scrub=PiiPolicy(config["hygiene"].pii).scrubber)
    example_prompts = [pair_prompt(pair) for example in p.examples for pair in example.pairs]
    instructions = "\n".join(m["content"] for m in generation_messages({"text": ""}, p, 1))
    counts = {"chunks": 0, "questions_requested": 0, "chunks_with_pairs": 0, "chunks_without_pairs": 0,
              "example_copies_dropped": 0, "pairs": 0}
    replies = teacher.map(iter_jsonl("data/chunks.jsonl"), lambda chunk: generation_request(chunk, p), "generate",
                          total=count_lines("data/chunks.jsonl"))
    with Outputs("generate", "data/qa_raw.jsonl") as out:
        for chunk, reply in replies:
            n = questions_wanted(chunk, p)
            counts["chunks"] += 1
            counts["questions_requested"] += n
            if reply.get("error"):
                out.drop(teacher_error_record(chunk, "generate", reply))
                counts["chunks_without_pairs"] += 1
                continue
            found, copied = pairs_from_reply(chunk, reply["text"], n, example_prompts, fields, instructions)
            if not found and not copied:
                out.drop(dropped(chunk, "generate", "no parseable record in the reply", reply=reply["text"]))
                counts["chunks_without_pairs"] += 1
            counts["chunks_with_pairs"] += bool(found)
            counts["example_copies_dropped"] += len(copied)
            counts["pairs"] += len(found)
            for record in found:
                out.keep(record)
            for record in copied:
                out.drop(record)
    chunks, pairs, copies = counts.pop("chunks"), counts.pop("pairs"), counts["example_copies_dropped"]
    finish("generate", chunks, out.kept, out.reasons, counts, teacher, p.max_error_rate,
           summary=f"{chunks} chunks -> {pairs} pairs; {counts['chunks_without_pairs']} chunks gave none, "
                   f"{copies} copies of the worked examples dropped")


if __name__ == "__main__":
    run(main)
