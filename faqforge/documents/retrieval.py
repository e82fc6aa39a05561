"""Retrieval over the chunks: the passages a question is answered from.

The `index` stage cuts each chunk of data/chunks.jsonl into passages of whole
sentences (at most `index.passage_words` words; 0 keeps whole chunks) and
indexes them in data/index/:

  bm25    lexical, with bm25s (no model, nothing to download; the default)
  dense   embeddings from an OpenAI-compatible /v1/embeddings endpoint (vLLM,
          TEI, Ollama, a hosted API) or a local sentence-transformers checkpoint
  hybrid  both, fused by reciprocal rank (score = sum of 1 / (rrf_k + rank))

What is indexed is each passage with its section path in front (`with_section`,
on by default): a heading names what its passages are about in words a question
uses ("Installing", "Remote storage"), which the passages themselves often
leave out. The text shown to the model is the passage alone. Every hit is a
passage with its provenance: chunk id, document, section and pages.
data/index/index.json records how the index was built, so whoever queries it
later (evaluate, chat, serve) embeds questions the same way.
"""

import json
import re
from pathlib import Path

import numpy as np

from faqforge.core.io import PipelineError, atomic_path, read_jsonl, write_json, write_jsonl
from faqforge.core.records import normalise
from faqforge.models.encoders import encoder_directory

INDEX = "data/index"
ENCODER_CARD = "retriever.json"   # beside a trained encoder: what it was trained from
PROVENANCE = ("passage_id", "chunk_id", "doc", "section", "pages")
_SENTENCE = re.compile(r"[^\n]+?(?:[.!?:;](?=\s)|$)", re.M)   # up to a sentence end before a space, or the line's end


def sentence_spans(text):
    """(start, end) of each sentence (and line) of `text`, surrounding space left out."""
    spans = []
    for match in _SENTENCE.finditer(text):
        piece = match.group()
        start = match.start() + len(piece) - len(piece.lstrip())
        end = match.start() + len(piece.rstrip())
        if start < end:
            spans.append((start, end))
    return spans


def sentences(text):
    """A text's sentences (and lines), whitespace kept inside each."""
    return [text[start:end] for start, end in sentence_spans(text)]


def chunk_passages(chunk, max_words):
    """The passages of one chunk: runs of whole sentences of at most
    `max_words` words (a longer sentence is a passage alone); max_words 0
    keeps the chunk whole. Ids are `<chunk_id>:<n>`."""
    if not max_words:
        pieces = [chunk["text"].strip()]
    else:
        pieces, current, words = [], [], 0
        for sentence in sentences(chunk["text"]):
            n = len(sentence.split())
            if current and words + n > max_words:
                pieces.append(" ".join(current))
                current, words = [], 0
            current.append(sentence)
            words += n
        if current:
            pieces.append(" ".join(current))
    return [{"passage_id": f"{chunk['chunk_id']}:{n}", "chunk_id": chunk["chunk_id"], "doc": chunk["doc"],
             "section": chunk.get("section"), "pages": chunk.get("pages"), "text": text}
            for n, text in enumerate(pieces)]


def indexed_text(passage, with_section=True):
    """What the index sees of a passage: its section path (the headings above
    it, `Guide > Installing`) and its text, or the text alone."""
    section = passage.get("section") if with_section else None
    return f"{section}\n{passage['text']}" if section else passage["text"]


# --- lexical ---------------------------------------------------------------------------

