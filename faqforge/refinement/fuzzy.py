"""Fuzzy matching of short texts (questions, answers) without scoring every pair.

`similar_pairs(texts)` finds the pairs of one list scoring at least a threshold
(dedup); `similar_pairs(texts, others)` the pairs across two lists
(decontamination against the eval set). Texts are compared in the form
`records.normalise` gives (case, accents and punctuation folded the same way
on every path), with rapidfuzz's scorers, 0-100:

  ratio             Indel similarity of the two texts
  token_sort_ratio  ratio of the texts with their words sorted: word order ignored
  token_set_ratio   ratio over the words both texts have: a text whose words are all
                    in the other scores 100, however much longer the other is
  partial_ratio     the best-matching fragment of the longer text

Up to `EXHAUSTIVE_UP_TO[scorer]` pairs every pair is scored with rapidfuzz's
`cdist`, skipping for ratio and token_sort_ratio the pairs whose lengths alone
rule them out (an exact bound): the decisions are exact. Larger searches go
through a word index that proposes only pairs sharing a rare word (exactly,
within one typo, or a number of the same shape), drops the candidates that
character counts rule out, and scores the rest. The index can miss a pair
whose similarity lies in letters rather than shared words; its recall against
the exhaustive search is measured in tests/test_fuzzy.py and bench/dedup.py.
"""

import re
from array import array

import numpy as np
from rapidfuzz import fuzz, process

from faqforge.core.records import normalise

# Pairs scored one by one before the word index takes over, about a minute of
# cdist on 2 cores each: 400M pairs is ~28,000 questions against each other
# (bench/dedup.py: 20,000 questions of ~100 characters, 200M pairs, 23.5 s).
EXHAUSTIVE_UP_TO = {"ratio": 400_000_000, "token_sort_ratio": 400_000_000,
                    "token_set_ratio": 25_000_000, "partial_ratio": 10_000_000}
HISTOGRAM_BUCKETS = 64
_DIGIT = re.compile(r"\d")


def compared(texts, scorer):
    """The strings rapidfuzz compares: normalised, words sorted for token_sort_ratio."""
    if scorer == "token_sort_ratio":
        return [" ".join(sorted(normalise(t).split())) for t in texts]
    return [normalise(t) for t in texts]


def rapidfuzz_scorer(scorer):
    """token_sort_ratio is ratio on the word-sorted strings of `compared`."""
    return fuzz.ratio if scorer == "token_sort_ratio" else getattr(fuzz, scorer)


def similar_pairs(texts, others=None, *, scorer, threshold, exhaustive_up_to=None):
    """(i, j, score) with score >= `threshold`, sorted: i < j within `texts`, or i
    in `texts` and j in `others` when given. `exhaustive_up_to` (pairs) overrides
    the scorer's limit for the exhaustive search."""
    left = compared(texts, scorer)
    right = None if others is None else compared(others, scorer)
    n_pairs = len(left) * (len(left) - 1) // 2 if right is None else len(left) * len(right)
    limit = EXHAUSTIVE_UP_TO[scorer] if exhaustive_up_to is None else exhaustive_up_to
    search = all_pairs_above if n_pairs <= limit else indexed_pairs_above
    return sorted((i, j, round(float(s), 1)) for i, j, s in search(left, right, scorer, threshold))


def length_bounds(scorer, threshold):
    """(low, high): for ratio and token_sort_ratio a text of length n can only reach
    `threshold` with texts of length in [n * low, n * high], since the Indel
    distance is at least the difference in length. None for the other scorers."""
    if scorer not in ("ratio", "token_sort_ratio"):
        return None
    t = threshold / 100
    return t / (2 - t) - 1e-9, (2 - t) / t + 1e-9


