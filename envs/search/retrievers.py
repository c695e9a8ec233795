"""Other retrievers behind the same ``Retriever`` protocol, and a server for any of them.

- ``Bm25sRetriever``: the ``bm25s`` library (Lù 2024, "BM25S: Orders of magnitude faster lexical
  search via eager sparse scoring") fed this package's tokens, its index cached by the corpus
  content hash and memory-mapped on load. Its Lucene variant ranks like ``BM25Retriever``; its
  scores lack the constant factor ``k1 + 1``, which is put back so the two are comparable.
- ``HttpRetriever``: a client of the retrieval-server protocol of Search-R1 (Jin et al. 2025):
  ``POST {url}/retrieve`` with ``{"queries": [...], "topk": k, "return_scores": true}``, answered
  ``{"result": [[{"document": {"id": ..., "contents": "\\"Title\\"\\ntext"}, "score": s}, ...], ...]}``
  (or, without scores, a list of documents per query).
- ``retrieval_app(retriever)``: a Starlette app serving any ``Retriever`` over that protocol.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from horizongym.cache import cached
from horizongym.envs.search.bm25 import K1, B, hits
from horizongym.envs.search.corpus import Corpus
from horizongym.envs.search.tokenize import tokenize, tokenize_many
from horizongym.envs.search.types import Document, Hit, Retriever


class RetrieverError(RuntimeError):
    """A retriever could not answer: server unreachable, an error status, or a malformed answer."""


# ----- bm25s ----------------------------------------------------------------------------------


def bm25s_index_key(corpus: Corpus, *, k1: float = K1, b: float = B) -> str:
    """The cache key of the ``bm25s`` index of ``corpus``: the library version, ``k1``, ``b``, the content hash."""
    import bm25s

    version = str(getattr(bm25s, "__version__", "0"))
    return f"bm25s-{version}-k1_{k1:g}-b_{b:g}-{corpus.content_hash[:32]}"


def build_bm25s_index(corpus: Corpus, directory: Path, *, k1: float = K1, b: float = B, progress: bool = False) -> None:
    """Index ``corpus`` with ``bm25s`` (Lucene variant) from this package's tokens; save it in ``directory``."""
    import bm25s

    vocab: dict[str, int] = {}
    ids: list[list[int]] = []
    texts = corpus.texts()
    while chunk := [text for _, text in zip(range(50_000), texts, strict=False)]:
        for tokens in tokenize_many(chunk):
            ids.append([vocab.setdefault(token, len(vocab)) for token in tokens])
    model = bm25s.BM25(k1=k1, b=b, method="lucene")
    model.index((ids, vocab), show_progress=progress)
    model.save(str(directory), show_progress=False)


