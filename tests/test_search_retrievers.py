"""Other retrievers: bm25s behind our tokenizer, and the Search-R1 HTTP protocol (real server, real client)."""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from horizongym.envs.search.bm25 import BM25Retriever, bm25_retriever
from horizongym.envs.search.corpus import Corpus
from horizongym.envs.search.retrievers import (
    Bm25sRetriever,
    HttpRetriever,
    RetrieverError,
    document_from_json,
    document_to_json,
    retrieval_app,
)
from horizongym.envs.search.types import Document

QUERIES = [
    "Who founded the Ørsted company?",
    "river city bridge",
    "bridge bridge museum",
    "the of and",
    "",
    "zzzunknown",
    "harbor festival music",
]


def small_documents() -> list[Document]:
    rng = np.random.default_rng(7)
    words = "river city bridge museum harbor festival music ørsted company founded danish energy tower".split()
    p = np.linspace(2.0, 0.2, len(words))
    p /= p.sum()
    docs = [Document("orsted", "Ørsted", "Ørsted is a Danish energy company, founded in 2006.")]
    for i in range(300):
        text = " ".join(rng.choice(words, size=int(rng.integers(3, 25)), p=p))
        docs.append(Document(f"d{i}", f"Doc {i}", text))
    return docs


@pytest.fixture(scope="module")
def corpus_and_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    base = tmp_path_factory.mktemp("retrievers")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HORIZONGYM_CACHE", str(base / "cache"))
        yield Corpus.build(small_documents(), base / "corpus")


@pytest.fixture(scope="module")
def ours(corpus_and_cache: Corpus) -> BM25Retriever:
    return bm25_retriever(corpus_and_cache)


def serve(app: object) -> tuple[str, object, threading.Thread]:
    """Run ``app`` under uvicorn in a thread on a free port; return its URL, server and thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def served(ours: BM25Retriever) -> Iterator[str]:
    url, server, thread = serve(retrieval_app(ours))
    yield url
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def broken_server() -> Iterator[str]:
    """A server that answers ``/retrieve`` badly in several ways, chosen by the URL path."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def bad_json(request: Request) -> PlainTextResponse:
        return PlainTextResponse("{not json", status_code=200)

    async def wrong_shape(request: Request) -> JSONResponse:
        return JSONResponse({"answers": []})

    async def server_error(request: Request) -> PlainTextResponse:
        return PlainTextResponse("kaput", status_code=500)

    async def no_scores(request: Request) -> JSONResponse:
        body = await request.json()
        doc = {"id": "7", "contents": '"Some Title"\nsome text\nsecond line'}
        return JSONResponse({"result": [[doc] * body["topk"] for _ in body["queries"]]})

    app = Starlette(
        routes=[
            Route("/badjson/retrieve", bad_json, methods=["POST"]),
            Route("/shape/retrieve", wrong_shape, methods=["POST"]),
            Route("/error/retrieve", server_error, methods=["POST"]),
            Route("/noscores/retrieve", no_scores, methods=["POST"]),
        ]
    )
    url, server, thread = serve(app)
    yield url
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=5)


def test_bm25s_returns_the_same_top_documents(corpus_and_cache: Corpus, ours: BM25Retriever) -> None:
    theirs = Bm25sRetriever(corpus_and_cache)
    for query in QUERIES:
        (mine_rows, mine_scores), (their_rows, their_scores) = (
            ours.search_rows([query], 10)[0],
            theirs.search_rows([query], 10)[0],
        )
        assert np.allclose(mine_scores, their_scores, rtol=1e-4)
        # the same documents, except that exact ties at the cut may be broken differently
        if len(mine_scores):
            clear = mine_scores > mine_scores[-1] * (1 + 1e-4)
            assert set(mine_rows[clear].tolist()) == set(their_rows[clear].tolist())
    hits = theirs.search(["Ørsted in 2006", "the"], 3)
    assert hits[0][0].document.id == "orsted" and hits[1] == []
    assert theirs.search(["river"], 1000)[0]  # k beyond the corpus size is fine
    again = Bm25sRetriever(corpus_and_cache)  # cached: loads, does not rebuild
    assert again.directory == theirs.directory
    assert pickle.loads(pickle.dumps(theirs)).search(["river"], 3) == theirs.search(["river"], 3)


def test_http_client_against_a_real_server_gives_the_retrievers_hits(ours: BM25Retriever, served: str) -> None:
    client = HttpRetriever(served, timeout_s=10)
    assert client.search(QUERIES, 4) == ours.search(QUERIES, 4)
    assert client.search([], 4) == []
    assert pickle.loads(pickle.dumps(client)).search(["river"], 2) == ours.search(["river"], 2)


def test_server_speaks_the_search_r1_protocol(ours: BM25Retriever, served: str) -> None:
    import httpx

    answer = httpx.post(f"{served}/retrieve", json={"queries": ["Ørsted in 2006"], "topk": 2, "return_scores": True})
    assert answer.status_code == 200
    first = answer.json()["result"][0][0]
    assert first["document"]["id"] == "orsted" and first["document"]["contents"].startswith('"Ørsted"\n')
    assert isinstance(first["score"], float)
    plain = httpx.post(f"{served}/retrieve", json={"queries": ["river", "city"], "topk": 3}).json()
    assert len(plain["result"]) == 2 and all("contents" in doc for doc in plain["result"][0])
    assert httpx.post(f"{served}/retrieve", json={"queries": "river"}).status_code == 422
    assert httpx.post(f"{served}/retrieve", json={"queries": ["x"], "topk": -1}).status_code == 422
    assert httpx.post(f"{served}/retrieve", content=b"{oops").status_code == 422
    assert httpx.get(f"{served}/health").json() == {"status": "ok"}


def test_documents_round_trip_through_json() -> None:
    doc = Document("x", 'Title with "quotes"', "line one\nline two")
    assert document_from_json(document_to_json(doc)) == doc
    assert document_from_json({"id": 3, "contents": '"T"\nbody\nmore'}) == Document("3", "T", "body\nmore")
    assert document_from_json({"id": "4", "contents": "no title line"}) == Document("4", "", "no title line")


def test_unreachable_server_is_a_clear_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(RetrieverError, match=f"127.0.0.1:{port}") as failure:
        HttpRetriever(url, timeout_s=2, max_retries=1, backoff_s=0.01).search(["q"], 3)
    assert "2 attempts" in str(failure.value)


@pytest.mark.parametrize(
    ("path", "message"),
    [("badjson", "malformed JSON"), ("shape", "malformed answer"), ("error", "server error 500"), ("missing", "404")],
)
def test_bad_answers_are_clear_errors(broken_server: str, path: str, message: str) -> None:
    client = HttpRetriever(f"{broken_server}/{path}", timeout_s=5, max_retries=1, backoff_s=0.01)
    with pytest.raises(RetrieverError, match=message) as failure:
        client.search(["q"], 3)
    assert broken_server in str(failure.value)


def test_answers_without_scores_are_accepted(broken_server: str) -> None:
    hits = HttpRetriever(f"{broken_server}/noscores").search(["a", "b"], 2)
    assert len(hits) == 2 and len(hits[0]) == 2
    assert hits[0][0].document == Document("7", "Some Title", "some text\nsecond line") and hits[0][0].score == 0.0


def test_cache_folder_is_used(corpus_and_cache: Corpus, ours: BM25Retriever, tmp_path: Path) -> None:
    import os

    cache = Path(os.environ["HORIZONGYM_CACHE"])
    assert ours.index.directory.parent == cache
