"""The search storage layer: tokenizer, memory-mapped corpus, build-once cache, exact BM25 top-k."""

from __future__ import annotations

import itertools
import math
import os
import pickle
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horizongym.cache import cached
from horizongym.envs.search.bm25 import BM25Index, BM25Retriever, bm25_retriever, build_index
from horizongym.envs.search.corpus import Corpus
from horizongym.envs.search.tokenize import STOPWORDS, tokenize
from horizongym.envs.search.types import Document

WORDS = [f"w{i}" for i in range(200)] + ["straße", "ørsted", "東京", "naïve", "x_y"]


def zipf_documents(n: int, seed: int, *, max_len: int = 40) -> list[Document]:
    """Documents of Zipf-distributed words with stopwords and punctuation mixed in."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1) ** 1.1
    p /= p.sum()
    docs = []
    for i in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(0, max_len)), p=p))
        for _ in range(int(rng.integers(0, 4))):
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(["the", "of", "And", ",", "?"])))
        title = " ".join(rng.choice(WORDS, size=int(rng.integers(0, 3)), p=p))
        docs.append(Document(f"doc-{seed}-{i}", title.title(), " ".join(words)))
    return docs


def reference_top_k(docs: list[Document], query: str, k: int) -> list[tuple[float, int]]:
    """BM25 by its formula, straight from the tokens (k1 = 1.5, b = 0.75, Lucene's idf)."""
    tokens = [tokenize(d.title + "\n" + d.text) for d in docs]
    n = len(docs)
    avgdl = sum(map(len, tokens)) / n if n and sum(map(len, tokens)) else 1.0
    df = Counter(t for doc in tokens for t in set(doc))
    scored = []
    for row, doc in enumerate(tokens):
        tf = Counter(doc)
        terms = [t for t in tokenize(query) if tf[t]]
        if not terms:
            continue
        score = 0.0
        for t in terms:
            idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            score += idf * tf[t] * 2.5 / (tf[t] + 1.5 * (0.25 + 0.75 * len(doc) / avgdl))
        scored.append((score, row))
    scored.sort(key=lambda sr: (-sr[0], sr[1]))
    return scored[:k]


def assert_same_top_k(
    rows: np.ndarray, scores: np.ndarray, expected: list[tuple[float, int]], all_scores: dict[int, float]
) -> None:
    """Equal to the reference, allowing only float32-level differences to reorder exact ties."""
    assert len(rows) == len(expected)
    assert np.allclose(scores, [s for s, _ in expected], rtol=1e-5, atol=1e-9)
    assert len(set(rows.tolist())) == len(rows)
    for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
        assert math.isclose(all_scores[row], score, rel_tol=1e-5)
    assert all(a >= b for a, b in itertools.pairwise(scores))
    for i in range(len(rows) - 1):
        if scores[i] == scores[i + 1]:
            assert rows[i] < rows[i + 1]
    if len(expected):
        kth = expected[-1][0]
        clearly_in = {row for score, row in expected if score > kth * (1 + 1e-5)}
        assert clearly_in <= set(rows.tolist())


@pytest.fixture(scope="module")
def zipf_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Document], Corpus, BM25Index]:
    docs = zipf_documents(1500, seed=1)
    base = tmp_path_factory.mktemp("zipf")
    corpus = Corpus.build(docs, base / "corpus")
    (base / "index").mkdir()
    build_index(corpus, base / "index")
    return docs, corpus, BM25Index.load(base / "index")


# ----- tokenizer ------------------------------------------------------------------------------


def test_tokenize_lowercases_splits_on_word_characters_and_drops_stopwords() -> None:
    assert tokenize("Who founded the Ørsted company, in 1991?") == ["founded", "ørsted", "company", "1991"]
    assert tokenize("Don't STOP: snake_case 東京 naïve") == ["stop", "snake_case", "東京", "naïve"]
    assert tokenize("") == [] and tokenize("the of and ?!") == []
    assert tokenize("Paris paris PARIS") == ["paris"] * 3  # repeats kept, no stemming
    assert {"the", "a", "of", "t", "s"} <= STOPWORDS


# ----- corpus ---------------------------------------------------------------------------------


UNICODE_DOCS = [
    Document("a", "Ørsted", "Danish energy company ⚡ with newlines\nand\ttabs"),
    Document("b/é", "", ""),
    Document("東京-1", "東京", "首都 🗼 e\u0301 combining"),
    Document("d", 'A "quoted" title', "x" * 5000),
]


