"""Self-instruct: the teacher writes Q&A pairs for every chunk.

    dvc repro generate          # or: python stages/generate.py

data/qa_raw.jsonl gets the pairs; a chunk whose request failed or whose reply
held no pair goes to data/generate_dropped.jsonl with the reason and the reply,
and so does a pair that merely copies one of the prompt's worked examples.
"""

from faqforge.generate import generation_messages, pairs_from_reply, questions_for
from faqforge.io import load_params, read_jsonl, write_json, write_jsonl
from faqforge.llm import Teacher
from faqforge.stage import check_error_rate, run, teacher_error_record


def main():
    params = load_params(sections=["generate", "teacher"])
    p = params["generate"]
    chunks = read_jsonl("data/chunks.jsonl")
    teacher = Teacher(params["teacher"])
    wanted = [questions_for(c["n_tokens"], p["tokens_per_question"], p["min_questions"], p["max_questions"])
              for c in chunks]
    replies = teacher.chat([generation_messages(c, p, n) for c, n in zip(chunks, wanted)],
                           desc="generate", max_tokens=p["max_tokens"])
    example_questions = [pair["question"] for example in p["examples"] for pair in example["pairs"]]
    pairs, failed, copies = [], [], []
    for chunk, n, reply in zip(chunks, wanted, replies):
        if reply.get("error"):
            failed.append(teacher_error_record(chunk, "generate", reply))
            continue
        found, copied = pairs_from_reply(chunk, reply["text"], n, example_questions)
        if not found and not copied:
            failed.append({**chunk, "dropped_by": "generate", "why": "no question/answer pair in the reply",
                           "reply": reply["text"]})
        pairs.extend(found)
        copies.extend(copied)
    write_jsonl("data/qa_raw.jsonl", pairs)
    write_jsonl("data/generate_dropped.jsonl", failed + copies)
    write_json("metrics/generate.json", {"chunks": len(chunks), "pairs": len(pairs),
                                         "questions_requested": sum(wanted),
                                         "chunks_without_pairs": len(failed),
                                         "example_copies_dropped": len(copies),
                                         "teacher": teacher.stats})
    print(f"generate: {len(chunks)} chunks -> {len(pairs)} pairs; {len(failed)} chunks gave none, "
          f"{len(copies)} copies of the worked examples dropped "
          f"({teacher.stats['calls']} calls, {teacher.stats['cache_hits']} cached)")
    check_error_rate("generate", teacher.stats, p["max_error_rate"])


if __name__ == "__main__":
    run(main)
