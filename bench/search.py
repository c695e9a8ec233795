"""Search retrieval speed: horizongym's BM25 index against bm25s and rank_bm25, on question queries.

Corpora: the fictional world (``fictional-1m``: 1,000,000 generated documents; its tasks'
questions are the queries) and HotpotQA (``hotpotqa``: the real sample's 926 questions over
their context paragraphs, one document per title). Every implementation gets the same tokens
from ``envs.search.tokenize`` and answers the same top-``k`` (k = 3, the env's default).

- ``query_p50_ms`` / ``query_p99_ms``: one query at a time, question in, top k out
  (horizongym: ``BM25Retriever.search``, documents included; bm25s: tokenize +
  ``BM25.retrieve``, row ids only; rank_bm25: tokenize + ``BM25Okapi.get_scores`` + top k).
- ``qps``: all queries in one batched call (bm25s: one ``retrieve`` call, one thread).
- ``ratio_qps_vs_bm25s``: horizongym qps over bm25s qps on the same corpus and queries.
- ``ratio_qps_vs_rank_bm25``: the same against rank_bm25 on a 50,000-document slice of the
  fictional corpus (rank_bm25 scores every document for every query term in Python).
- ``env_overhead_ratio_vs_bm25s``: a ``SearchJudgeEnv`` search step (``<search>q</search>``,
  the env on horizongym's retriever) over the raw bm25s query, total time on the same queries;
  ``env_overhead_ratio``: the same step over a raw query of the retriever inside the env.
- ``index_docs_per_s`` / ``index_load_s``: building and opening horizongym's index.
- ``expert_em``: exact match of the scripted expert on the default fictional world and on
  the HotpotQA sample, every task once (``task_order="by_seed"``).

    python -m horizongym.bench.search [--quick]

``--quick`` (under a minute, 200 queries) reuses a cached 1M corpus and indexes if present, else runs on a
20,000-document world, and says which.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from horizongym.cache import cache_dir, cached
from horizongym.envs.search.bm25 import BM25Index, BM25Retriever, build_index, index_key
from horizongym.envs.search.corpus import Corpus, cached_corpus
from horizongym.envs.search.data import fictional_corpus_key
from horizongym.envs.search.tokenize import tokenize, tokenize_many
from horizongym.envs.search.types import QATask

HOTPOTQA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "hotpotqa" / "questions.jsonl.gz"
FULL_SIZE = 1_000_000
QUICK_SIZE = 20_000
RANK_BM25_DOCS = 50_000  # rank_bm25 scores every document in Python: a slice it handles in seconds

figures: list[dict[str, Any]] = []


def emit(metric: str, value: float, unit: str, **params: Any) -> None:
    figures.append(
        {"bench": "search", "metric": metric, "value": round(float(value), 4), "unit": unit, "params": params}
    )


def latencies(run: Callable[[str], object], queries: list[str], warmup: int = 20) -> np.ndarray:
    """Milliseconds per query, one query at a time (after ``warmup`` untimed queries)."""
    for query in queries[:warmup]:
        run(query)
    times = []
    for query in queries:
        started = time.perf_counter()
        run(query)
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000.0


def batched_qps(run: Callable[[list[str]], object], queries: list[str]) -> float:
    run(queries[:20])
    started = time.perf_counter()
    run(queries)
    return len(queries) / (time.perf_counter() - started)


def fictional_corpus(size: int, *, progress: bool) -> tuple[Corpus, list[QATask], str]:
    """The generated world of ``size`` documents (seed 0), cached as ``envs.search.data`` caches it."""
    from horizongym.envs.search import world

    generated = world.generate_world(size, 0)
    corpus = cached_corpus(fictional_corpus_key(size, 0), generated.iter_documents, progress=progress)
    return corpus, list(generated.tasks), f"fictional-{size // 1000}k" if size < FULL_SIZE else "fictional-1m"


def fictional_is_cached(size: int) -> bool:
    """Whether the world of ``size`` documents, its index and its ``bm25s`` index are all in the cache."""
    folder = cache_dir() / f"corpus-{fictional_corpus_key(size, 0)}"
    if not folder.exists():
        return False
    corpus = Corpus.open(folder)
    from horizongym.envs.search.retrievers import bm25s_index_key

    return (cache_dir() / index_key(corpus)).exists() and (cache_dir() / bm25s_index_key(corpus)).exists()


def hotpotqa_corpus(path: Path) -> tuple[Corpus, list[QATask]]:
    from horizongym.envs.search.importers import load_hotpotqa

    documents, tasks = load_hotpotqa(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    return cached_corpus(f"bench-hotpotqa-{digest}", lambda: documents), tasks


def our_retriever(corpus: Corpus, *, progress: bool) -> tuple[BM25Retriever, float | None]:
    """horizongym's retriever; the build time when this call built the index."""
    built: list[float] = []

    def build(tmp: Path) -> None:
        started = time.perf_counter()
        build_index(corpus, tmp, progress=progress)
        built.append(time.perf_counter() - started)

    folder = cached(index_key(corpus), build)
    return BM25Retriever(corpus, BM25Index.load(folder)), (built[0] if built else None)


