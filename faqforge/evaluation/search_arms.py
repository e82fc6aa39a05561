"""Answers that need no model: what the search results alone tell a user.

Every evaluation scores these beside the students, because a bot is only worth
its cost if it answers better than showing the passages it was given:

- `top_passage`: the first retrieved passage, as it is, citing [1];
- `best_sentence`: the one sentence of the retrieved passages that shares the
  most content words (stemmed) with the question; ties go to the higher-ranked
  passage, then the earlier sentence;
- `oracle_sentence`, a ceiling and not a system: the sentence closest to the
  reference by token F1, chosen with the reference's help (on a question the
  documents do not answer, the refusal). It shows how much of the answer the
  search results hold.
"""

from faqforge.core.chat_format import REFUSAL
from faqforge.documents.retrieval import sentences
from faqforge.evaluation.factual import content_terms
from faqforge.evaluation.token_f1 import token_scores


def _candidates(hits):
    """(passage number, sentence) for every sentence of the retrieved passages, in rank order."""
    return [(n, s) for n, hit in enumerate(hits, start=1) for s in sentences(hit["text"])]


def top_passage(hits):
    """The first passage verbatim with its citation; empty when nothing was retrieved."""
    return f"{hits[0]['text'].strip()} [1]" if hits else ""


def best_sentence(question, hits):
    """The sentence sharing the most content words with the question (stemmed), citing its passage."""
    wanted = content_terms(question)
    scored = [(len(content_terms(s) & wanted), -i, n, s) for i, (n, s) in enumerate(_candidates(hits))]
    if not scored:
        return ""
    _, _, n, s = max(scored)
    return f"{s} [{n}]"


def oracle_sentence(reference, hits, answerable=True):
    """The ceiling: the sentence of the passages with the best token F1 against
    the reference (the refusal on an unanswerable question)."""
    if not answerable:
        return REFUSAL
    scored = [(token_scores(reference, s)["f1"], -i, n, s) for i, (n, s) in enumerate(_candidates(hits))]
    if not scored:
        return ""
    _, _, n, s = max(scored)
    return f"{s} [{n}]"


def search_answers(evalset, hits):
    """{arm: [{"text": answer}]} for the three arms that need no model."""
    return {"top_passage": [{"text": top_passage(h)} for h in hits],
            "best_sentence": [{"text": best_sentence(item["question"], h)} for item, h in zip(evalset, hits)],
            "oracle_sentence": [{"text": oracle_sentence(item["answer"], h, item.get("answerable", True))}
                                for item, h in zip(evalset, hits)]}