def all_pairs_above(left, right, scorer, threshold, block=1024):
    """(i, j, score) of every pair scoring at least `threshold`: rows in blocks,
    each against the texts whose lengths could reach it."""
    rf_scorer, bounds = rapidfuzz_scorer(scorer), length_bounds(scorer, threshold)
    targets = left if right is None else right
    rows = sorted(range(len(left)), key=lambda i: len(left[i]))
    cols = rows if right is None else sorted(range(len(right)), key=lambda j: len(right[j]))
    col_lengths = np.array([len(targets[j]) for j in cols])
    col_texts = [targets[j] for j in cols]
    for start in range(0, len(rows), block):
        ids = rows[start:start + block]
        lo, hi = 0, len(cols)
        if bounds:
            lo = int(np.searchsorted(col_lengths, len(left[ids[0]]) * bounds[0], side="left"))
            hi = int(np.searchsorted(col_lengths, len(left[ids[-1]]) * bounds[1], side="right"))
        if right is None:
            lo = start  # rows and columns are the same sorted list: only pairs on or above the diagonal
        if lo >= hi:
            continue
        scores = process.cdist([left[i] for i in ids], col_texts[lo:hi], scorer=rf_scorer,
                               score_cutoff=threshold, dtype=np.float32, workers=-1)
        for r, c in zip(*np.nonzero(scores)):
            if right is None:
                if start + r >= lo + c:
                    continue
                i, j = sorted((ids[r], cols[lo + c]))
            else:
                i, j = ids[r], cols[lo + c]
            yield i, j, scores[r, c]


def word_features(word):
    """The word; for words of 4+ letters every one-letter deletion of it too (two
    words within one typo, plural s or swapped letter share one); for short words
    with digits their shape (10 and 11 -> ##, v2 and v3 -> v#)."""
    if len(word) >= 4:
        return {word} | {word[:k] + word[k + 1:] for k in range(len(word))}
    return {word, _DIGIT.sub("#", word)}


def char_histograms(texts):
    """Character counts per text, characters folded into 64 buckets. Folding only
    makes the bounds in `could_reach` looser, never wrong."""
    counts = np.zeros((len(texts), HISTOGRAM_BUCKETS), dtype=np.int32)
    for i, text in enumerate(texts):
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) % HISTOGRAM_BUCKETS
        counts[i] = np.bincount(codes, minlength=HISTOGRAM_BUCKETS)
    return counts