def compare(
    name: str, corpus: Corpus, queries: list[str], k: int, *, progress: bool, fresh_build: bool
) -> dict[str, Any]:
    """horizongym vs bm25s on one corpus; returns what the env-overhead figure needs.

    ``fresh_build``: time an index build even when the index is cached (into a scratch folder).
    """
    from horizongym.envs.search.retrievers import Bm25sRetriever

    ours, build_s = our_retriever(corpus, progress=progress)
    if build_s is None and fresh_build:
        with tempfile.TemporaryDirectory(dir=cache_dir()) as scratch:
            started = time.perf_counter()
            build_index(corpus, Path(scratch), progress=progress)
            build_s = time.perf_counter() - started
    if build_s is not None:
        emit("index_docs_per_s", len(corpus) / build_s, "docs/s", corpus=name, impl="horizongym", docs=len(corpus))
    started = time.perf_counter()
    loaded = BM25Retriever(corpus, BM25Index.load(ours.index.directory))
    emit("index_load_s", time.perf_counter() - started, "s", corpus=name, impl="horizongym")
    started = time.perf_counter()
    theirs = Bm25sRetriever(corpus, progress=progress)
    bm25s_s = time.perf_counter() - started
    model = theirs.model

    def raw_bm25s(query: str) -> object:
        return model.retrieve([tokenize(query)], k=k, show_progress=False, n_threads=0)

    def raw_bm25s_batch(batch: list[str]) -> object:
        return model.retrieve(tokenize_many(batch), k=k, show_progress=False, n_threads=0)

    params = {"corpus": name, "docs": len(corpus), "queries": len(queries), "k": k}
    ours_ms = latencies(lambda q: loaded.search([q], k), queries)
    bm25s_ms = latencies(raw_bm25s, queries)
    ours_qps = batched_qps(lambda b: loaded.search(b, k), queries)
    bm25s_qps = batched_qps(raw_bm25s_batch, queries)
    for impl, ms, qps in (("horizongym", ours_ms, ours_qps), ("bm25s", bm25s_ms, bm25s_qps)):
        emit("query_p50_ms", np.percentile(ms, 50), "ms", impl=impl, **params)
        emit("query_p99_ms", np.percentile(ms, 99), "ms", impl=impl, **params)
        emit("qps", qps, "queries/s", impl=impl, **params)
    emit("ratio_qps_vs_bm25s", ours_qps / bm25s_qps, "x", **params)
    print(
        f"{name}: horizongym p50 {np.percentile(ours_ms, 50):.2f} ms, bm25s p50 {np.percentile(bm25s_ms, 50):.2f} ms "
        f"(bm25s index ready in {bm25s_s:.1f} s)",
        flush=True,
    )
    return {"ours": loaded, "raw_bm25s": raw_bm25s, "params": params}


def env_overhead(
    ours: BM25Retriever, raw_bm25s: Callable[[str], object], tasks: list[QATask], k: int, params: dict[str, Any]
) -> None:
    """SearchJudgeEnv's search step (on horizongym's retriever) over the raw retrievers' queries.

    ``env_overhead_ratio_vs_bm25s``: env search step over the raw bm25s query .
    ``env_overhead_ratio`` (impl horizongym): env search step over the raw query of the very
    retriever inside it, documents included: what the env adds beyond retrieval.
    """
    from horizongym.envs.search.env import SearchJudgeEnv

    env = SearchJudgeEnv(tasks=tasks, split="all", search_backend=ours, top_k=k, max_searches=10**9, max_turns=10**9)
    env.reset(seed=0)
    queries = [t.question for t in tasks]

    def raw_ours(query: str) -> object:
        return ours.search([query], k)

    times: dict[str, list[float]] = {"env": [], "bm25s": [], "ours": []}
    for warm_up, batch in ((True, queries[:20]), (False, queries)):
        for query in batch:
            started = time.perf_counter()
            env.step(f"<search>{query}</search>")
            env_s = time.perf_counter() - started
            env.step("<judge>Yes</judge>")  # judge each result, as the protocol asks (not timed)
            started = time.perf_counter()
            raw_bm25s(query)
            bm25s_s = time.perf_counter() - started
            started = time.perf_counter()
            raw_ours(query)
            ours_s = time.perf_counter() - started
            if not warm_up:
                times["env"].append(env_s)
                times["bm25s"].append(bm25s_s)
                times["ours"].append(ours_s)
    env_ms, bm25s_ms, ours_ms = (np.array(times[name]) * 1000 for name in ("env", "bm25s", "ours"))
    p50 = {
        f"{name}_p50_ms": round(float(np.percentile(ms, 50)), 3)
        for name, ms in (("env_step", env_ms), ("bm25s", bm25s_ms), ("retriever", ours_ms))
    }
    emit("env_overhead_ratio_vs_bm25s", env_ms.sum() / bm25s_ms.sum(), "x", **params, **p50)
    emit("env_overhead_ratio", env_ms.sum() / ours_ms.sum(), "x", impl="horizongym", **params, **p50)


