"""Why a record was dropped: every reason code a stage may write, with what it means.

A drop record (faqforge.core.records.dropped) carries a code from this table as
`reason` and the details of its own case as `why` (the numbers, the duplicate
it was found to copy, the eval item it leaks); some carry a field more for
counting (`language`: the detected code). Metrics and the data report count codes and
those fields; nothing reads the details back. The review screen shows the code,
this meaning and the details.
"""

REASONS = {
    # hygiene (ingest, curate, augment)
    "personal data": "holds personal data or a secret that hygiene.pii drops",
    "language": "written in a language hygiene.languages does not keep",
    # the teacher
    "teacher error": "the teacher's request failed after its retries",
    "no parseable record in the reply": "the teacher's reply held no question/answer record",
    "copies a worked example from the prompt": "the teacher copied a worked example instead of writing its own",
    "repeats the teacher's instructions": "the teacher wrote out its own prompt (a document told it to)",
    # curate's rules
    "empty question or answer": "the question or the answer is empty",
    "question too short": "the question is shorter than curate.rules.min_question_chars",
    "question too long": "the question is longer than curate.rules.max_question_chars",
    "answer too short": "the answer is shorter than curate.rules.min_answer_chars",
    "answer too long": "the answer is longer than curate.rules.max_answer_chars",
    "question does not end with a question mark": "curate.rules.require_question_mark",
    "answer repeats the question": "the answer only restates the question",
    "question repeats itself": "a run of curate.rules.repeated_words words occurs twice (a looping teacher)",
    "answer repeats itself": "a run of curate.rules.repeated_words words occurs twice (a looping teacher)",
    "question refers to a text the user cannot see": "matches curate.rules.reject_patterns",
    "answer refers to a text the user cannot see": "matches curate.rules.reject_patterns",
    "quote not in its chunk": "the pair's quote does not occur in its chunk word for word",
    "low grounding": "too few of the answer's content words are in its chunk (curate.min_grounding)",
    # curate's judge
    "judge NO": "the teacher judged the pair wrong or unsupported",
    "judge score below min_score": "the judge said YES with a score below curate.judge.min_score",
    "judge p_yes or score too low": "P(YES) below curate.judge.min_p_yes (or the score too low)",
    "judge unparsed": "the judge's reply held no verdict (curate.judge.on_unparsed: drop)",
    # dedup
    "exact duplicate": "the same question as a kept pair once normalised",
    "near duplicate": "scores dedup.threshold or more against a kept pair's question",
    # decontaminate (and augment's paraphrases)
    "eval leak: shared n-gram": "shares a decontaminate.ngram-word run with an eval item",
    "eval leak: whole eval answer": "contains the whole of a short eval answer",
    "eval leak: fuzzy question": "its question scores decontaminate.question_threshold against an eval question",
    "eval leak: fuzzy answer": "its answer scores decontaminate.answer_threshold against an eval answer",
    # augment
    "exact copy after normalisation": "a paraphrase equal to the question or to another paraphrase",
    "rephrased answer loses a fact": "the rephrased answer lost a fact (a number, a name, code) of the original",
    # retriever (a training pair that gives the encoder no example)
    "its chunk has no passage in the index": "the pair's chunk was cut into no passage, so nothing to learn it with",
    "no passage of another chunk to contrast it with": "the index holds one chunk only: no negative passage",
    # split (people's review and the source mix)
    "rejected in review": "a person rejected the pair on the review screen",
    "not reviewed": "review.require is on and nobody approved the pair",
    "eval leak after review": "a person's text comes too close to the eval set",
    "duplicate of a person's pair": "near-duplicates a pair a person wrote, which is kept instead",
    "mix: down-weighted": "its source's split.mix weight or max_pairs left it out",
    # finetune
    "longer than max_seq_length": "the example has more tokens than finetune.max_seq_length",
}


def meaning(code):
    """What a reason code means, for people; ValueError for a code no stage writes."""
    if code not in REASONS:
        raise ValueError(f"unregistered drop reason {code!r}: add it to faqforge.core.reasons.REASONS")
    return REASONS[code]