class WordIndex:
    """Texts' words, their postings (feature -> ids of the texts having it) and
    the character counts of the strings the scorer compares."""

    def __init__(self, texts, scorer):
        self.words = [sorted(set(t.split())) for t in texts]
        self.compared = [" ".join(ws) for ws in self.words] if scorer == "token_set_ratio" else texts
        self.counts = char_histograms(self.compared)
        self.lengths = np.array([len(t) for t in self.compared])
        # Postings in one sorted array (CSR): far less memory than a list per feature.
        self.feature_id, feature_ids, text_ids = {}, array("q"), array("q")
        for i, ws in enumerate(self.words):
            for feature in set().union(*map(word_features, ws)):
                feature_ids.append(self.feature_id.setdefault(feature, len(self.feature_id)))
                text_ids.append(i)
        feature_ids = np.frombuffer(feature_ids, dtype=np.int64) if feature_ids else np.zeros(0, dtype=np.int64)
        order = np.argsort(feature_ids, kind="stable")
        self.text_ids = (np.frombuffer(text_ids, dtype=np.int64)[order] if text_ids
                         else np.zeros(0, dtype=np.int64))
        self.offsets = np.searchsorted(feature_ids[order], np.arange(len(self.feature_id) + 1))
        self.empty = np.zeros(0, dtype=np.int64)
        self.weight = np.zeros(len(texts), dtype=np.int64)  # scratch for `shared_characters`
        self.common = max(1000, len(texts) // 50)

    def postings_of(self, feature):
        """Ids of the texts having `feature`, ascending."""
        k = self.feature_id.get(feature)
        return self.empty if k is None else self.text_ids[self.offsets[k]:self.offsets[k + 1]]

    def probe(self, words, share):
        """The features of a query's rarest words (rarest in this index), just
        enough that the words left over make up less than `share` of the query:
        a text sharing `share` of the query's characters in whole words shares
        one of these words."""
        rarity = sorted(range(len(words)), key=lambda k: (len(self.postings_of(words[k])), words[k]))
        left = sum(len(w) + 1 for w in words)  # characters of the words not probed yet
        need = share * (left - 1)
        probe = set()
        for k in rarity:
            probe |= word_features(words[k])
            left -= len(words[k]) + 1
            if left < need:
                break
        return probe

    def shared_characters(self, words, ids):
        """For each text in `ids`, an upper bound on the characters (one space per
        word) of `words` it also has. Words found in many texts are counted as
        present everywhere, which keeps it an upper bound and cheap."""
        everywhere, rare = 0, []
        for w in words:
            ids_with_w = self.postings_of(w)
            if len(ids_with_w) > self.common:
                everywhere += len(w) + 1
            else:
                self.weight[ids_with_w] += len(w) + 1
                rare.append(ids_with_w)
        shared = self.weight[ids] + everywhere
        for ids_with_w in rare:
            self.weight[ids_with_w] = 0
        return shared


def could_reach(scorer, threshold, counts, length, other_counts, other_lengths, shared):
    """Mask: which of the other texts might score `threshold` or more with this one.

    An insertion or deletion changes one character count by one, so the L1
    distance of two texts' character counts bounds their Indel distance from
    below: that rules out most pairs for ratio and token_sort_ratio. For
    token_set_ratio a pair also reaches the threshold when the words both texts
    have (`shared`, an upper bound on their characters) make up t/(2-t) of
    either text. Both are necessary conditions for rapidfuzz's formulas;
    partial_ratio has no such bound and passes everything."""
    if scorer == "partial_ratio":
        return np.ones(len(other_lengths), dtype=bool)
    t = threshold / 100
    distance = np.abs(counts - other_counts).sum(axis=1)
    close = distance <= (1 - t) * (length + other_lengths) + 1e-9
    if scorer != "token_set_ratio":
        return close
    return close | (shared - 1 >= t / (2 - t) * np.minimum(length, other_lengths) - 1e-9)


def indexed_pairs_above(left, right, scorer, threshold):
    """(i, j, score) scoring at least `threshold`, among the pairs the word index
    proposes. Each side probes the other's index, since a pair can reach the
    threshold through either text's share of shared words.

    For token_set_ratio the search is exact whenever the shared words carry the
    score. For ratio and token_sort_ratio a pair reaching the threshold through
    letters of different words ("lora" and "qlora", "push" and "pull") rather
    than shared words can be missed; for partial_ratio, which matches fragments
    of words, more such pairs can be.
    """
    t = threshold / 100
    share = t / (2 - t)
    one = WordIndex(left, scorer)
    other = one if right is None else WordIndex(right, scorer)
    codes = []
    for query, target, flip in ((one, other, False),) if right is None else ((one, other, False),
                                                                             (other, one, True)):
        n_target = len(target.words)
        for q, words in enumerate(query.words):
            if not words:
                continue
            hits = np.unique(np.concatenate(
                [target.postings_of(f) for f in target.probe(words, share)] or [target.empty]))
            if right is None:
                hits = hits[hits != q]
            shared = target.shared_characters(words, hits)
            hits = hits[could_reach(scorer, threshold, query.counts[q], query.lengths[q], target.counts[hits],
                                    target.lengths[hits], shared)]
            if right is None:
                codes.append(np.minimum(hits, q) * n_target + np.maximum(hits, q))
            elif flip:
                codes.append(hits * len(right) + q)
            else:
                codes.append(q * n_target + hits)
    width = len(left) if right is None else len(right)
    yield from score_candidates(left, left if right is None else right, codes, width, scorer, threshold)


def score_candidates(left, right, codes, width, scorer, threshold):
    """(i, j, score) for the candidate codes i * width + j scoring at least `threshold`."""
    if not codes:
        return
    codes = np.unique(np.concatenate(codes))
    firsts, seconds = codes // width, codes % width
    bounds = np.flatnonzero(np.diff(firsts)) + 1
    rf_scorer = rapidfuzz_scorer(scorer)
    for group in np.split(np.arange(len(codes)), bounds):
        if not len(group):
            continue
        i = int(firsts[group[0]])
        partners = seconds[group]
        scores = process.cdist([left[i]], [right[j] for j in partners], scorer=rf_scorer, score_cutoff=threshold,
                               dtype=np.float32)[0]
        for k in np.nonzero(scores)[0]:
            yield i, int(partners[k]), scores[k]