class Bm25:
    """bm25s over the normalised text (case, accents and punctuation folded), with
    stop words left out and words stemmed, so `Installs` finds `installing`."""

    def __init__(self, stopwords="en", stemmer="english", k1=1.5, b=0.75):
        self.stopwords, self.stemmer_name, self.k1, self.b = stopwords, stemmer, k1, b
        self.model = self._stem = None

    def _stemmer(self):
        if not self.stemmer_name:
            return None
        if self._stem is not None:
            return self._stem
        import Stemmer
        try:
            self._stem = Stemmer.Stemmer(self.stemmer_name)
            return self._stem
        except KeyError:
            raise PipelineError(f"params.yaml: index.bm25.stemmer: no stemmer {self.stemmer_name!r}; choose one of "
                                f"{', '.join(Stemmer.algorithms())}, or null for none") from None

    def tokens(self, texts, ids=False):
        import bm25s
        return bm25s.tokenize([normalise(t) for t in texts], token_pattern=r"(?u)\b\w+\b",
                              stopwords=self.stopwords or [], stemmer=self._stemmer(), return_ids=ids,
                              show_progress=False)

    def build(self, texts):
        import bm25s
        tokenized = self.tokens(texts, ids=True)
        # bm25s numbers the vocabulary in the order of a set, which Python's hash seed changes from
        # run to run: numbered in sorted order, the same passages give the same index files.
        words = {i: word for word, i in tokenized.vocab.items()}
        vocab = {word: n for n, word in enumerate(sorted(tokenized.vocab))}
        ids = [[vocab[words[i]] for i in doc] for doc in tokenized.ids]
        self.model = bm25s.BM25(k1=self.k1, b=self.b)
        self.model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        return self

    def save(self, directory):
        self.model.save(directory)

    def load(self, directory):
        import bm25s
        self.model = bm25s.BM25.load(directory)
        return self

    def search(self, queries, k):
        """Per query: [(passage row, score)] best first, at most k, none scoring 0."""
        n = self.model.scores["num_docs"]
        k = min(k, n)
        if not queries or not k:
            return [[] for _ in queries]
        rows, scores = self.model.retrieve(self.tokens(queries), k=k, show_progress=False, n_threads=1)
        return [[(int(r), float(s)) for r, s in zip(row, score) if s > 0] for row, score in zip(rows, scores)]


# --- dense -----------------------------------------------------------------------------

class Embedder:
    """Text to unit vectors: a local sentence-transformers checkpoint (a path, or
    embedded:all-minilm-l6-v2), or a model behind an OpenAI-compatible
    /v1/embeddings endpoint (base_url)."""

    def __init__(self, model, base_url=None, api_key_env="OPENAI_API_KEY", batch_size=64):
        if not model:
            raise PipelineError("params.yaml: index.dense.model: dense and hybrid retrieval need a model: a local "
                                "sentence-transformers checkpoint directory, or with index.dense.base_url the "
                                "name the embedding server serves")
        self.model, self.base_url, self.api_key_env, self.batch_size = model, base_url, api_key_env, batch_size
        self._local = self._server = None

    def settings(self):
        return {"model": self.model, "base_url": self.base_url, "api_key_env": self.api_key_env,
                "batch_size": self.batch_size}

    def __call__(self, texts):
        vectors = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start:start + self.batch_size]
            vectors.append(self._remote(batch) if self.base_url else self._local_encode(batch))
        matrix = np.concatenate(vectors) if vectors else np.zeros((0, 1), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)

    def _remote(self, batch):
        from faqforge.models.served import Server
        if self._server is None:
            self._server = Server(self.base_url, self.api_key_env, where="params.yaml: index.dense.base_url",
                                  override="use a loopback or https URL", max_retries=3)
        return self._server.embed(self.model, batch)

    def _local_encode(self, batch):
        if self._local is None:
            try:
                directory = encoder_directory(self.model)
            except PipelineError as error:
                raise PipelineError(f"params.yaml: index.dense.model: {error}") from None
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise PipelineError("index.dense: a local embedding model needs the sentence-transformers "
                                    "package: pip install sentence-transformers") from None
            self._local = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        return np.asarray(self._local.encode(batch, batch_size=self.batch_size, show_progress_bar=False),
                          dtype=np.float32)


def dense_search(matrix, query_vectors, k):
    """Per query: [(row, cosine)] best first."""
    if not len(matrix):
        return [[] for _ in query_vectors]
    scores = query_vectors @ matrix.T
    k = min(k, matrix.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    out = []
    for q, rows in enumerate(top):
        rows = rows[np.argsort(-scores[q, rows], kind="stable")]
        out.append([(int(r), float(scores[q, r])) for r in rows])
    return out


def reciprocal_rank_fusion(rankings, k, rrf_k=60):
    """Fuse several [(row, score)] rankings of one query: each row scores
    sum(1 / (rrf_k + rank)) over the rankings it appears in (rank from 1)."""
    fused = {}
    for ranking in rankings:
        for rank, (row, _) in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]