def test_corpus_round_trip_with_unicode(tmp_path: Path) -> None:
    corpus = Corpus.build(iter(UNICODE_DOCS), tmp_path / "c")
    assert len(corpus) == 4
    assert list(corpus) == UNICODE_DOCS
    assert [corpus[i] for i in range(4)] == UNICODE_DOCS and corpus[-1] == UNICODE_DOCS[-1]
    assert corpus.get("東京-1") == UNICODE_DOCS[2] and corpus.row_of("b/é") == 1 and "d" in corpus
    with pytest.raises(KeyError):
        corpus.get("missing")
    with pytest.raises(IndexError):
        corpus[4]
    reopened = pickle.loads(pickle.dumps(corpus))
    assert list(reopened) == UNICODE_DOCS and reopened.content_hash == corpus.content_hash
    assert not any(p.name.startswith(".c.tmp") for p in tmp_path.iterdir())  # temporary folder renamed away


def test_content_hash_covers_ids_titles_texts_and_boundaries(tmp_path: Path) -> None:
    base = Corpus.build(UNICODE_DOCS, tmp_path / "0").content_hash
    assert Corpus.build(list(UNICODE_DOCS), tmp_path / "same").content_hash == base
    moved = [Document("a", "Ørsted D", "anish energy company ⚡ with newlines\nand\ttabs"), *UNICODE_DOCS[1:]]
    renamed = [Document("a2", UNICODE_DOCS[0].title, UNICODE_DOCS[0].text), *UNICODE_DOCS[1:]]
    reordered = [UNICODE_DOCS[1], UNICODE_DOCS[0], *UNICODE_DOCS[2:]]
    hashes = {Corpus.build(d, tmp_path / str(i)).content_hash for i, d in enumerate([moved, renamed, reordered], 1)}
    assert base not in hashes and len(hashes) == 3


def test_corpus_rejects_repeated_ids_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="appears twice"):
        Corpus.build([UNICODE_DOCS[0], UNICODE_DOCS[0]], tmp_path / "c")
    assert not (tmp_path / "c").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_empty_corpus(tmp_path: Path) -> None:
    corpus = Corpus.build([], tmp_path / "c")
    assert len(corpus) == 0 and list(corpus) == []
    (tmp_path / "i").mkdir()
    build_index(corpus, tmp_path / "i")
    assert BM25Index.load(tmp_path / "i").top_k(["anything"], 3)[0].tolist() == []


def test_build_exist_ok_keeps_the_built_corpus(tmp_path: Path) -> None:
    first = Corpus.build(UNICODE_DOCS, tmp_path / "c")

    def never() -> Iterator[Document]:
        raise AssertionError("documents consumed although the corpus exists")
        yield  # a generator: nothing runs until iterated

    again = Corpus.build(never(), tmp_path / "c", exist_ok=True)
    assert again.content_hash == first.content_hash
    replaced = Corpus.build(UNICODE_DOCS[:2], tmp_path / "c")
    assert len(replaced) == 2


# ----- cache ----------------------------------------------------------------------------------


def test_cache_builds_once_under_concurrent_processes(tmp_path: Path) -> None:
    cache, log = tmp_path / "cache", tmp_path / "builds.log"
    script = textwrap.dedent(
        f"""
        import os, time
        from pathlib import Path
        from horizongym.cache import cached

        def build(folder: Path) -> None:
            with open({str(log)!r}, "a") as f:
                f.write(str(os.getpid()) + "\\n")
            time.sleep(0.5)
            (folder / "data.txt").write_text("built")

        print(cached("artefact-1", build))
        """
    )
    env = {**os.environ, "HORIZONGYM_CACHE": str(cache)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(log.read_text().splitlines()) == 1
    assert set(outputs) == {str(cache / "artefact-1")}
    assert (cache / "artefact-1" / "data.txt").read_text() == "built"
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name]


