"""Okapi BM25 over a ``Corpus``, in numpy: impact-ordered postings and exact top-k with early stop.

Scoring (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework: BM25 and Beyond",
eq. 3.15 with query-term frequency counted by repetition, as Lucene's and rank_bm25's sums do),
with Lucene's always-positive idf (Lucene ``BM25Similarity``)::

    score(q, d) = Σ_{t ∈ q} impact(t, d)          (a term repeated in q counts once per repeat)
    impact(t, d) = idf(t) · tf(t,d)·(k1 + 1) / (tf(t,d) + k1·(1 − b + b·|d| / avgdl))
    idf(t)       = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))

with ``k1 = 1.5``, ``b = 0.75``, ``N`` the number of documents, ``|d|`` a document's number of
tokens (``tokenize(title + "\\n" + text)``) and ``avgdl`` their mean over the corpus. Only
documents holding at least one query term are hits; ties are broken by row (lower first).

Index: per term, its postings twice, as float32 impacts precomputed at build time: sorted by
row (for random access: ``np.searchsorted``) and sorted by impact, highest first (for sorted
access). Every array is a ``.npy`` file, memory-mapped on load.

Query (exact top-k, early termination), in three steps:

1. Sorted access (the threshold algorithm, Fagin, Lotem & Naor 2001, "Optimal aggregation
   algorithms for middleware"): read the first ``m = max(32, 2k)`` postings of each query
   term's impact-ordered list and score every document named there exactly (random access
   into the row-sorted lists); ``θ`` = the k-th best of these scores, a lower bound on the
   true k-th score. Any other document has, for each term ``t``, an impact at most
   ``U_t = w_t · impact_t[m]`` (the next impact in the list; 0 when the list is used up), so if
   ``Σ_t U_t < θ`` no unseen document can reach θ and the seen ones hold the answer (TA's stop).
2. Otherwise max-score (Turtle & Flood 1995, "Query evaluation: strategies and
   optimizations"): sort the terms by ``U_t``; the longest prefix with ``Σ U_t < θ`` are the
   *lax* terms (a document holding only those cannot reach θ), the rest the *strict* ones.
   Sum the impacts of the strict terms' whole lists term-at-a-time into a dense accumulator
   and keep the documents whose sum plus ``Σ_lax U_t`` reaches θ. Add the lax terms' exact
   impacts one term at a time, largest ``U_t`` first, dropping a document as soon as its sum
   plus the remaining lax bounds falls below θ.
3. Score the survivors and the seen documents exactly, in query-term order, and rank them:
   score descending, then row ascending.

Every document scoring ≥ θ (so every member of the top k, ties included) survives, which makes
the result equal to exhaustive scoring. Scores are sums of the float32 impacts as float64 in
query-term order everywhere; bounds summed in another order get a relative slack of 1e-9, so
rounding can only keep a document longer, never lose one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from horizongym.cache import cached
from horizongym.envs.search.corpus import Corpus
from horizongym.envs.search.tokenize import tokenize, tokenize_many
from horizongym.envs.search.types import Hit

FORMAT = "horizongym-bm25-v1"
K1 = 1.5
B = 0.75
_SLACK = 1e-9  # relative allowance for float64 rounding when bounds are summed in another order


def _batched(items: Iterator[str], size: int) -> Iterator[list[str]]:
    while batch := list(islice(items, size)):
        yield batch


def build_index(
    corpus: Corpus,
    directory: Path | str,
    *,
    k1: float = K1,
    b: float = B,
    chunk_docs: int = 50_000,
    progress: bool = False,
) -> None:
    """Tokenize ``corpus`` and write its BM25 index into the (existing, empty) ``directory``.

    Streams the corpus in chunks of ``chunk_docs`` documents: per chunk, the (row, term, tf)
    triples; then one stable sort by term gives row-sorted postings, and one by
    (term, −impact) the impact-sorted ones. Memory is about 40 bytes per posting.
    """
    directory = Path(directory)
    n_docs = len(corpus)
    vocab: dict[str, int] = {}
    term_parts: list[np.ndarray] = []
    row_parts: list[np.ndarray] = []
    tf_parts: list[np.ndarray] = []
    doc_len = np.zeros(n_docs, dtype=np.int32)
    row = 0
    bar = tqdm(total=n_docs, desc="bm25 index", unit="doc", disable=not progress, mininterval=1.0)
    for chunk in _batched(corpus.texts(), chunk_docs):
        tokens = tokenize_many(chunk)
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        setdefault = vocab.setdefault
        ids = np.fromiter(
            (setdefault(token, len(vocab)) for doc in tokens for token in doc),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        rows = np.repeat(np.arange(row, row + len(chunk), dtype=np.int64), lengths)
        keys, tfs = np.unique((rows << 32) | ids, return_counts=True)  # row-major (row, term) pairs
        row_parts.append((keys >> 32).astype(np.int32))
        term_parts.append((keys & 0xFFFFFFFF).astype(np.int32))
        tf_parts.append(tfs.astype(np.int32))
        doc_len[row : row + len(chunk)] = lengths
        row += len(chunk)
        bar.update(len(chunk))
    bar.close()

    n_terms = len(vocab)
    terms = np.concatenate(term_parts) if term_parts else np.zeros(0, np.int32)
    del term_parts
    order = np.argsort(terms, kind="stable")  # by term, then row (chunks are in row order)
    terms = terms[order]
    doc_rows = np.concatenate(row_parts)[order] if row_parts else np.zeros(0, np.int32)
    del row_parts
    tf = (np.concatenate(tf_parts)[order] if tf_parts else np.zeros(0, np.int32)).astype(np.float64)
    del tf_parts, order

    df = np.bincount(terms, minlength=n_terms).astype(np.float64)
    term_ptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(df.astype(np.int64), out=term_ptr[1:])
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    avgdl = float(doc_len.mean()) if n_docs and doc_len.sum() else 1.0
    norm = k1 * (1.0 - b + b * doc_len.astype(np.float64) / avgdl)
    impacts = tf * (k1 + 1.0)
    impacts /= tf + norm[doc_rows]
    impacts *= idf[terms]
    del tf
    doc_impacts = impacts.astype(np.float32)
    del impacts

    # impact order: by term, then impact descending, then row (a stable sort keeps row order);
    # positive float32 bit patterns sort like their values, so flipping them sorts descending.
    flipped = np.uint64(0xFFFFFFFF) - doc_impacts.view(np.uint32).astype(np.uint64)
    order = np.argsort((terms.astype(np.uint64) << np.uint64(32)) | flipped, kind="stable")
    del flipped, terms
    imp_rows = doc_rows[order]
    imp_impacts = doc_impacts[order]
    del order

    arrays = {
        "term_ptr": term_ptr,
        "doc_rows": doc_rows,
        "doc_impacts": doc_impacts,
        "imp_rows": imp_rows,
        "imp_impacts": imp_impacts,
        "doc_len": doc_len,
    }
    for name, array in arrays.items():
        np.save(directory / f"{name}.npy", array)
    (directory / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    meta = {
        "format": FORMAT,
        "k1": k1,
        "b": b,
        "num_documents": n_docs,
        "num_terms": n_terms,
        "num_postings": len(doc_rows),
        "avgdl": avgdl,
        "corpus_content_hash": corpus.content_hash,
    }
    (directory / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


class _Scratch(threading.local):
    """Per-thread dense score accumulator for exhaustive queries (kept all-zero between queries)."""

    acc: np.ndarray | None = None


class BM25Index:
    """A BM25 index on disk, memory-mapped; ``top_k(tokens, k)`` gives exact (rows, scores)."""

    seed_depth = 32  # postings read from the top of each list first (at least 2·k)
    exhaustive_below = 2048  # queries whose lists hold fewer postings than this are scored fully

    def __init__(self, directory: Path | str, *, mmap: bool = True) -> None:
        self.directory = Path(directory)
        self.meta: dict[str, Any] = json.loads((self.directory / "meta.json").read_text())
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{self.directory} is not a {FORMAT} index")
        mode: Any = "r" if mmap else None

        def load(name: str) -> np.ndarray:  # a plain view: slicing an np.memmap costs microseconds
            return np.load(self.directory / f"{name}.npy", mmap_mode=mode).view(np.ndarray)

        self.term_ptr = load("term_ptr")
        self.doc_rows = load("doc_rows")
        self.doc_impacts = load("doc_impacts")
        self.imp_rows = load("imp_rows")
        self.imp_impacts = load("imp_impacts")
        self.num_documents: int = int(self.meta["num_documents"])
        words = (self.directory / "vocab.txt").read_text(encoding="utf-8")
        self.vocab: dict[str, int] = dict(zip(words.split("\n"), range(self.meta["num_terms"]), strict=False))
        self._ptr = np.asarray(self.term_ptr)  # small: read into memory once
        self._scratch = _Scratch()

    @classmethod
    def load(cls, directory: Path | str, *, mmap: bool = True) -> BM25Index:
        """Open the index in ``directory`` (arrays memory-mapped unless ``mmap=False``)."""
        return cls(directory, mmap=mmap)

    @property
    def corpus_content_hash(self) -> str:
        return str(self.meta["corpus_content_hash"])

    def query_terms(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Known term ids of ``tokens`` (sorted, distinct) and how often each occurs."""
        vocab = self.vocab
        ids = [vocab[t] for t in tokens if t in vocab]
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.unique(np.array(ids, dtype=np.int64), return_counts=True)

    def top_k(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows for the query ``tokens`` and their scores (float64), best first."""
        term_ids, weights = self.query_terms(tokens)
        if k <= 0 or not len(term_ids):
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        starts = self._ptr[term_ids]
        dfs = self._ptr[term_ids + 1] - starts
        w = weights.astype(np.float64)
        if int(dfs.sum()) <= self.exhaustive_below:
            return self._exhaustive(starts, dfs, w, k, -np.inf)
        # 1. sorted access: the first m postings of every list; score what they name exactly
        depth = np.minimum(dfs, max(self.seed_depth, 2 * k))
        seeds = _distinct(
            np.concatenate([self.imp_rows[s : s + m] for s, m in zip(starts.tolist(), depth.tolist(), strict=True)])
        )
        if len(seeds) < k:
            return self._exhaustive(starts, dfs, w, k, -np.inf)
        seed_scores = self._score(seeds, starts, dfs, w)
        theta = float(np.partition(seed_scores, len(seeds) - k)[len(seeds) - k])
        # 2. bounds for any other document: per term, the next impact of its list (0 once used up)
        bound = np.array(
            [
                wt * float(self.imp_impacts[s + m]) if m < d else 0.0
                for s, m, d, wt in zip(starts.tolist(), depth.tolist(), dfs.tolist(), w.tolist(), strict=True)
            ]
        )
        order = np.argsort(bound, kind="stable")
        cumulative = np.cumsum(bound[order]) * (1.0 + _SLACK)
        n_lax = int(np.searchsorted(cumulative, theta, side="left"))  # prefix whose bounds sum below θ
        if n_lax == len(order):  # threshold algorithm's stop: no unseen document can reach θ
            return _best(seeds, seed_scores, k)
        # 3. max-score: a document outside the seeds needs a term beyond that prefix; sum those
        #    terms' impacts, then add the prefix terms' exact impacts one at a time (largest bound
        #    first), dropping documents as soon as their upper bound falls below θ
        cut = theta - abs(theta) * _SLACK
        strict = order[n_lax:]
        lax_total = float(cumulative[n_lax - 1]) if n_lax else 0.0
        rows, partial = self._accumulate(starts[strict], dfs[strict], w[strict], cut - lax_total)
        for j in range(n_lax - 1, -1, -1):
            t = order[j]
            partial += self._lookup(rows, int(starts[t]), int(dfs[t]), float(w[t]))
            keep = partial + (cumulative[j - 1] if j else 0.0) >= cut
            rows, partial = rows[keep], partial[keep]
        candidates = _distinct(np.concatenate([seeds, rows]))
        return _best(candidates, self._score(candidates, starts, dfs, w), k)

    def _lists(self, starts: np.ndarray, dfs: np.ndarray, w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Each query term's doc-ordered postings (rows, impacts) and its weight."""
        return [
            (self.doc_rows[s : s + d], self.doc_impacts[s : s + d], wt)
            for s, d, wt in zip(starts.tolist(), dfs.tolist(), w.tolist(), strict=True)
        ]

    def _accumulate(
        self, starts: np.ndarray, dfs: np.ndarray, w: np.ndarray, cut: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose summed impacts over these lists reach ``cut`` (sorted, distinct), and those sums."""
        acc = self._accumulator()
        lists = self._lists(starts, dfs, w)
        try:
            _add_lists(acc, lists)
            found = _distinct(np.concatenate([rows[acc[rows] >= cut] for rows, _, _ in lists]))
            return found, acc[found]
        finally:
            for rows, _, _ in lists:
                acc[rows] = 0.0

    def _lookup(self, rows: np.ndarray, start: int, df: int, weight: float) -> np.ndarray:
        """``weight ·`` the impacts of one term's list for the sorted ``rows`` (0 where absent)."""
        postings = self.doc_rows[start : start + df]
        pos = np.searchsorted(postings, rows)
        np.minimum(pos, df - 1, out=pos)
        contribution = self.doc_impacts[start : start + df][pos].astype(np.float64)
        contribution[postings[pos] != rows] = 0.0
        if weight != 1.0:
            contribution *= weight
        return contribution

    def _accumulator(self) -> np.ndarray:
        acc = self._scratch.acc
        if acc is None or len(acc) != self.num_documents:
            acc = self._scratch.acc = np.zeros(self.num_documents, dtype=np.float64)
        return acc

    def _score(self, rows: np.ndarray, starts: np.ndarray, dfs: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Exact scores of the sorted ``rows``: the terms' impacts added in query-term order."""
        scores = np.zeros(len(rows), dtype=np.float64)
        for s, d, wt in zip(starts.tolist(), dfs.tolist(), w.tolist(), strict=True):
            scores += self._lookup(rows, s, d, wt)
        return scores

    def _exhaustive(
        self, starts: np.ndarray, dfs: np.ndarray, w: np.ndarray, k: int, theta: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Term-at-a-time accumulation over whole lists; only rows scoring ≥ ``theta`` are ranked."""
        acc = self._accumulator()
        lists = self._lists(starts, dfs, w)
        try:
            _add_lists(acc, lists)
            if theta == -np.inf:
                seen = _distinct(np.concatenate([rows for rows, _, _ in lists]))
            else:
                seen = _distinct(np.concatenate([rows[acc[rows] >= theta] for rows, _, _ in lists]))
            scores = acc[seen]
        finally:
            for rows, _, _ in lists:
                acc[rows] = 0.0
        return _best(seen, scores, k)

    def brute_force(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Reference top-k: every posting of every query term, no early stop (for tests)."""
        term_ids, weights = self.query_terms(tokens)
        if k <= 0 or not len(term_ids):
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        starts = self._ptr[term_ids]
        return self._exhaustive(starts, self._ptr[term_ids + 1] - starts, weights.astype(np.float64), k, -np.inf)


def _distinct(rows: np.ndarray) -> np.ndarray:
    """Sorted distinct values (``np.unique`` without its overhead on small arrays)."""
    rows = np.sort(rows)
    if len(rows) > 1:
        rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
    return rows


def _add_lists(acc: np.ndarray, lists: list[tuple[np.ndarray, np.ndarray, float]]) -> None:
    """Add each list's weighted impacts into ``acc`` in float64, in query-term order."""
    for rows, impacts, wt in lists:
        contribution = impacts.astype(np.float64)
        if wt != 1.0:
            contribution *= wt
        acc[rows] += contribution


def hits(corpus: Corpus, ranked: list[tuple[np.ndarray, np.ndarray]]) -> list[list[Hit]]:
    """(rows, scores) per query as ``Hit`` lists, reading the documents from ``corpus``."""
    return [
        [Hit(corpus[row], score) for row, score in zip(rows.tolist(), scores.tolist(), strict=True)]
        for rows, scores in ranked
    ]


def _best(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest ``scores`` with their ``rows`` (sorted ascending), ties to the lower row."""
    if len(rows) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = np.flatnonzero(scores >= kth)
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:k]
    return rows[order].astype(np.int64), scores[order]


class BM25Retriever:
    """The ``Retriever`` over a ``Corpus`` and its ``BM25Index``: ``search(queries, k)``."""

    def __init__(self, corpus: Corpus, index: BM25Index) -> None:
        if index.corpus_content_hash != corpus.content_hash:
            raise ValueError(f"index {index.directory} was built for another corpus than {corpus.directory}")
        self.corpus = corpus
        self.index = index

    def search_rows(self, queries: list[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, the top-``k`` rows and scores (no documents are read)."""
        return [self.index.top_k(tokenize(query), k) for query in queries]

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-``k`` hits per query, best first; an empty or all-stopword query gets no hits."""
        return hits(self.corpus, self.search_rows(queries, k))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_reopen, (str(self.corpus.directory), str(self.index.directory)))


def _reopen(corpus_dir: str, index_dir: str) -> BM25Retriever:
    return BM25Retriever(Corpus.open(corpus_dir), BM25Index.load(index_dir))


def index_key(corpus: Corpus, *, k1: float = K1, b: float = B) -> str:
    """The cache key of ``corpus``'s BM25 index with parameters ``k1``, ``b``."""
    return f"bm25-{FORMAT.rsplit('-', 1)[-1]}-k1_{k1:g}-b_{b:g}-{corpus.content_hash[:32]}"


def bm25_retriever(corpus: Corpus, *, progress: bool = False) -> BM25Retriever:
    """A ``BM25Retriever`` for ``corpus``, its index built once and cached by the corpus content hash."""

    def build(tmp: Path) -> None:
        build_index(corpus, tmp, progress=progress)

    return BM25Retriever(corpus, BM25Index.load(cached(index_key(corpus), build)))
