"""Data sources of the search environment, named by a short spec, loaded once per process.

Specs (the ``tasks=`` option of ``SearchJudge-v0``; the env splits the tasks, see
:mod:`horizongym.envs.tasklist`):

* ``fictional`` — the embedded default: a generated 5,000-document world (seed 0).
* ``fictional:N`` or ``fictional:N:SEED`` — a generated world of N documents.
* ``hotpotqa:PATH`` — HotpotQA questions in the official layout (JSON or JSONL, gzip or not);
  the corpus is their context paragraphs, one document per title. A question keeps its file's
  split (``meta["split"]``: the dev set is the test split).
* ``jsonl:CORPUS_PATH:QUESTIONS_PATH`` — your own corpus and questions (see ``importers``).
* ``2wiki:PATH`` or ``2wiki:PATH?aliases=ID_ALIASES_PATH`` — 2WikiMultiHopQA (JSON or JSONL; its
  four question types; evidences kept in ``meta``); the corpus is the items' paragraphs. With
  ``aliases=`` (the release's ``id_aliases.json``) every name of the answer's entity counts.
* ``musique:PATH`` or ``musique:PATH?unanswerable=keep`` — MuSiQue JSONL; the corpus is the items'
  paragraphs. Unanswerable items (``answerable: false``, in the "full" release) are skipped and
  counted (a warning, and ``stats["unanswerable_skipped"]``) unless ``unanswerable=keep``.
* ``searchr1:QUESTIONS_PATH:CORPUS_PATH`` — Search-R1 / FlashRAG questions (``golden_answers``)
  with a corpus JSONL of ``{"id", "contents"}``; the judge's ideal label is then whether the
  information holds an accepted answer (the questions name no gold documents).

Paths may not contain ``:`` or ``?``. Answer aliases count for EM and F1 (the best match wins).

The retriever (``retriever=``) is ``bm25`` (this package's index, the default), ``bm25s``, or
the URL of a retrieval server speaking the Search-R1 protocol (``http://host:port``).
Corpora and indexes are built once and cached on disk by content hash (:mod:`horizongym.cache`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from horizongym.cache import content_key
from horizongym.envs.search.corpus import Corpus, cached_corpus
from horizongym.envs.search.types import Document, QATask, Retriever

_IMPORTERS = "horizongym.envs.search.importers"


@dataclass(frozen=True)
class SearchDataset:
    """Tasks, the corpus they are asked over, and the retriever that searches it."""

    name: str
    tasks: tuple[QATask, ...]
    corpus: Corpus | None
    retriever: Retriever
    stats: Mapping[str, int] = field(default_factory=dict)
    """What the reader counted (questions, documents, skipped items...), where it counts."""


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


_FORMATS = ("horizongym.envs.search.fields", "horizongym.envs.search.twowiki", "horizongym.envs.search.musique")


def _options(spec: str, rest: str, allowed: dict[str, tuple[str, ...] | None]) -> tuple[Path, dict[str, str]]:
    """``PATH?key=value&...`` as the path and the options; an option not in ``allowed`` is an error.

    ``allowed`` maps each option to its accepted values (None: any value, e.g. a path)."""
    path, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False)) if query else {}
    for name, value in options.items():
        if name not in allowed:
            known = ", ".join(f"{n}=" for n in allowed) or "none"
            raise ValueError(f"tasks={spec!r}: unknown option {name!r} (options: {known})")
        values = allowed[name]
        if values is not None and value not in values:
            raise ValueError(f"tasks={spec!r}: option {name}={value!r} must be one of {list(values)}")
    return Path(path).expanduser(), options


def _paragraph_data(
    kind: str,
    path: Path,
    extra: tuple[Path, ...],
    options: dict[str, str],
    read: Callable[[dict[str, int]], tuple[list[Document], list[QATask]]],
) -> tuple[Corpus, tuple[QATask, ...], dict[str, int]]:
    """A reader's corpus (cached by the files' content and the readers' code), tasks and counts."""
    for file in (path, *extra):
        if not file.is_file():
            raise FileNotFoundError(f"no {kind} file at {file}")
    stats: dict[str, int] = {}
    documents, tasks = read(stats)
    parts: list[str | bytes] = [repr(sorted(options.items())), *(f.read_bytes() for f in (path, *extra))]
    key = f"{kind}-{content_key(*parts, modules=_FORMATS)}"
    return cached_corpus(key, lambda: documents), tuple(tasks), stats


