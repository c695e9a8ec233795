"""Data sources of the search environment, named by a short spec, loaded once per process.

Specs (the ``tasks=`` option of ``SearchJudge-v0``; the env splits the tasks, see
:mod:`horizongym.envs.tasklist`):

* ``fictional`` — the embedded default: a generated 5,000-document world (seed 0).
* ``fictional:N`` or ``fictional:N:SEED`` — a generated world of N documents.
* ``hotpotqa:PATH`` — HotpotQA questions in the official layout (JSON or JSONL, gzip or not);
  the corpus is their context paragraphs, one document per title. A question keeps its file's
  split (``meta["split"]``: the dev set is the test split).
* ``jsonl:CORPUS_PATH:QUESTIONS_PATH`` — your own corpus and questions (see ``importers``).

The retriever (``retriever=``) is ``bm25`` (this package's index, the default), ``bm25s``, or
the URL of a retrieval server speaking the Search-R1 protocol (``http://host:port``).
Corpora and indexes are built once and cached on disk by content hash (:mod:`horizongym.cache`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from horizongym.cache import content_key
from horizongym.envs.search.corpus import Corpus, cached_corpus
from horizongym.envs.search.types import QATask, Retriever

_IMPORTERS = "horizongym.envs.search.importers"


@dataclass(frozen=True)
class SearchDataset:
    """Tasks, the corpus they are asked over, and the retriever that searches it."""

    name: str
    tasks: tuple[QATask, ...]
    corpus: Corpus | None
    retriever: Retriever


def fictional_corpus_key(size: int, seed: int) -> str:
    """The cache key of the corpus of the generated world ``(size, seed)``: its parameters and generator code."""
    from horizongym.envs.search import world

    return f"fictional-{size}-{seed}-{content_key(modules=world.SOURCE_MODULES)}"


def _fictional(size: int, seed: int) -> tuple[Corpus, tuple[QATask, ...]]:
    from horizongym.envs.search import world

    if size == world.DEFAULT_WORLD_SIZE and seed == 0:
        generated = world.default_world()
    else:
        generated = world.generate_world(size, seed)
    key = fictional_corpus_key(size, seed)
    corpus = cached_corpus(key, generated.iter_documents, progress=size >= 100_000)
    return corpus, tuple(generated.tasks)


def _hotpotqa(path: Path) -> tuple[Corpus, tuple[QATask, ...]]:
    from horizongym.envs.search import importers

    if not path.is_file():
        raise FileNotFoundError(f"no HotpotQA file at {path}")
    documents, tasks = importers.load_hotpotqa(path)
    key = f"hotpotqa-{content_key(path.read_bytes(), modules=(_IMPORTERS,))}"
    return cached_corpus(key, lambda: documents), tuple(tasks)


def _jsonl(corpus_path: Path, questions_path: Path) -> tuple[Corpus, tuple[QATask, ...]]:
    from horizongym.envs.search import importers

    key = f"jsonl-{content_key(corpus_path.read_bytes(), modules=(_IMPORTERS,))}"
    corpus = cached_corpus(key, lambda: importers.load_jsonl_corpus(corpus_path))
    return corpus, tuple(importers.load_jsonl_questions(questions_path))


def _retriever(kind: str, corpus: Corpus) -> Retriever:
    if kind == "bm25":
        from horizongym.envs.search.bm25 import bm25_retriever

        return bm25_retriever(corpus)
    if kind == "bm25s":
        from horizongym.envs.search.retrievers import Bm25sRetriever

        return Bm25sRetriever(corpus)
    if kind.startswith(("http://", "https://")):
        from horizongym.envs.search.retrievers import HttpRetriever

        return HttpRetriever(kind)
    raise ValueError(f"unknown retriever {kind!r}: use 'bm25', 'bm25s' or a server URL (http://host:port)")


_loaded: dict[tuple[str, str], SearchDataset] = {}
_lock = threading.Lock()


def load_search_data(spec: str = "fictional", retriever: str = "bm25") -> SearchDataset:
    """The dataset named by ``spec`` (see the module docstring), built once per process."""
    with _lock:  # environments are often built from many threads at once
        key = (spec, retriever)
        if key not in _loaded:
            kind, _, rest = spec.partition(":")
            if kind == "fictional":
                parts = [int(p) for p in rest.split(":")] if rest else []
                from horizongym.envs.search.world import DEFAULT_WORLD_SIZE

                corpus, tasks = _fictional(parts[0] if parts else DEFAULT_WORLD_SIZE, parts[1] if len(parts) > 1 else 0)
            elif kind == "hotpotqa" and rest:
                corpus, tasks = _hotpotqa(Path(rest).expanduser())
            elif kind == "jsonl" and rest.count(":") == 1:
                corpus_path, questions_path = rest.split(":")
                corpus, tasks = _jsonl(Path(corpus_path).expanduser(), Path(questions_path).expanduser())
            else:
                raise ValueError(
                    f"unknown tasks={spec!r}: use 'fictional', 'fictional:N[:SEED]', 'hotpotqa:PATH' "
                    "or 'jsonl:CORPUS_PATH:QUESTIONS_PATH'"
                )
            _loaded[key] = SearchDataset(spec, tasks, corpus, _retriever(retriever, corpus))
        return _loaded[key]
