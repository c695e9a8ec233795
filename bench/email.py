"""Email store speed: building it, and the search/read tools an ART·E-style episode calls.

Archives: the real Enron sample (``enron``: ``shared/data/enron/emails.jsonl.gz``, 44,714 emails,
137 inboxes) and a synthetic one (``synthetic-500k``: 500,000 emails over 50 inboxes, Zipf-worded,
from ``envs.email.synthetic_archive``).

Queries are inbox-scoped and drawn from each archive's own word distribution: the inbox is the owner
of a random email, and each of the two keywords is a random word (3+ letters) of a random email of
the archive, so words come as often as they occur in the text. Every search is newest first,
limit 10, as the env's ``search_emails`` tool runs it.

- ``import_emails_per_s``: ``EmailStore.build`` from the source (Enron: parsing the JSONL included;
  synthetic: generating included), emails per second.
- ``search_p50_ms`` / ``search_p99_ms``: one search at a time, ``EmailStore.search``, hits built.
- ``read_p50_ms``: ``EmailStore.read`` of an email of the inbox, one at a time.
- ``concurrent_search_p50_ms``: latency of each search while 16 threads search at once, each with
  its own connection; ``concurrent_search_qps`` the throughput of those 16 threads.

    python -m horizongym.bench.email [--quick]

``--quick`` (under a minute, 200 queries) reuses the cached 500k store if present, else builds a
50,000-email synthetic archive instead, and says which.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from horizongym.cache import cache_dir, cached, content_key
from horizongym.envs.email import synthetic_archive
from horizongym.envs.email.importers import load_enron_jsonl
from horizongym.envs.email.store import EmailStore

ENRON = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "enron" / "emails.jsonl.gz"
FULL_SIZE = 500_000
QUICK_SIZE = 50_000
THREADS = 16

figures: list[dict[str, Any]] = []


def emit(metric: str, value: float, unit: str, **params: Any) -> None:
    figures.append(
        {"bench": "email", "metric": metric, "value": round(float(value), 4), "unit": unit, "params": params}
    )


def synthetic_key(size: int) -> str:
    """Cache key of a synthetic store: its size and the code of the generator and the store."""
    modules = (
        "horizongym.envs.email.synthetic_archive",
        "horizongym.envs.email.store",
        "horizongym.envs.synthetic_names",
    )
    return f"email-bench-synthetic-{size}-0-{content_key(modules=modules, length=16)}"


def build_timed(emails: Callable[[], Any], path: Path) -> tuple[EmailStore, float, float]:
    """Build a store; return it, the end-to-end rate (reading/generating the emails included)
    and the store's own rate (the time spent producing the ``Email`` records left out)."""
    producing = 0.0

    def timed_source() -> Any:
        nonlocal producing
        source = iter(emails())
        while True:
            started = time.perf_counter()
            try:
                email = next(source)
            except StopIteration:
                producing += time.perf_counter() - started
                return
            producing += time.perf_counter() - started
            yield email

    started = time.perf_counter()
    store = EmailStore.build(timed_source(), path)
    total = time.perf_counter() - started
    return store, len(store) / total, len(store) / max(total - producing, 1e-9)


