"""Content words, stemmed: what a question and a sentence share when they are about
the same thing (the evidence's choice of sentence, the word-overlap baseline and
reference recall all count them)."""

from functools import lru_cache

from faqforge.core.records import normalise

# Function words never count as content (English; other languages keep theirs as content).
STOPWORDS = frozenset("""a about after all also an and any are as at be because been before being between both
but by can could did do does doing each either for from had has have having he her here hers him his how i if in
into is it its itself just me more most my no nor not of off on once only or other our out over own same she
should so some such than that the their them then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your yours""".split())


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer
    return Stemmer.Stemmer("english")


def content_stems(text):
    """The text's content words in order, folded (case, accents, punctuation) and stemmed."""
    words = [w for w in normalise(text).split() if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return _stemmer().stemWords(words)


def content_terms(text):
    """The text's content words, stemmed, as a set."""
    return set(content_stems(text))
