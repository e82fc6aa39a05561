from faqforge.decontaminate import contamination, ngrams

EVAL = [{"question": "How do I save my data and models to S3?",
         "answer": "Install dvc-s3, add the bucket with dvc remote add -d storage s3://bucket/path, and run dvc push."}]


def test_ngrams_normalised():
    assert ngrams("A, b. C d!", 3) == {"a b c", "b c d"}


def test_shared_13_gram_in_answer_is_removed_with_evidence():
    leaked = {"id": "x", "question": "What's the S3 recipe?",
              "answer": "You install dvc-s3, add the bucket with dvc remote add -d storage s3://bucket/path, and run dvc push."}
    clean, dropped = contamination([leaked], EVAL, n=13, question_threshold=95)
    assert clean == []
    assert dropped[0]["eval_index"] == 0 and "13-gram" in dropped[0]["why"]
    assert dropped[0]["dropped_by"] == "decontaminate"


def test_fuzzy_question_match_is_removed():
    near = {"id": "y", "question": "How do I save data and models to S3?", "answer": "Use a remote."}
    clean, dropped = contamination([near], EVAL, n=13, question_threshold=85)
    assert clean == [] and "token_set_ratio" in dropped[0]["why"]


def test_unrelated_pair_is_kept():
    ok = {"id": "z", "question": "What is a LoRA rank?", "answer": "The rank of the low-rank update."}
    clean, dropped = contamination([ok], EVAL, n=13, question_threshold=85)
    assert clean == [ok] and dropped == []


def test_planted_leaks_are_caught_and_nothing_else():
    import random

    from synthetic import near_copy
    from synthetic import pairs as synthetic_pairs
    rng = random.Random(5)
    evalset = [{"question": p["question"], "answer": p["answer"]} for p in synthetic_pairs(40, 0, seed=11)]
    data = synthetic_pairs(300, 0, seed=12)
    leaks = {
        "verbatim": {**data[0], "question": evalset[0]["question"], "answer": evalset[0]["answer"]},
        "reworded question": {**data[1], "question": near_copy(evalset[1]["question"], rng)},
        "answer copied": {**data[2], "answer": "In short: " + evalset[2]["answer"]},
    }
    for k, (name, leak) in enumerate(leaks.items()):
        data[k] = {**leak, "id": name}
    clean, dropped = contamination(data, evalset, n=13, question_threshold=85)
    assert {d["id"] for d in dropped} == set(leaks)
    assert {d["id"]: d["eval_index"] for d in dropped} == {"verbatim": 0, "reworded question": 1, "answer copied": 2}
    assert len(clean) == 297
