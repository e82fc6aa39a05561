"""Evidence first: what of the retrieved passages an answer relies on, chosen
before any answer is written, or the decision that the documents do not cover
the question.

- **Abstention.** Each retrieved passage carries its `similarity` to the question
  (the cosine under the retriever's encoder, faqforge.documents.retrieval). When
  none reaches the threshold the retriever stage chose on the validation pairs
  (`abstention_threshold`, stored with the index), the answer is the refusal.
- **The quote.** Otherwise the sentence of the passages that shares the most
  content words (stemmed) with the question, ties to the higher-ranked passage
  and then the earlier sentence, with the sentence after it in the same passage
  (`max_sentences`): a question's words usually name what a sentence is about,
  the next sentence says more of it. The quote is cut from the passage's own
  text, so it is verbatim by construction, and cites the passage's number.

`evidence_answer` renders the result as the bot's answer: `"<quote>" [n]`, or
the refusal. Evaluation, chat and serve all answer through it.
"""

from faqforge.core.chat_format import REFUSAL
from faqforge.core.terms import content_terms
from faqforge.documents.retrieval import sentence_spans


def select_evidence(question, hits, threshold=None, max_sentences=2):
    """{"quote", "n", "passage", "similarity"} for the passages `hits` (best first),
    or None to abstain: nothing retrieved, or a threshold that no hit's similarity
    reaches (hits without a similarity, from a BM25 index, never abstain)."""
    if not hits:
        return None
    similarity = max((h["similarity"] for h in hits if h.get("similarity") is not None), default=None)
    if threshold is not None and similarity is not None and similarity < threshold:
        return None
    wanted = content_terms(question)
    best = None
    for n, hit in enumerate(hits, start=1):
        spans = sentence_spans(hit["text"])
        for i, (start, end) in enumerate(spans):
            shared = len(content_terms(hit["text"][start:end]) & wanted)
            if best is None or shared > best[0]:
                best = (shared, n, hit, spans[i:i + max_sentences])
    if best is None:
        return None
    _, n, hit, spans = best
    return {"quote": hit["text"][spans[0][0]:spans[-1][1]], "n": n, "passage": hit, "similarity": similarity}


def evidence_answer(chosen):
    """The bot's answer from `select_evidence`'s result: the quote and its citation, or the refusal."""
    if chosen is None:
        return REFUSAL
    return f"\"{chosen['quote']}\" [{chosen['n']}]"


def evidence_reply(question, hits, threshold=None):
    """The bot's evidence-first answer to `question` from its retrieved `hits`: the one
    function evaluation, chat and serve answer through."""
    return evidence_answer(select_evidence(question, hits, threshold))


def abstention_threshold(answerable, unanswerable, max_false_refusals=0.1):
    """The similarity below which to abstain, from the best similarity of questions the
    documents answer (`answerable`) and of questions they do not (`unanswerable`): the
    highest value that refuses at most `max_false_refusals` of the first, so it refuses
    as many of the second as that allows. Returns (threshold, {"false_refusals",
    "refused_unanswerable"} on those lists); (None, {}) without answerable questions."""
    if not answerable:
        return None, {}
    allowed = int(max_false_refusals * len(answerable) + 1e-9)   # answerable questions it may refuse
    threshold = sorted(answerable)[allowed]   # the lowest similarity still answered
    figures = {"false_refusals": round(sum(s < threshold for s in answerable) / len(answerable), 4)}
    if unanswerable:
        figures["refused_unanswerable"] = round(sum(s < threshold for s in unanswerable) / len(unanswerable), 4)
    return threshold, figures