def test_cache_failed_build_leaves_no_artefact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORIZONGYM_CACHE", str(tmp_path))

    def broken(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cached("key-1", broken)
    assert not (tmp_path / "key-1").exists()

    def write_ok(folder: Path) -> None:
        (folder / "ok").write_text("y")

    path = cached("key-1", write_ok)
    assert (path / "ok").read_text() == "y"
    with pytest.raises(ValueError):
        cached("../escape", broken)


# ----- BM25 -----------------------------------------------------------------------------------


QUERIES = [
    "w0 w1",
    "w3 w3 w3 w17",  # repeated terms count once per repeat
    "w150 unknownword w2",  # unknown terms are ignored
    "Straße ØRSTED 東京",
    "w199 w198 w197 w196 w195 w194 w193 w192",
    "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12",
    "w5",
]


@pytest.mark.parametrize("k", [1, 3, 10, 5000])
def test_top_k_equals_brute_force(zipf_index: tuple[list[Document], Corpus, BM25Index], k: int) -> None:
    docs, _, index = zipf_index
    for query in QUERIES:
        expected = reference_top_k(docs, query, len(docs))
        all_scores = {row: score for score, row in expected}
        rows, scores = index.top_k(tokenize(query), k)
        assert_same_top_k(rows, scores, expected[:k], all_scores)


@pytest.mark.parametrize("strategy", ["default", "threshold-only", "exhaustive"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_query_path_is_exact(
    zipf_index: tuple[list[Document], Corpus, BM25Index], strategy: str, data: st.DataObject
) -> None:
    docs, _, index = zipf_index
    words = st.sampled_from([*WORDS[:30], *WORDS[-8:], "the", "nothere", "W1"])
    query = " ".join(data.draw(st.lists(words, min_size=0, max_size=10)))
    k = data.draw(st.integers(1, 40))
    index.seed_depth, index.exhaustive_below = {
        "default": (32, 2048),
        "threshold-only": (1, 0),
        "exhaustive": (32, 10**9),
    }[strategy]
    try:
        rows, scores = index.top_k(tokenize(query), k)
    finally:
        index.seed_depth, index.exhaustive_below = BM25Index.seed_depth, BM25Index.exhaustive_below
    expected = reference_top_k(docs, query, len(docs))
    assert_same_top_k(rows, scores, expected[:k], {row: score for score, row in expected})
    brute = index.brute_force(tokenize(query), k)
    assert np.array_equal(rows, brute[0]) and np.array_equal(scores, brute[1])


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_random_corpora_match_brute_force(tmp_path: Path, seed: int) -> None:
    docs = zipf_documents(400, seed=seed, max_len=int(10 + 30 * (seed % 2)))
    corpus = Corpus.build(docs, tmp_path / "c")
    (tmp_path / "i").mkdir()
    build_index(corpus, tmp_path / "i")
    index = BM25Index.load(tmp_path / "i")
    index.exhaustive_below = 0  # force the early-termination path even on a small corpus
    rng = np.random.default_rng(seed)
    for _ in range(40):
        query = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 9))))
        k = int(rng.integers(1, 25))
        expected = reference_top_k(docs, query, len(docs))
        rows, scores = index.top_k(tokenize(query), k)
        assert_same_top_k(rows, scores, expected[:k], {row: score for score, row in expected})


def test_ties_go_to_the_lower_row(tmp_path: Path) -> None:
    docs = [Document(f"d{i}", "", "alpha beta" if i % 3 else "gamma") for i in range(300)]
    corpus = Corpus.build(docs, tmp_path / "c")
    (tmp_path / "i").mkdir()
    build_index(corpus, tmp_path / "i")
    index = BM25Index.load(tmp_path / "i")
    index.exhaustive_below = 0
    rows, scores = index.top_k(["alpha"], 5)
    assert rows.tolist() == [1, 2, 4, 5, 7] and len(set(scores.tolist())) == 1


def test_empty_stopword_only_and_unknown_queries_get_no_hits(
    zipf_index: tuple[list[Document], Corpus, BM25Index],
) -> None:
    _, corpus, index = zipf_index
    retriever = BM25Retriever(corpus, index)
    assert retriever.search(["", "the of and", "nothing matches this", "w0"], 3)[:3] == [[], [], []]
    assert retriever.search(["w0"], 0) == [[]]
    assert len(retriever.search(["w0"], 3)[0]) == 3


def test_mmap_reload_gives_identical_results(zipf_index: tuple[list[Document], Corpus, BM25Index]) -> None:
    _, corpus, index = zipf_index
    in_memory = BM25Index.load(index.directory, mmap=False)
    assert isinstance(np.load(index.directory / "doc_rows.npy", mmap_mode="r"), np.memmap)
    for query in QUERIES:
        a, b = index.top_k(tokenize(query), 10), in_memory.top_k(tokenize(query), 10)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    retriever = BM25Retriever(corpus, index)
    again = pickle.loads(pickle.dumps(retriever))
    assert again.search(QUERIES, 5) == retriever.search(QUERIES, 5)


def test_bm25_retriever_is_cached_by_content_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORIZONGYM_CACHE", str(tmp_path / "cache"))
    corpus = Corpus.build(zipf_documents(200, seed=5), tmp_path / "c")
    first = bm25_retriever(corpus)
    built = {p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")}
    assert len(built) == 1 and corpus.content_hash[:32] in next(iter(built))
    mtime = (first.index.directory / "meta.json").stat().st_mtime_ns
    second = bm25_retriever(Corpus.open(tmp_path / "c"))
    assert second.index.directory == first.index.directory
    assert (second.index.directory / "meta.json").stat().st_mtime_ns == mtime
    hits = second.search(["w0 w1"], 3)[0]
    assert [h.document for h in hits] == [corpus[r] for r in first.index.top_k(["w0", "w1"], 3)[0].tolist()]
    other = Corpus.build(zipf_documents(200, seed=6), tmp_path / "c2")
    with pytest.raises(ValueError, match="another corpus"):
        BM25Retriever(other, first.index)