def rank_bm25_slice(corpus: Corpus, name: str, queries: list[str], k: int) -> None:
    """rank_bm25 and horizongym on the first ``RANK_BM25_DOCS`` documents, same queries."""
    from rank_bm25 import BM25Okapi

    n = min(RANK_BM25_DOCS, len(corpus))
    part = cached_corpus(f"bench-slice-{corpus.content_hash[:20]}-{n}", lambda: itertools.islice(iter(corpus), n))
    ours, _ = our_retriever(part, progress=False)
    okapi = BM25Okapi(tokenize_many(part.texts()))

    def rank(query: str) -> object:
        scores = okapi.get_scores(tokenize(query))
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        return top[np.argsort(-scores[top])]

    queries = queries[:100]
    params = {"corpus": f"{name}[:{n}]", "docs": n, "queries": len(queries), "k": k}
    rank_ms = latencies(rank, queries, warmup=3)
    ours_ms = latencies(lambda q: ours.search([q], k), queries)
    rank_qps = len(queries) / (rank_ms.sum() / 1000)
    ours_qps = batched_qps(lambda b: ours.search(b, k), queries)
    for impl, ms, qps in (("rank_bm25", rank_ms, rank_qps), ("horizongym", ours_ms, ours_qps)):
        emit("query_p50_ms", np.percentile(ms, 50), "ms", impl=impl, **params)
        emit("query_p99_ms", np.percentile(ms, 99), "ms", impl=impl, **params)
        emit("qps", qps, "queries/s", impl=impl, **params)
    emit("ratio_qps_vs_rank_bm25", ours_qps / rank_qps, "x", **params)


def expert_em(data: str, tasks: int) -> None:
    """Exact match of the scripted expert over the first ``tasks`` tasks of ``data`` (every split)."""
    from horizongym.agents import expert_for
    from horizongym.training.rollouts import EnvRecipe, RolloutEngine

    recipe = EnvRecipe("SearchJudge-v0", {"tasks": data, "split": "all", "task_order": "by_seed"})
    with RolloutEngine(recipe, expert_for("SearchJudge-v0"), concurrency=4, progress=False) as engine:
        episodes = engine.run_sync(tasks)
    em = sum(e.steps[-1].info.get("answer_em", 0.0) for e in episodes if e.steps) / len(episodes)
    emit("expert_em", em, "fraction", data=data.split(":")[0], tasks=len(episodes))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="under a minute: cached 1M corpus if present, else 20k")
    parser.add_argument("--size", type=int, default=FULL_SIZE, help="fictional corpus size of a full run")
    parser.add_argument("--queries", type=int, default=None, help="questions used as queries (1000; --quick: 200)")
    parser.add_argument("-k", type=int, default=3, help="hits per query (the env's top_k)")
    parser.add_argument("--hotpotqa", type=Path, default=HOTPOTQA, help="HotpotQA questions (JSONL, gzip)")
    args = parser.parse_args(argv)

    size = args.size
    if args.quick:
        if fictional_is_cached(size):
            print(f"--quick: using the cached {size:,}-document corpus and indexes under {cache_dir()}")
        else:
            size = QUICK_SIZE
            print(
                f"--quick: no cached {args.size:,}-document corpus with both indexes under {cache_dir()}; "
                f"using a {size:,}-document world instead (run without --quick to build the full one)"
            )
    progress = not args.quick
    corpus, tasks, name = fictional_corpus(size, progress=progress)
    tasks = tasks[: args.queries or (200 if args.quick else 1000)]
    fresh_build = not args.quick or len(corpus) <= QUICK_SIZE
    result = compare(name, corpus, [t.question for t in tasks], args.k, progress=progress, fresh_build=fresh_build)
    env_overhead(result["ours"], result["raw_bm25s"], tasks, args.k, result["params"])
    rank_bm25_slice(corpus, name, [t.question for t in tasks], args.k)
    if args.hotpotqa.is_file():
        hp_corpus, hp_tasks = hotpotqa_corpus(args.hotpotqa)
        compare("hotpotqa", hp_corpus, [t.question for t in hp_tasks], args.k, progress=False, fresh_build=True)
    else:
        print(f"hotpotqa left out: no file at {args.hotpotqa}")
    expert_em("fictional", 200 if args.quick else 1000)
    if args.hotpotqa.is_file():
        expert_em(f"hotpotqa:{args.hotpotqa}", 926)
    for figure in figures:
        print(json.dumps(figure, ensure_ascii=False))


if __name__ == "__main__":
    main()