def sample_queries(store: EmailStore, count: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """``(owner, [word, word])`` pairs: the owner of a random email, words from random emails' text."""
    rng = random.Random(seed)
    conn = sqlite3.connect(store.path.resolve().as_uri() + "?mode=ro", uri=True)  # a read-only connection of our own
    total = len(store)

    def random_row(column: str) -> str:
        return str(conn.execute(f"SELECT {column} FROM emails WHERE id = ?", (rng.randint(1, total),)).fetchone()[0])

    queries: list[tuple[str, list[str]]] = []
    while len(queries) < count:
        owner = random_row("owner")
        words: list[str] = []
        while len(words) < 2:
            tokens = [t for t in random_row("body").lower().split() if t.isalpha() and len(t) >= 3]
            if tokens:
                words.append(rng.choice(tokens))
        queries.append((owner, words))
    conn.close()
    return queries


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.array(times) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def measure(store: EmailStore, archive: str, queries: list[tuple[str, list[str]]]) -> None:
    for owner, words in queries[:20]:  # warm-up
        store.search(owner, words)
    times, read_ids = [], []
    for owner, words in queries:
        started = time.perf_counter()
        hits = store.search(owner, words)
        times.append(time.perf_counter() - started)
        if hits:
            read_ids.append((owner, hits[len(hits) // 2].message_id))
    p50, p99 = percentiles(times)
    found = sum(1 for _ in read_ids) / len(queries)
    params = {"archive": archive, "queries": len(queries), "keywords": 2, "limit": 10, "with_hits": round(found, 3)}
    emit("search_p50_ms", p50, "ms", **params)
    emit("search_p99_ms", p99, "ms", **params)

    times = []
    for owner, message_id in read_ids:
        started = time.perf_counter()
        store.read(owner, message_id)
        times.append(time.perf_counter() - started)
    emit("read_p50_ms", percentiles(times)[0], "ms", archive=archive, reads=len(read_ids))

    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS + 1)
    reader = EmailStore.open(store.path)  # a fresh store: every thread opens its own connection

    def work(part: list[tuple[str, list[str]]]) -> None:
        reader.search(*part[0])  # opens this thread's connection before the clock starts
        barrier.wait()
        mine = []
        for owner, words in part:
            started = time.perf_counter()
            reader.search(owner, words)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(queries[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    params = {"archive": archive, "threads": THREADS, "queries": len(queries)}
    emit("concurrent_search_p50_ms", percentiles(latencies)[0], "ms", **params)
    emit("concurrent_search_qps", len(latencies) / elapsed, "queries/s", **params)


def expert_accuracy(data: str, limit: int | None) -> None:
    """Share of questions the scripted expert answers correctly (every question once, or the first ``limit``)."""
    from horizongym.agents import expert_for
    from horizongym.envs.email.data import load_email_data
    from horizongym.training.rollouts import EnvRecipe, RolloutEngine

    total = len(load_email_data(data).questions) if limit is None else limit
    recipe = EnvRecipe("EmailInbox-v0", {"tasks": data, "split": "all", "task_order": "by_seed"})
    with RolloutEngine(recipe, expert_for("EmailInbox-v0"), concurrency=4, progress=False) as engine:
        episodes = engine.run_sync(total)
    accuracy = sum(bool(e.success) for e in episodes) / len(episodes)
    emit("expert_accuracy", accuracy, "fraction", data=data.split(":")[0], questions=len(episodes))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="under a minute: cached 500k store if present, else 50k")
    parser.add_argument("--size", type=int, default=FULL_SIZE, help="emails in the synthetic archive (500,000)")
    parser.add_argument("--queries", type=int, default=None, help="queries per archive (2000; --quick: 200)")
    parser.add_argument("--enron", type=Path, default=ENRON, help="the Enron JSONL sample")
    args = parser.parse_args(argv)
    count = args.queries or (200 if args.quick else 2000)

    with tempfile.TemporaryDirectory(prefix="hg-email-bench-") as tmp:
        if args.enron.is_file():
            enron, rate, store_rate = build_timed(lambda: load_enron_jsonl(args.enron), Path(tmp) / "enron.sqlite")
            emit("import_emails_per_s", rate, "emails/s", archive="enron", emails=len(enron), stage="end_to_end")
            emit("import_emails_per_s", store_rate, "emails/s", archive="enron", emails=len(enron), stage="store")
            measure(enron, "enron", sample_queries(enron, count))
        else:
            print(f"enron left out: no file at {args.enron}")

        size = args.size
        key = synthetic_key(size)
        if args.quick and not (cache_dir() / key).exists():
            print(
                f"--quick: no cached {size:,}-email synthetic store under {cache_dir()}; using a {QUICK_SIZE:,}-email "
                "archive instead (run without --quick to build and cache the full one)"
            )
            size = QUICK_SIZE
            synthetic, rate, store_rate = build_timed(
                lambda: synthetic_archive.generate_archive(size), Path(tmp) / "synthetic.sqlite"
            )
            archive = f"synthetic-{size // 1000}k"
            emit("import_emails_per_s", rate, "emails/s", archive=archive, emails=size, stage="end_to_end")
            emit("import_emails_per_s", store_rate, "emails/s", archive=archive, emails=size, stage="store")
        elif (cache_dir() / key).exists():
            print(f"using the cached {size:,}-email synthetic store under {cache_dir() / key} (build not timed)")
            synthetic = EmailStore.open(cache_dir() / key / "emails.sqlite")
        else:
            rates: list[tuple[float, float]] = []

            def build(folder: Path) -> None:
                _, rate, store_rate = build_timed(
                    lambda: synthetic_archive.generate_archive(size), folder / "emails.sqlite"
                )
                rates.append((rate, store_rate))

            synthetic = EmailStore.open(cached(key, build) / "emails.sqlite")
            archive = f"synthetic-{size // 1000}k"
            for stage, value in zip(("end_to_end", "store"), rates[0] if rates else (), strict=False):
                emit("import_emails_per_s", value, "emails/s", archive=archive, emails=size, stage=stage)
        measure(synthetic, f"synthetic-{size // 1000}k", sample_queries(synthetic, count))

    expert_accuracy("synthetic", 300 if args.quick else None)
    if args.enron.is_file():
        expert_accuracy(f"enron:{args.enron}", 300 if args.quick else None)
    for figure in figures:
        print(json.dumps(figure, ensure_ascii=False))


if __name__ == "__main__":
    main()