def _twowiki(spec: str, rest: str) -> tuple[Corpus, tuple[QATask, ...], dict[str, int]]:
    from horizongym.envs.search.twowiki import load_2wiki

    path, options = _options(spec, rest, {"aliases": None})
    aliases = Path(options["aliases"]).expanduser() if "aliases" in options else None
    extra = (aliases,) if aliases is not None else ()
    return _paragraph_data("2wiki", path, extra, options, lambda stats: load_2wiki(path, aliases=aliases, stats=stats))


def _musique(spec: str, rest: str) -> tuple[Corpus, tuple[QATask, ...], dict[str, int]]:
    from horizongym.envs.search.musique import load_musique

    path, options = _options(spec, rest, {"unanswerable": ("skip", "keep")})
    keep = options.get("unanswerable", "skip") == "keep"
    return _paragraph_data(
        "musique", path, (), options, lambda stats: load_musique(path, keep_unanswerable=keep, stats=stats)
    )


def _searchr1(questions_path: Path, corpus_path: Path) -> tuple[Corpus, tuple[QATask, ...]]:
    from horizongym.envs.search import importers
    from horizongym.envs.search.searchr1 import load_searchr1_questions

    for file, what in ((questions_path, "questions"), (corpus_path, "corpus")):
        if not file.is_file():
            raise FileNotFoundError(f"no Search-R1 {what} file at {file}")
    key = f"jsonl-{content_key(corpus_path.read_bytes(), modules=(_IMPORTERS,))}"
    corpus = cached_corpus(key, lambda: importers.load_jsonl_corpus(corpus_path))
    return corpus, tuple(load_searchr1_questions(questions_path))


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
            stats: dict[str, int] = {}
            if kind == "fictional":
                parts = [int(p) for p in rest.split(":")] if rest else []
                from horizongym.envs.search.world import DEFAULT_WORLD_SIZE

                corpus, tasks = _fictional(parts[0] if parts else DEFAULT_WORLD_SIZE, parts[1] if len(parts) > 1 else 0)
            elif kind == "hotpotqa" and rest:
                corpus, tasks = _hotpotqa(Path(rest).expanduser())
            elif kind == "jsonl" and rest.count(":") == 1:
                corpus_path, questions_path = rest.split(":")
                corpus, tasks = _jsonl(Path(corpus_path).expanduser(), Path(questions_path).expanduser())
            elif kind == "2wiki" and rest:
                corpus, tasks, stats = _twowiki(spec, rest)
            elif kind == "musique" and rest:
                corpus, tasks, stats = _musique(spec, rest)
            elif kind == "searchr1" and rest.count(":") == 1:
                questions_path, corpus_path = rest.split(":")
                corpus, tasks = _searchr1(Path(questions_path).expanduser(), Path(corpus_path).expanduser())
            else:
                raise ValueError(
                    f"unknown tasks={spec!r}: use 'fictional', 'fictional:N[:SEED]', 'hotpotqa:PATH', "
                    "'jsonl:CORPUS_PATH:QUESTIONS_PATH', '2wiki:PATH[?aliases=PATH]', "
                    "'musique:PATH[?unanswerable=keep]' or 'searchr1:QUESTIONS_PATH:CORPUS_PATH'"
                )
            if not tasks:
                raise ValueError(f"tasks={spec!r}: the file holds no questions")
            _loaded[key] = SearchDataset(spec, tasks, corpus, _retriever(retriever, corpus), stats)
        return _loaded[key]
