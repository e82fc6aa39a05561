"""Optional paraphrase augmentation: the teacher rewrites each question k ways.

    dvc repro augment           # or: python stages/augment.py

`augment.paraphrases: 0` passes the pairs through unchanged (each still gets its
`group`). Paraphrases that copy the question or hit the eval set are dropped.
`augment.answers: true` also rephrases answers, keeping only rewrites that lose
no number, code span or file name.
"""

from collections import Counter

from faqforge.core.config import load_params
from faqforge.core.io import read_evalset, read_jsonl, write_json, write_jsonl
from faqforge.core.records import dropped as dropped_record
from faqforge.core.stage import check_error_rate, run, teacher_error_record
from faqforge.hygiene.pii import PiiPolicy
from faqforge.refinement.decontaminate import contamination
from faqforge.synthesis.augment import answer_messages, example_questions, paraphrase_messages, variants_of
from faqforge.teacher.client import Teacher


def main():
    params = load_params(sections=["augment", "decontaminate", "hygiene", "teacher"])
    p, d = params["augment"], params["decontaminate"]
    pairs = [{**x, "group": x.get("cluster") or x["id"]} for x in read_jsonl("data/qa_clean.jsonl")]
    variants, dropped = [], []
    pii = PiiPolicy(params["hygiene"]["pii"])
    teacher = Teacher(params["teacher"], cache_dir="cache/llm/augment", scrub=pii.scrubber)
    if p["paraphrases"] > 0 and pairs:
        replies = teacher.chat([paraphrase_messages(x, p) for x in pairs], desc="augment",
                               max_tokens=p["max_tokens"])
        answer_replies = [None] * len(pairs)
        if p["answers"]:
            answer_replies = teacher.chat([answer_messages(x, p) for x in pairs], desc="augment answers",
                                          max_tokens=p["answer_max_tokens"])
        for pair, reply, answer_reply in zip(pairs, replies, answer_replies):
            if reply.get("error"):
                dropped.append(teacher_error_record(pair, "augment", reply))
                continue
            if answer_reply is not None and answer_reply.get("error"):
                dropped.append({**teacher_error_record(pair, "augment", answer_reply),
                                "why": f"answer rephrasing: teacher error {answer_reply['error']}"})
                answer_reply = None
            new, copies = variants_of(pair, reply["text"], p["paraphrases"], example_questions(p),
                                      answer_reply and answer_reply["text"])
            for variant in new:
                added = pii.added_by(pair, variant)
                if added:  # the teacher wrote personal data the pair does not have (redacted in the cache)
                    copies.append(dropped_record(variant, "augment", "personal data",
                                                 f"the rephrasing adds {', '.join(added)} (hygiene.pii: drop)"))
                else:
                    variants.append(variant)
            dropped.extend(copies)
        variants, leaked = contamination(variants, read_evalset("data/eval/evalset.json"), **d)
        dropped.extend({**x, "dropped_by": "augment"} for x in leaked)
    out = pairs + variants
    write_jsonl("data/qa_augmented.jsonl", out)
    write_jsonl("data/augment_dropped.jsonl", dropped)
    write_json("metrics/augment.json", {"pairs_in": len(pairs), "paraphrases_kept": len(variants),
                                        "answers_rephrased": sum(bool(v.get("answer_rephrased")) for v in variants),
                                        "dropped": len(dropped), "pairs_out": len(out),
                                        "dropped_by_reason": dict(Counter(d["reason"] for d in dropped).most_common()),
                                        "teacher": teacher.stats})
    print(f"augment: {len(pairs)} pairs + {len(variants)} paraphrases = {len(out)}; dropped {len(dropped)}")
    check_error_rate("augment", teacher.stats, p["max_error_rate"])


if __name__ == "__main__":
    run(main)
