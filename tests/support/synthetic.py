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


SHORT_WORDS = {"in": "on", "on": "in", "to": "of", "of": "to", "is": "as", "at": "on", "by": "at", "it": "is"}
STARTERS_FROM_DOCS = ["How do I", "Why does", "Can I", "What happens when", "Is it true that", "When should I",
                      "What does it mean that", "Where"]


def document_sentences(root):
    """Sentences of 4-16 words from the Markdown and text files under `root`, with
    Markdown's markup characters removed: real vocabulary, numbers, flags and paths."""
    import re
    from pathlib import Path
    sentences = []
    for path in sorted(Path(root).rglob("*")):
        if path.suffix not in (".md", ".txt"):
            continue
        text = re.sub(r"[`*#>|_\[\]]", " ", path.read_text(encoding="utf-8"))
        for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
            words = sentence.strip().rstrip(".!?:").split()
            if 4 <= len(words) <= 16:
                sentences.append(" ".join(words))
    return list(dict.fromkeys(sentences))


def short_token_edit(question, rng):
    """The question with one short token changed: a number (10 -> 11), a version
    (v2 -> v3) or a two-letter word (in -> on); None when it has none."""
    import re
    words = question.rstrip("?").split()
    spots = [k for k, w in enumerate(words) if re.search(r"\d", w) or w.lower() in SHORT_WORDS]
    if not spots:
        return None
    k = rng.choice(spots)
    w = words[k]
    if re.search(r"\d", w):
        words[k] = re.sub(r"\d(?!.*\d)", lambda m: str((int(m.group()) + 1) % 10), w)
    else:
        words[k] = SHORT_WORDS[w.lower()]
    return " ".join(words) + "?"


def document_questions(root, n, seed=0, edit_share=0.25):
    """`n` questions made from the documents' sentences ("Can I" + a sentence);
    `edit_share` of them are edits of an earlier one: half short-token edits,
    half near copies (case, a word dropped, added or swapped, a typo)."""
    rng = random.Random(seed)
    sentences = document_sentences(root)
    out = []
    while len(out) < n:
        if out and rng.random() < edit_share:
            source = rng.choice(out)
            edited = short_token_edit(source, rng) if rng.random() < 0.5 else near_copy(source, rng)
            if edited:
                out.append(edited)
            continue
        sentence = rng.choice(sentences)
        out.append(f"{rng.choice(STARTERS_FROM_DOCS)} {sentence[0].lower()}{sentence[1:]}?")
    return out
