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
