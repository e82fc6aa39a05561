"""Optional paraphrase augmentation: the teacher rewrites each question k ways.

    dvc repro augment           # or: python stages/augment.py

`augment.paraphrases: 0` passes the pairs through unchanged (each still gets its
`group`). Paraphrases that copy the question or hit the eval set are dropped.
`augment.answers: true` also rephrases answers, keeping only rewrites that lose
no number, code span or file name.
"""

from faqforge.core.config import load_config
from faqforge.core.io import Spool, iter_jsonl, read_evalset
from faqforge.core.stage import Outputs, finish, run
from faqforge.hygiene.pii import PiiPolicy
from faqforge.synthesis.augment import augment_pairs
from faqforge.teacher.client import Teacher


def main():
    config = load_config(sections=["augment", "decontaminate", "hygiene", "teacher"])
    p = config["augment"]
    pairs = ({**x, "group": x.get("cluster") or x["id"]} for x in iter_jsonl("data/qa_clean.jsonl"))
    pii = PiiPolicy(config["hygiene"].pii)
    teacher = Teacher(config["teacher"], cache_dir="cache/llm/augment", scrub=pii.scrubber)
    originals, rephrased = 0, 0
    with Outputs("augment", "data/qa_augmented.jsonl") as out, Spool() as variants:
        if p.paraphrases > 0:
            evalset = read_evalset("data/eval/evalset.json")
            pairs = augment_pairs(teacher, pairs, p, pii, evalset, config["decontaminate"])
        else:
            pairs = ((pair, [], []) for pair in pairs)
        for pair, new, removed in pairs:   # the originals first, then every variant, as before streaming
            out.keep(pair)
            originals += 1
            for variant in new:
                variants.append(variant)
                rephrased += bool(variant.get("answer_rephrased"))
            for record in removed:
                out.drop(record)
        for variant in variants:
            out.keep(variant)
    finish("augment", originals, out.kept, out.reasons,
           {"paraphrases_kept": out.kept - originals, "answers_rephrased": rephrased},
           teacher, p.max_error_rate,
           summary=f"{originals} pairs + {out.kept - originals} paraphrases = {out.kept}")


if __name__ == "__main__":
    run(main)
