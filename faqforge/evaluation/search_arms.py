"""Answers made of the search results, no model writing: the bot's evidence-first
answer, and what the search results alone tell a user.

The bot (`evidence`, faqforge.documents.evidence) quotes the sentences of the
passages that share most words with the question, or refuses when the
passages hold too few of the question's words (its support, below the index's
threshold). Every evaluation scores these
beside the students, because a bot is only worth its cost if it answers better
than showing the passages it was given, with no model at all:

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
from faqforge.documents.evidence import evidence_reply, select_evidence
from faqforge.documents.retrieval import sentences
from faqforge.evaluation.token_f1 import token_scores


def _candidates(hits):
    """(passage number, sentence) for every sentence of the retrieved passages, in rank order."""
    return [(n, s) for n, hit in enumerate(hits, start=1) for s in sentences(hit["text"])]


def top_passage(hits):
    """The first passage verbatim with its citation; empty when nothing was retrieved."""
    return f"{hits[0]['text'].strip()} [1]" if hits else ""


def best_sentence(question, hits):
    """The sentence sharing the most content words with the question (stemmed), citing its
    passage: the bot's choice of evidence (faqforge.documents.evidence) with one sentence,
    never abstaining."""
    chosen = select_evidence(question, hits, max_sentences=1)
    return f"{chosen['quote']} [{chosen['n']}]" if chosen else ""


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


def search_answers(evalset, hits, abstain_below=None):
    """{arm: [{"text": answer}]} for the bot's evidence (abstaining below `abstain_below`)
    and the three arms that need no model."""
    return {"evidence": [{"text": evidence_reply(x["question"], h, abstain_below)} for x, h in zip(evalset, hits)],
            "top_passage": [{"text": top_passage(h)} for h in hits],
            "best_sentence": [{"text": best_sentence(item["question"], h)} for item, h in zip(evalset, hits)],
            "oracle_sentence": [{"text": oracle_sentence(item["answer"], h, item.get("answerable", True))}
                                for item, h in zip(evalset, hits)]}
