"""Generated Q&A pairs with planted near-duplicates and eval leaks, for tests and benchmarks."""

import random

STARTERS = ["How do I", "What is", "Why does", "Can I", "Where do I", "When should I", "How can I", "What happens if I"]
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "den", "gar", "pol", "tri", "ux", "zen", "bro", "fla"]


def vocabulary(size, rng):
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def near_copy(question, rng):
    """A rewording a person would call the same question: case, punctuation, one word
    dropped, added or swapped, or a typo."""
    words = question.rstrip("?").split()
    kind = rng.choice(["case", "drop", "add", "swap", "typo"])
    i = rng.randrange(2, len(words))
    if kind == "case":
        return question.lower().replace("?", " ?!")
    if kind == "drop" and len(words) > 6:
        del words[i]
    elif kind == "add":
        words.insert(i, rng.choice(["exactly", "really", "also", "still"]))
    elif kind == "swap" and i + 1 < len(words):
        words[i], words[i + 1] = words[i + 1], words[i]
    else:
        w = words[i]
        words[i] = w[:-1] + ("x" if w[-1] != "x" else "y")
    return " ".join(words) + "?"


def pairs(n, duplicate_share=0.1, seed=0, vocab_size=5000):
    """n pairs with realistic lengths (questions 6-18 words, answers 12-45 words);
    `duplicate_share` of them are near copies of an earlier question (`planted_from`)."""
    rng = random.Random(seed)
    vocab = vocabulary(vocab_size, rng)
    out = []
    for i in range(n):
        if out and rng.random() < duplicate_share:
            source = rng.choice(out)
            question = near_copy(source["question"], rng)
            planted = source["id"]
        else:
            question = f"{rng.choice(STARTERS)} {' '.join(rng.choices(vocab, k=rng.randint(4, 15)))}?"
            planted = None
        answer = " ".join(rng.choices(vocab, k=rng.randint(12, 45))).capitalize() + "."
        record = {"id": f"p{i}", "chunk_id": f"c{i // 3}", "doc": f"d{i % 50}", "question": question,
                  "answer": answer}
        if planted:
            record["planted_from"] = planted
        out.append(record)
    return out