class Bm25sRetriever:
    """``bm25s`` over ``corpus``: built once per corpus content hash, loaded memory-mapped."""

    def __init__(self, corpus: Corpus, *, k1: float = K1, b: float = B, progress: bool = False) -> None:
        import bm25s

        self.corpus = corpus
        self.k1, self.b = k1, b
        key = bm25s_index_key(corpus, k1=k1, b=b)

        def build(tmp: Path) -> None:
            build_bm25s_index(corpus, tmp, k1=k1, b=b, progress=progress)

        self.directory = cached(key, build)
        self.model = bm25s.BM25.load(str(self.directory), mmap=True, load_vocab=True, show_progress=False)
        self._vocab: dict[str, int] = self.model.vocab_dict

    def search_rows(self, queries: list[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, the top-``k`` rows and scores (only documents holding a query term)."""
        n = len(self.corpus)
        out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0))] * len(queries)
        k = min(k, n)
        if k <= 0:
            return out
        vocab = self._vocab
        asked = [(i, known) for i, q in enumerate(queries) if (known := [t for t in tokenize(q) if t in vocab])]
        if not asked:
            return out
        rows, scores = self.model.retrieve([tokens for _, tokens in asked], k=k, show_progress=False, n_threads=0)
        for (i, _), r, s in zip(asked, rows, scores, strict=True):
            keep = s > 0
            out[i] = (np.asarray(r[keep], dtype=np.int64), np.asarray(s[keep], dtype=np.float64) * (self.k1 + 1.0))
        return out

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-``k`` hits per query, best first; an empty or all-stopword query gets no hits."""
        return hits(self.corpus, self.search_rows(queries, k))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_reopen_bm25s, (str(self.corpus.directory), self.k1, self.b))


def _reopen_bm25s(corpus_dir: str, k1: float, b: float) -> Bm25sRetriever:
    return Bm25sRetriever(Corpus.open(corpus_dir), k1=k1, b=b)


# ----- the Search-R1 retrieval protocol -------------------------------------------------------


def document_to_json(document: Document) -> dict[str, str]:
    """A document as Search-R1 servers send it: ``{"id", "contents": '"Title"\\ntext'}`` (plus title, text)."""
    return {
        "id": document.id,
        "contents": f'"{document.title}"\n{document.text}',
        "title": document.title,
        "text": document.text,
    }


def document_from_json(item: Any) -> Document:
    """Read a served document: ``title``/``text`` if present, else ``contents`` split at its first line."""
    if not isinstance(item, dict):
        raise ValueError(f"a document must be a JSON object, got {type(item).__name__}")
    doc_id = str(item.get("id", item.get("doc_id", "")))
    if isinstance(item.get("title"), str) and isinstance(item.get("text"), str):
        return Document(doc_id, item["title"], item["text"])
    contents = item.get("contents")
    if not isinstance(contents, str):
        raise ValueError("a document needs 'contents' (or 'title' and 'text') strings")
    first, newline, rest = contents.partition("\n")
    if not newline:
        return Document(doc_id, "", contents)
    if len(first) >= 2 and first.startswith('"') and first.endswith('"'):
        first = first[1:-1]
    return Document(doc_id, first, rest)


def _hit_from_json(item: Any) -> Hit:
    if isinstance(item, dict) and "document" in item:
        score = item.get("score", 0.0)
        if not isinstance(score, int | float) or isinstance(score, bool):
            raise ValueError(f"a score must be a number, got {score!r}")
        return Hit(document_from_json(item["document"]), float(score))
    return Hit(document_from_json(item), 0.0)  # a server without scores: order is all we know


class HttpRetriever:
    """A client of a Search-R1-style retrieval server at ``url`` (see the module docstring).

    Connection failures, timeouts and 5xx answers are retried ``max_retries`` times with
    exponential backoff; anything still failing, any other non-200 answer, and any malformed
    answer raise ``RetrieverError`` naming the URL. Hits without scores get score 0 (in order).
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0, max_retries: int = 2, backoff_s: float = 0.2) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.endpoint = self.url if self.url.endswith("/retrieve") else self.url + "/retrieve"
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self._client = httpx.Client(timeout=timeout_s)

    def _post(self, payload: dict[str, Any]) -> Any:
        import httpx

        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.post(self.endpoint, json=payload)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                problem = f"cannot connect ({type(exc).__name__}: {exc})"
                continue
            if response.status_code >= 500:
                problem = f"server error {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code != 200:
                raise RetrieverError(
                    f"retrieval server {self.endpoint} answered {response.status_code}: {response.text[:200]}"
                )
            try:
                return response.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise RetrieverError(
                    f"retrieval server {self.endpoint} sent malformed JSON ({exc}): {response.text[:200]!r}"
                ) from exc
        raise RetrieverError(
            f"retrieval server {self.endpoint} failed after {self.max_retries + 1} attempts: {problem}"
        )

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-``k`` hits per query, in the server's order."""
        if not queries:
            return []
        answer = self._post({"queries": list(queries), "topk": k, "return_scores": True})
        try:
            if not isinstance(answer, dict) or not isinstance(answer.get("result"), list):
                raise ValueError("the answer has no 'result' list")
            result = answer["result"]
            if len(result) != len(queries):
                raise ValueError(f"{len(result)} result lists for {len(queries)} queries")
            hits = []
            for per_query in result:
                if not isinstance(per_query, list):
                    raise ValueError("each result must be a list of hits")
                hits.append([_hit_from_json(item) for item in per_query[:k]])
        except ValueError as exc:
            raise RetrieverError(f"retrieval server {self.endpoint} sent a malformed answer: {exc}") from exc
        return hits

    def close(self) -> None:
        self._client.close()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_reopen_http, (self.url, self.timeout_s, self.max_retries, self.backoff_s))

    def __repr__(self) -> str:
        return f"HttpRetriever({self.url!r})"


def _reopen_http(url: str, timeout_s: float, max_retries: int, backoff_s: float) -> HttpRetriever:
    return HttpRetriever(url, timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s)


def retrieval_app(retriever: Retriever, *, max_topk: int = 1000) -> Any:
    """A Starlette app serving ``retriever`` over the Search-R1 protocol (``POST /retrieve``, ``GET /health``).

    Serve it with ``uvicorn.run(retrieval_app(bm25_retriever(corpus)), port=8000)``. Searches run
    in a worker thread, so one slow query does not stall the server.
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def bad(message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=422)

    async def retrieve(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return bad("the body must be JSON")
        if not isinstance(body, dict):
            return bad("the body must be a JSON object")
        queries = body.get("queries")
        if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
            return bad("'queries' must be a list of strings")
        topk = body.get("topk", 3)
        if topk is None:
            topk = 3
        if not isinstance(topk, int) or isinstance(topk, bool) or not 0 <= topk <= max_topk:
            return bad(f"'topk' must be an integer from 0 to {max_topk}")
        hits = await run_in_threadpool(retriever.search, queries, topk)
        if body.get("return_scores", False):
            result: list[Any] = [
                [{"document": document_to_json(h.document), "score": h.score} for h in per_query] for per_query in hits
            ]
        else:
            result = [[document_to_json(h.document) for h in per_query] for per_query in hits]
        return JSONResponse({"result": result})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/retrieve", retrieve, methods=["POST"]), Route("/health", health)])
