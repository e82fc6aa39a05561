"""Evidence first: what of the retrieved passages an answer relies on, chosen
before any answer is written, or the decision that the documents do not cover
the question.

- **Abstention.** A question's `support` is the share of its content words
  (stemmed, faqforge.core.terms) that the passages it retrieved hold, headings
  included: a question about Docker or ONNX asks about words the documents never
  use, however close its retrieved passage is in meaning (the encoder's cosine
  separated answerable from unanswerable questions far less well on the
  calibration set). Below the threshold the index stage chose on the calibration
  questions (`choose_abstention`, stored in data/index/index.json) the answer is
  the refusal.
- **The quote.** Otherwise the sentence of the passages that shares the most
  content words (stemmed) with the question, ties to the higher-ranked passage
  and then the earlier sentence, with the sentence after it in the same passage
  (`max_sentences`): a question's words usually name what a sentence is about,
  the next sentence says more of it. A sentence that asks (an FAQ's own
  question) is never quoted: matching it quotes the statements that follow it,
  and a match with no statement after it in its passage is passed over. The
  quote is cut from the passage's own text, so it is verbatim by construction,
  and cites the passage's number.

`evidence_answer` renders the result as the bot's answer: `"<quote>" [n]`, or
the refusal. Evaluation, chat and serve all answer through it.
"""

from faqforge.core.chat_format import REFUSAL
from faqforge.core.terms import content_terms
from faqforge.documents.retrieval import indexed_text, sentence_spans


def support(question, hits):
    """The share of the question's content words that the passages `hits` hold
    (their text and section path); 1.0 for a question without content words."""
    wanted = content_terms(question)
    if not wanted:
        return 1.0
    held = set().union(*(content_terms(indexed_text(h)) for h in hits)) if hits else set()
    return len(wanted & held) / len(wanted)


def select_evidence(question, hits, threshold=None, max_sentences=2):
    """{"quote", "n", "passage", "support"} for the passages `hits` (best first),
    or None to abstain: nothing retrieved, or the question's `support` in them
    below `threshold`."""
    if not hits:
        return None
    supported = support(question, hits)
    if threshold is not None and supported < threshold:
        return None
    wanted = content_terms(question)
    best = None
    for n, hit in enumerate(hits, start=1):
        spans = sentence_spans(hit["text"])
        asks = [hit["text"][start:end].rstrip().endswith("?") for start, end in spans]
        for i, (start, end) in enumerate(spans):
            quoted = _statements_from(i, asks)[:max_sentences]
            if not quoted:
                continue   # nothing but questions from here to the passage's end: nothing to quote
            shared = len(content_terms(hit["text"][start:end]) & wanted)
            if best is None or shared > best[0]:
                best = (shared, n, hit, [spans[j] for j in quoted])
    if best is None:
        return None
    _, n, hit, spans = best
    return {"quote": hit["text"][spans[0][0]:spans[-1][1]], "n": n, "passage": hit, "support": supported}


def _statements_from(i, asks):
    """The indices of the sentences a match at sentence i quotes: a question states
    nothing (an FAQ's own question matches the user's best, its answer follows), so
    from the first statement at or after i, the statements up to the next question."""
    j = i
    while j < len(asks) and asks[j]:
        j += 1
    quoted = []
    while j < len(asks) and not asks[j]:
        quoted.append(j)
        j += 1
    return quoted


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
    """The support below which to abstain, from the support of questions the
    documents answer (`answerable`) and of questions they do not (`unanswerable`): the
    highest value that refuses at most `max_false_refusals` of the first, so it refuses
    as many of the second as that allows. Returns (threshold, {"false_refusals",
    "refused_unanswerable"} on those lists); (None, {}) without answerable questions."""
    if not answerable:
        return None, {}
    allowed = int(max_false_refusals * len(answerable) + 1e-9)   # answerable questions it may refuse
    threshold = sorted(answerable)[allowed]   # the lowest support still answered
    figures = {"false_refusals": round(sum(s < threshold for s in answerable) / len(answerable), 4)}
    if unanswerable:
        figures["refused_unanswerable"] = round(sum(s < threshold for s in unanswerable) / len(unanswerable), 4)
    return threshold, figures


def choose_abstention(retriever, items, k, max_false_refusals=0.1):
    """(threshold, figures): the support below which the bot says the documents do
    not cover a question, chosen on calibration `items` (eval-set records, some
    with `"answerable": false`) asked of `retriever` for k passages each, as
    `abstention_threshold` chooses; figures count the questions of each kind and
    the shares refused. (None, ...) without answerable questions: never abstain."""
    hits = retriever.search([x["question"] for x in items], k) if items else []
    scored = [(support(x["question"], h), x.get("answerable", True)) for x, h in zip(items, hits)]
    answerable = [s for s, yes in scored if yes]
    unanswerable = [s for s, yes in scored if not yes]
    threshold, figures = abstention_threshold(answerable, unanswerable, max_false_refusals)
    return threshold, {"answerable": len(answerable), "unanswerable": len(unanswerable), **figures}   # unrounded:
    # a support of 2/3 at a threshold of 2/3 rounded up would be refused
