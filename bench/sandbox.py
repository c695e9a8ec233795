"""Docker sandbox speed on the real engine: start, warm acquire, exec round trip, reset, leftovers.

Figures (p50 over repeated runs; ``--quick`` does fewer repetitions):

* ``cold_start_p50_ms`` — ``DockerSandbox(spec)``: create and start a container, attach to its
  exec server, unpack the task's starting files;
* ``warm_acquire_p50_ms`` — ``SandboxPool.acquire(spec)`` with a ready container for the spec;
* ``exec_p50_ms`` — a trivial command (``true``) round trip, through the exec server
  (``path: fast``) and through docker's exec API (``path: exec_run``), and their
  ``ratio_exec_run_vs_fast``;
* ``reset_p50_ms`` — ``reset()`` after a command that changed files and left a process running;
* ``episodes_per_hour`` — SWE-v0 episodes of its expert policy at concurrency 4 (the expert edits
  through the editor, runs the tests once and submits; the hidden tests run in a fresh container);
* ``snapshot_p50_ms`` / ``restore_p50_ms`` (params ``method``: ``archive`` or ``commit``) — an
  SWE-v0 episode forked after a few edits (a changed source file, a new file, a deleted one, a
  file in ``/tmp``, a ``git add``): ``snapshot(env)`` (the container's files read and diffed from
  the task's; for ``commit`` also committed to an image), and ``restore(env, snapshot)`` into
  another env (for ``archive``, into a warm container of the shared pool; for ``commit``, a new
  container of the committed image); the restored files are checked once;
* ``containers_left`` — containers labelled with this run's id once everything is closed (0).

The starting files are a small project (``--files`` files of about 2 kB each).

    python -m horizongym.bench.sandbox [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from horizongym.sandboxes import Limits, SandboxSpec, ensure_base_image, ensure_engine, tar_files
from horizongym.sandboxes.docker import DockerSandbox
from horizongym.sandboxes.pool import SandboxPool
from horizongym.sandboxes.reaper import LABEL, run_id

Figure = dict[str, Any]


def figure(metric: str, value: float, unit: str, **params: Any) -> Figure:
    return {"bench": "sandbox", "metric": metric, "value": round(value, 3), "unit": unit, "params": params}


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def project_files(count: int) -> bytes:
    """A small Python project: ``count`` modules of about 2 kB and a README."""
    files: dict[str, str] = {"README.md": "# bench project\n"}
    for i in range(count):
        body = "".join(f"def f{i}_{j}(x):\n    return x * {j} + {i}\n\n" for j in range(50))
        files[f"src/pkg/mod{i:03d}.py"] = body
    return tar_files(files)


def bench_cold_start(spec: SandboxSpec, client: Any, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        elapsed, box = timed(lambda: DockerSandbox(spec, client=client))
        samples.append(elapsed)
        box.close()
    return samples


def bench_warm_acquire(spec: SandboxSpec, client: Any, n: int) -> list[float]:
    samples = []
    with SandboxPool(size=2, specs=[spec], client=client) as pool:
        pool.prewarm(spec, wait=60)
        for _ in range(n):
            elapsed, box = timed(lambda: pool.acquire(spec))
            samples.append(elapsed)
            box.exec("echo used > used.txt")
            box.close()
            pool.prewarm(spec, wait=10)
    return samples


def bench_exec(box: DockerSandbox, path: str, n: int) -> list[float]:
    box.exec("true", path=path)
    samples = []
    for _ in range(n):
        elapsed, result = timed(lambda: box.exec("true", path=path))
        assert result.exit_code == 0, result
        samples.append(elapsed)
    return samples


def bench_reset(box: DockerSandbox, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        box.exec("echo changed > README.md; rm -rf src/pkg/mod000.py; touch new.txt /tmp/t; sleep 100 &")
        elapsed, _ = timed(box.reset)
        samples.append(elapsed)
    assert box.read_file("README.md") == b"# bench project\n"
    return samples


def swe_episodes_per_hour(concurrency: int, episodes: int, warmup: int) -> Figure:
    """SWE-v0 expert episodes per hour at ``concurrency`` (sandboxes from the shared warm pool)."""
    from horizongym.agents.experts.swe import SWEExpert
    from horizongym.sandboxes.pool import close_shared_pools
    from horizongym.training.rollouts import RolloutEngine

    try:
        with RolloutEngine("SWE-v0", SWEExpert(), concurrency=concurrency, progress=False) as engine:
            engine.run_sync(warmup)  # builds the task's images (once per machine) and warms the pool
            elapsed, done = timed(lambda: engine.run_sync(episodes, seed=concurrency))
    finally:
        close_shared_pools()
    solved = sum(1 for episode in done if episode.success)
    return figure(
        "episodes_per_hour",
        len(done) / elapsed * 3600.0,
        "episodes/h",
        concurrency=concurrency,
        episodes=len(done),
        policy="expert",
        env="SWE-v0",
        solved=solved,
    )


FORK_EDITS = (
    "echo '# edited' >> \"$(git ls-files '*.py' | head -1)\"",
    "printf 'def helper():\\n    return 1\\n' > extra.py && rm -f \"$(git ls-files | grep -v '[.]py$' | head -1)\"",
    "echo scratch > /tmp/notes.txt && git add -A",
)
"""The edits an SWE-v0 episode makes before it is forked (bash commands in its sandbox)."""


def _bash(command: str) -> str:
    return f"<tool_call>{json.dumps({'name': 'bash', 'arguments': {'command': command}})}</tool_call>"


def swe_fork_figures(method: str, n: int) -> list[Figure]:
    """p50 of ``snapshot(env)`` and ``restore(env, snapshot)`` of an SWE-v0 episode after :data:`FORK_EDITS`."""
    import horizongym
    from horizongym.envs.snapshot import release, restore, snapshot
    from horizongym.sandboxes.pool import close_shared_pools, shared_pool
    from horizongym.sandboxes.snapshots import snapshot_sandbox

    trunk = horizongym.make("SWE-v0", task_order="by_seed", snapshot_method=method)
    branch = horizongym.make("SWE-v0", task_order="by_seed", snapshot_method=method)
    try:
        trunk.reset(seed=0)
        for command in FORK_EDITS:
            trunk.step(_bash(command))
        spec = trunk.unwrapped.episode.sandbox.spec  # type: ignore[attr-defined]
        snapshot(trunk)  # warm-up (and the helper image layers, for commit)
        snapshots, restores = [], []
        for _ in range(n):
            start = time.perf_counter()
            snap = snapshot(trunk)
            elapsed = time.perf_counter() - start
            snapshots.append(elapsed)
            if method == "archive":
                shared_pool().prewarm(spec, wait=30)  # a warm container for the restore, as in a rollout
            start = time.perf_counter()
            restore(branch, snap)
            restores.append(time.perf_counter() - start)
            files = branch.unwrapped.episode.sandbox  # type: ignore[attr-defined]
            if len(restores) == 1:
                assert files.read_file("/tmp/notes.txt") == b"scratch\n", "the restored sandbox lacks /tmp"
                assert files.exec("grep -q helper extra.py && git diff --cached --quiet; test $? = 1").exit_code == 0
                assert len(snapshot_sandbox(files, "archive").removed) == 1, "the deleted file is back"
            branch.close()  # its container goes back to the pool (archive) or is removed (commit)
            release(trunk, snap)
    finally:
        trunk.close()
        branch.close()
        close_shared_pools()
    size_kb = len(snap.state.own["episode"].sandbox.changes) / 1024
    params: dict[str, Any] = {"method": method, "n": n, "env": "SWE-v0", "edits": len(FORK_EDITS)}
    if method == "archive":
        params["changes_kb"] = round(size_kb, 1)
    return [
        figure("snapshot_p50_ms", p50_ms(snapshots), "ms", **params),
        figure("restore_p50_ms", p50_ms(restores), "ms", **params),
    ]


def run(quick: bool, files: int, with_swe: bool = True) -> list[Figure]:
    client = ensure_engine()
    spec = SandboxSpec(image=ensure_base_image(client), files=project_files(files), limits=Limits())
    reps = {"cold": 5 if quick else 20, "warm": 30 if quick else 200, "exec": 100 if quick else 500}
    reps.update(exec_run=20 if quick else 100, reset=20 if quick else 100)
    params = {"files": files, "tar_kb": len(spec.files) // 1024}
    figures = []

    cold = bench_cold_start(spec, client, reps["cold"])
    figures.append(figure("cold_start_p50_ms", p50_ms(cold), "ms", n=len(cold), **params))
    print(f"cold start: p50 {p50_ms(cold):.1f} ms over {len(cold)}")

    warm = bench_warm_acquire(spec, client, reps["warm"])
    figures.append(figure("warm_acquire_p50_ms", p50_ms(warm), "ms", n=len(warm), pool_size=2, **params))
    print(f"warm acquire: p50 {p50_ms(warm):.2f} ms over {len(warm)}")

    with DockerSandbox(spec, client=client) as box:
        fast = bench_exec(box, "fast", reps["exec"])
        plain = bench_exec(box, "exec_run", reps["exec_run"])
        resets = bench_reset(box, reps["reset"])
    figures.append(figure("exec_p50_ms", p50_ms(fast), "ms", path="fast", command="true", n=len(fast)))
    figures.append(figure("exec_p50_ms", p50_ms(plain), "ms", path="exec_run", command="true", n=len(plain)))
    figures.append(figure("ratio_exec_run_vs_fast", p50_ms(plain) / p50_ms(fast), "x", command="true"))
    figures.append(figure("reset_p50_ms", p50_ms(resets), "ms", n=len(resets), **params))
    print(
        f"exec: fast p50 {p50_ms(fast):.2f} ms, exec_run p50 {p50_ms(plain):.2f} ms; reset p50 {p50_ms(resets):.2f} ms"
    )

    if with_swe:
        for method in ("archive", "commit"):
            forks = swe_fork_figures(method, n=10 if quick else 40)
            figures.extend(forks)
            took = f"snapshot p50 {forks[0]['value']:.1f} ms, restore p50 {forks[1]['value']:.1f} ms"
            print(f"SWE-v0 fork ({method}): {took}")
        swe = swe_episodes_per_hour(4, episodes=8 if quick else 32, warmup=4)
        figures.append(swe)
        print(f"SWE-v0: {swe['value']:.0f} episodes/h at concurrency 4")

    mine = client.containers.list(all=True, filters={"label": f"{LABEL}={run_id()}"}, ignore_removed=True)
    anyone = client.containers.list(all=True, filters={"label": LABEL}, ignore_removed=True)
    figures.append(
        figure("containers_left", len(mine), "containers", label=f"{LABEL}={run_id()}", any_owner=len(anyone))
    )
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="under a minute: fewer repetitions")
    parser.add_argument("--files", type=int, default=100, help="files in the task's starting tar (default 100)")
    parser.add_argument(
        "--no-swe",
        action="store_true",
        help="skip the SWE-v0 figures (forks, episodes_per_hour)",
    )
    parser.add_argument("--only-forks", action="store_true", help="only the SWE-v0 snapshot and restore figures")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.only_forks:
        figures = [f for method in ("archive", "commit") for f in swe_fork_figures(method, n=10 if args.quick else 40)]
    else:
        figures = run(args.quick, args.files, with_swe=not args.no_swe)
    print(f"sandbox bench done in {time.perf_counter() - started:.1f} s")
    for item in figures:
        print(json.dumps(item, ensure_ascii=False))


if __name__ == "__main__":
    main()
