"""Fuzzy matching with thefuzz's scores, without scoring every pair.

`similar_pairs(texts)` finds the pairs of one list that score at least a
threshold (dedup); `similar_pairs(texts, others)` the pairs across two lists
(decontamination against the eval set). Small searches score every pair with
rapidfuzz's vectorised `cdist`. Larger ones go through a word index that
proposes only pairs sharing a rare word, exactly or within one typo (prefix
filtering, as in set-similarity joins), drop the candidates that character
counts rule out, and score the rest. Every pair is confirmed with thefuzz's
scorer of the same name, so decisions are thefuzz's.
"""

from array import array

import numpy as np
from rapidfuzz import fuzz as rf_fuzz
from rapidfuzz import process, utils
from thefuzz import fuzz as thefuzz_fuzz

from faqforge.io import PipelineError

SCORERS = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio")
ALL_PAIRS_UP_TO = 500_000  # pairs; above this the word index proposes the candidates
HISTOGRAM_BUCKETS = 64


def check_scorer(scorer, where):
    if scorer not in SCORERS:
        raise PipelineError(f"params.yaml: {where} must be one of {', '.join(SCORERS)}, got {scorer!r}")


def processed(texts, scorer):
    """What rapidfuzz should compare: thefuzz lower-cases and drops punctuation
    for the token scorers only."""
    return list(texts) if scorer in ("ratio", "partial_ratio") else [utils.default_process(t) for t in texts]


def similar_pairs(texts, others=None, scorer="token_set_ratio", threshold=90, all_pairs_up_to=ALL_PAIRS_UP_TO):
    """(i, j, score) with thefuzz score >= `threshold`: i < j within `texts`, or
    i in `texts` and j in `others` when given."""
    left = processed(texts, scorer)
    right = left if others is None else processed(others, scorer)
    # thefuzz rounds the score, so 89.5 counts as 90: search just below the threshold.
    cutoff = threshold - 0.5
    n_pairs = len(left) * (len(left) - 1) // 2 if others is None else len(left) * len(right)
    if n_pairs <= all_pairs_up_to:
        candidates = all_pairs_above(left, None if others is None else right, scorer, cutoff)
    else:
        candidates = indexed_pairs_above(left, None if others is None else right, scorer, cutoff)
    confirm = getattr(thefuzz_fuzz, scorer)
    right_raw = texts if others is None else others
    found = []
    for i, j in candidates:
        score = confirm(texts[i], right_raw[j])
        if score >= threshold:
            found.append((i, j, score))
    return sorted(found)


def all_pairs_above(left, right, scorer, cutoff, block=2048):
    """(i, j) scoring at least `cutoff` in rapidfuzz, every pair scored in row blocks."""
    targets = left if right is None else right
    for start in range(0, len(left), block):
        scores = process.cdist(left[start:start + block], targets, scorer=getattr(rf_fuzz, scorer),
                               score_cutoff=cutoff, dtype=np.float32, workers=-1)
        for r, j in zip(*np.nonzero(scores)):
            if right is not None or start + r < j:
                yield start + int(r), int(j)


def word_features(word):
    """The word and, for words of 4+ letters, every one-letter deletion of it: two
    words within one typo, plural s or swapped letter share a feature."""
    if len(word) < 4:
        return {word}
    return {word} | {word[:k] + word[k + 1:] for k in range(len(word))}


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
        self.words = [sorted(set(utils.default_process(t).split())) for t in texts]
        compared = {"token_set_ratio": [" ".join(ws) for ws in self.words],
                    "token_sort_ratio": [" ".join(t.split()) for t in texts]}.get(scorer, texts)
        self.counts = char_histograms(compared)
        self.lengths = np.array([len(t) for t in compared])
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


def could_reach(scorer, cutoff, counts, length, other_counts, other_lengths, shared):
    """Mask: which of the other texts might score `cutoff` or more with this one.

    An insertion or deletion changes one character count by one, so the L1
    distance of two texts' character counts bounds their Indel distance from
    below: that rules out most pairs for ratio and token_sort_ratio. For
    token_set_ratio a pair also reaches the cutoff when the words both texts
    have (`shared`, an upper bound on their characters) make up t/(2-t) of
    either text. Both are necessary conditions for rapidfuzz's formulas;
    partial_ratio has no such bound and passes everything."""
    if scorer == "partial_ratio":
        return np.ones(len(other_lengths), dtype=bool)
    t = cutoff / 100
    distance = np.abs(counts - other_counts).sum(axis=1)
    close = distance <= (1 - t) * (length + other_lengths) + 1e-9  # ratio of the two (sorted) strings
    if scorer != "token_set_ratio":
        return close
    return close | (shared - 1 >= t / (2 - t) * np.minimum(length, other_lengths) - 1e-9)


def indexed_pairs_above(left, right, scorer, cutoff):
    """(i, j) scoring at least `cutoff` in rapidfuzz, among the pairs the word
    index proposes. Each side probes the other's index, since a pair can reach
    the cutoff through either text's share of shared words.

    For token_set_ratio the search is exact whenever the shared words carry the
    score, and typos or plurals are caught in words of 4+ letters. A pair that
    reaches the threshold only because short differing words look alike letter
    by letter ("why ... 10" vs "how ... 11") can be missed; for partial_ratio,
    which matches fragments of words, more such pairs can be. tests/test_fuzzy.py
    and bench/dedup.py compare the result with the exhaustive search.
    """
    t = cutoff / 100
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
            hits = hits[could_reach(scorer, cutoff, query.counts[q], query.lengths[q], target.counts[hits],
                                    target.lengths[hits], shared)]
            if right is None:
                codes.append(np.minimum(hits, q) * n_target + np.maximum(hits, q))
            elif flip:
                codes.append(hits * len(right) + q)
            else:
                codes.append(q * n_target + hits)
    width = len(left) if right is None else len(right)
    yield from score_candidates(left, left if right is None else right, codes, width, scorer, cutoff)


def score_candidates(left, right, codes, width, scorer, cutoff):
    """(i, j) for the candidate codes i * width + j scoring at least `cutoff`."""
    if not codes:
        return
    codes = np.unique(np.concatenate(codes))
    firsts, seconds = codes // width, codes % width
    bounds = np.flatnonzero(np.diff(firsts)) + 1
    rf_scorer = getattr(rf_fuzz, scorer)
    for group in np.split(np.arange(len(codes)), bounds):
        if not len(group):
            continue
        i = int(firsts[group[0]])
        partners = seconds[group]
        scores = process.cdist([left[i]], [right[j] for j in partners], scorer=rf_scorer, score_cutoff=cutoff,
                               dtype=np.float32)[0]
        for j in partners[np.nonzero(scores)[0]]:
            yield i, int(j)
