"""The teacher as judge of the students' answers: one YES/NO verdict with a
1-5 score per answer against the reference, and per question two controls (the
reference itself, known right; another question's reference, known wrong)."""

from faqforge.evaluation.scores import ARMS
from faqforge.teacher.few_shot import few_shot
from faqforge.teacher.verdict import parse_verdict


def judge_messages(question, reference, answer, params):
    """The chat asking the teacher to grade one answer against the reference,
    after the worked examples from params as earlier turns."""
    examples = [({"question": x.question, "reference": x.reference, "answer": x.answer}, x.reply)
                for x in params.examples]
    return few_shot(params.system_prompt, params.user_prompt, examples,
                    {"question": question, "reference": reference, "answer": answer})


def judge_scores(reply, logprobs=None):
    """Per-item judge scores from one reply: `judge_yes` (1/0; P(YES) >= 0.5
    decides when the reply has logprobs, else the written verdict),
    `judge_score` (1-5) and `judge_p_yes`; None where the reply says nothing."""
    verdict = parse_verdict(reply, logprobs)
    if verdict["p_yes"] is not None:
        yes = int(verdict["p_yes"] >= 0.5)
    else:
        yes = None if verdict["result"] is None else int(verdict["result"] == "YES")
    return {"judge_yes": yes, "judge_score": verdict["score"], "judge_p_yes": verdict["p_yes"]}, verdict["reason"]


def judge_answers(teacher, predictions, params):
    """The teacher grades each arm's answer (`params`: evaluate.judge; its `arms`, all when empty) against
    the reference, and two controls per question: the reference itself (known right) and the next
    question's reference (known wrong). The verdicts join each prediction's
    scores, the reasons go beside them."""
    n = len(predictions)
    arms = params.arms or ARMS
    jobs = [(x, arm, x["answers"][arm]) for x in predictions for arm in arms if arm in x["answers"]]
    jobs += [(x, control, answer) for i, x in enumerate(predictions)
             for control, answer in (("right", x["reference"]), ("wrong", predictions[(i + 1) % n]["reference"]))
             if n > 1]
    chats = [judge_messages(x["question"], x["reference"], answer, params) for x, _, answer in jobs]
    replies = teacher.chat(chats, desc="judging answers", top_logprobs=params.top_logprobs,
                           max_tokens=params.max_tokens, temperature=0.0)
    for (x, name, _), reply in zip(jobs, replies):
        scores, reason = judge_scores(reply.get("text"), reply.get("logprobs"))
        target = x["scores"] if name in ARMS else x.setdefault("controls", {})
        target.setdefault(name, {}).update(scores)
        x.setdefault("judge", {})[name] = reason if not reply.get("error") else f"teacher error {reply['error']}"