# --- the index on disk -----------------------------------------------------------------

def build_index(chunks, params, directory=INDEX):
    """Cut the chunks into passages, index them as `params` (the index section)
    say, and write everything to `directory`. Returns the manifest."""
    method = params.method
    passages = [p for chunk in chunks for p in chunk_passages(chunk, params.passage_words)]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_jsonl(directory / "passages.jsonl", passages)
    with_section = params.with_section
    texts = [indexed_text(p, with_section) for p in passages]
    manifest = {"method": method, "passages": len(passages), "chunks": len(chunks),
                "passage_words": params.passage_words, "with_section": with_section, "rrf_k": params.rrf_k}
    if method in ("bm25", "hybrid"):
        bm = params.bm25
        Bm25(bm.stopwords, bm.stemmer, bm.k1, bm.b).build(texts).save(directory / "bm25")
        manifest["bm25"] = bm.model_dump()
    if method in ("dense", "hybrid"):
        d = params.dense
        embedder = Embedder(d.model, d.base_url, d.api_key_env, d.batch_size)
        vectors = embedder(texts)
        with atomic_path(directory / "dense.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, vectors)
        manifest["dense"] = {**embedder.settings(), "dimensions": int(vectors.shape[1]) if len(vectors) else 0}
    write_json(directory / "index.json", manifest)
    return manifest


class Retriever:
    """A built index, loaded for questions: `search(questions, k)` gives, per
    question, up to k passages (dicts with text and provenance, `score` and
    `rank` from 1), best first."""

    def __init__(self, directory=INDEX):
        directory = Path(directory)
        manifest = directory / "index.json"
        if not manifest.exists():
            raise PipelineError(f"{manifest}: no retrieval index there; build it with `dvc repro index`")
        self.manifest = json.loads(manifest.read_text(encoding="utf-8"))
        self.passages = read_jsonl(directory / "passages.jsonl")
        self.method = self.manifest["method"]
        self.abstain_below = self.manifest.get("abstain_below")   # the bot's support threshold (index stage)
        self.abstention = self.manifest.get("abstention")         # how it was chosen, on which questions
        self.bm25 = self.embedder = self.vectors = None
        if self.method in ("bm25", "hybrid"):
            bm = self.manifest["bm25"]
            self.bm25 = Bm25(bm["stopwords"], bm["stemmer"], bm["k1"], bm["b"]).load(directory / "bm25")
        if self.method in ("dense", "hybrid"):
            d = self.manifest["dense"]
            self.embedder = Embedder(d["model"], d["base_url"], d["api_key_env"], d["batch_size"])
            self.vectors = np.load(directory / "dense.npy")

    def rankings(self, questions, k, query_vectors=None):
        """Per question: [(passage row, score)], best first (`query_vectors`: the
        questions already embedded, for dense and hybrid)."""
        if self.method == "bm25":
            return self.bm25.search(questions, k)
        depth = k if self.method == "dense" else max(4 * k, 20)  # fusion needs more than the top k of each
        if query_vectors is None:
            query_vectors = self.embedder(list(questions))
        dense = dense_search(self.vectors, query_vectors, depth)
        if self.method == "dense":
            return dense
        lexical = self.bm25.search(questions, depth)
        return [reciprocal_rank_fusion([lex, den], k, self.manifest["rrf_k"]) for lex, den in zip(lexical, dense)]

    def search(self, questions, k):
        """Per question, its top k passages; with an encoder each also has its
        `similarity`, the cosine of the question and the passage as indexed."""
        vectors = self.embedder(list(questions)) if self.embedder is not None and questions else None
        found = []
        for i, ranking in enumerate(self.rankings(questions, k, vectors)):
            hits = [{**self.passages[row], "score": score, "rank": rank}
                    for rank, (row, score) in enumerate(ranking, start=1)]
            if vectors is not None:
                for hit, (row, _) in zip(hits, ranking):
                    hit["similarity"] = round(float(vectors[i] @ self.vectors[row]), 6)
            found.append(hits)
        return found
