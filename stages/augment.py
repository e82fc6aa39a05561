"""Optional paraphrase augmentation: the teacher rewrites each question k ways.

    dvc repro augment           # or: python stages/augment.py

`augment.paraphrases: 0` passes the pairs through unchanged (each still gets its
`group`). Paraphrases that copy the question or hit the eval set are dropped.
"""

from faqforge.augment import example_questions, paraphrase_messages, variants_of
from faqforge.decontaminate import contamination
from faqforge.io import load_params, read_evalset, read_jsonl, write_json, write_jsonl
from faqforge.llm import Teacher
from faqforge.stage import check_error_rate, run, teacher_error_record


def main():
    params = load_params(sections=["augment", "decontaminate", "teacher"])
    p, d = params["augment"], params["decontaminate"]
    pairs = [{**x, "group": x.get("cluster") or x["id"]} for x in read_jsonl("data/qa_clean.jsonl")]
    variants, dropped = [], []
    teacher = Teacher(params["teacher"], cache_dir="cache/llm/augment")
    if p["paraphrases"] > 0 and pairs:
        replies = teacher.chat([paraphrase_messages(x, p) for x in pairs], desc="augment",
                               max_tokens=p["max_tokens"])
        for pair, reply in zip(pairs, replies):
            if reply.get("error"):
                dropped.append(teacher_error_record(pair, "augment", reply))
                continue
            new, copies = variants_of(pair, reply["text"], p["paraphrases"], example_questions(p))
            variants.extend(new)
            dropped.extend(copies)
        variants, leaked = contamination(variants, read_evalset("data/eval/evalset.json"),
                                         d["ngram"], d["question_threshold"], d["scorer"])
        dropped.extend({**x, "dropped_by": "augment"} for x in leaked)
    out = pairs + variants
    write_jsonl("data/qa_augmented.jsonl", out)
    write_jsonl("data/augment_dropped.jsonl", dropped)
    write_json("metrics/augment.json", {"pairs_in": len(pairs), "paraphrases_kept": len(variants),
                                        "paraphrases_dropped": len(dropped), "pairs_out": len(out),
                                        "teacher": teacher.stats})
    print(f"augment: {len(pairs)} pairs + {len(variants)} paraphrases = {len(out)}; dropped {len(dropped)}")
    check_error_rate("augment", teacher.stats, p["max_error_rate"])


if __name__ == "__main__":
    run(main)
