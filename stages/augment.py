"""Optional paraphrase augmentation: the teacher rewrites each question k ways.

    dvc repro augment           # or: python stages/augment.py

`augment.paraphrases: 0` passes the pairs through unchanged (each still gets its
`group`). Paraphrases that copy the question or hit the eval set are dropped.
`augment.answers: true` also rephrases answers, keeping only rewrites that lose
no number, code span or file name.
"""

from faqforge.core.config import load_params
from faqforge.core.io import read_evalset, read_jsonl
from faqforge.core.stage import finish, run
from faqforge.hygiene.pii import PiiPolicy
from faqforge.synthesis.augment import augment_pairs
from faqforge.teacher.client import Teacher


def main():
    params = load_params(sections=["augment", "decontaminate", "hygiene", "teacher"])
    p = params["augment"]
    pairs = [{**x, "group": x.get("cluster") or x["id"]} for x in read_jsonl("data/qa_clean.jsonl")]
    pii = PiiPolicy(params["hygiene"]["pii"])
    teacher = Teacher(params["teacher"], cache_dir="cache/llm/augment", scrub=pii.scrubber)
    variants, dropped = [], []
    if p["paraphrases"] > 0 and pairs:
        variants, dropped = augment_pairs(teacher, pairs, p, pii, read_evalset("data/eval/evalset.json"),
                                          params["decontaminate"])
    finish("augment", len(pairs), {"data/qa_augmented.jsonl": pairs + variants}, dropped,
           {"paraphrases_kept": len(variants), "answers_rephrased": sum(bool(v.get("answer_rephrased"))
                                                                        for v in variants)},
           teacher, p["max_error_rate"],
           summary=f"{len(pairs)} pairs + {len(variants)} paraphrases = {len(pairs) + len(variants)}")


if __name__ == "__main__":
    run(main)
