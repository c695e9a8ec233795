"""Env server overhead: KeyChain-v0 stepped in process, over the WebSocket server, and over HTTP.

Every session plays KeyChain-v0 (chains of depth 2, ``reset(options={"depth": 2})``) with a fixed
scripted action loop: three lookups, then an answer, which ends the episode (four steps), then
the next episode. The actions do not depend on what the env answers, so each transport does the
same work:

- ``inproc``: ``horizongym.make("KeyChain-v0")`` per session, stepped directly; with several
  sessions, one asyncio task per env, yielding to the loop after each step, as a rollout engine does;
- ``ws``: one WebSocket connection (one server session) per client task, ``step`` messages;
- ``http``: ``POST /reset`` once per client task for a session, then ``POST /step`` with its
  ``session_id``, each task with an ``httpx.AsyncClient`` of its own (one kept-alive connection:
  one client shared by 64 tasks spends more time in its connection pool than the server spends).
  At 64 sessions the HTTP figures are bound by the client's CPU (httpx costs more per request
  than the server does), on a machine whose cores the client and server share.

The server runs in its own process (``horizongym serve-env``), so client and server do not share
an interpreter. Figures, for ``sessions`` = 1 and 64: ``steps_per_s`` (steps over the wall time
from the moment every session is connected and reset to the last step, later resets included),
``step_p50_ms`` and ``step_p99_ms`` (one step's round trip as its client sees it), per
``transport``; and ``ratio_ws_vs_inproc``: the WebSocket server's steps per second over
in-process steps per second (below 1: the cost of the server). The best of ``--repeats`` runs is
reported for the rates, the latencies of that run with them.

    python -m horizongym.bench.server [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import websockets

import horizongym

ENV_ID = "KeyChain-v0"
ACTIONS = ("<lookup>amber</lookup>", "<lookup>birch</lookup>", "<lookup>cedar</lookup>", "<answer>1234</answer>")
"""The fixed action loop of one episode: the answer ends it."""
RESET = {"seed": 0, "options": {"depth": 2}}

Run = tuple[float, list[float]]
"""A run's wall time (s) and every step's latency (s)."""


def figure(metric: str, value: float, unit: str, **params: Any) -> str:
    return json.dumps({"bench": "server", "metric": metric, "value": round(value, 3), "unit": unit, "params": params})


Played = tuple[float, float, list[float]]
"""One client task's first step's start, last step's end, and every step's latency (s)."""


async def _sessions(sessions: int, play: Callable[[asyncio.Barrier], Awaitable[Played]]) -> Run:
    """Run ``sessions`` client tasks; they start stepping together, once every one is connected and reset.

    The wall time runs from the first step's start to the last step's end.
    """
    barrier = asyncio.Barrier(sessions)
    done = await asyncio.gather(*(play(barrier) for _ in range(sessions)))
    wall = max(end for _, end, _ in done) - min(start for start, _, _ in done)
    return wall, [x for _, _, latencies in done for x in latencies]


def inproc_run(sessions: int, steps: int) -> Run:
    async def play(barrier: asyncio.Barrier) -> Played:
        env, latencies = horizongym.make(ENV_ID), []
        env.reset(**RESET)  # type: ignore[arg-type]
        await barrier.wait()
        first = time.perf_counter()
        for step in range(steps):
            started = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(ACTIONS[step % len(ACTIONS)])
            latencies.append(time.perf_counter() - started)
            if terminated or truncated:
                env.reset(**RESET)  # type: ignore[arg-type]
            if sessions > 1:
                await asyncio.sleep(0)
        return first, time.perf_counter(), latencies

    return asyncio.run(_sessions(sessions, play))


def ws_run(url: str, sessions: int, steps: int) -> Run:
    reset = json.dumps({"type": "reset", "data": RESET})
    actions = [json.dumps({"type": "step", "data": {"text": action}}) for action in ACTIONS]

    async def play(barrier: asyncio.Barrier) -> Played:
        latencies = []
        async with websockets.connect(f"ws://{url.removeprefix('http://')}/ws", max_size=None) as ws:
            await ws.send(reset)
            await ws.recv()
            await barrier.wait()
            first = time.perf_counter()
            for step in range(steps):
                started = time.perf_counter()
                await ws.send(actions[step % len(actions)])
                answer = json.loads(await ws.recv())
                latencies.append(time.perf_counter() - started)
                if answer["data"]["done"]:
                    await ws.send(reset)
                    await ws.recv()
            ended = time.perf_counter()
        return first, ended, latencies

    return asyncio.run(_sessions(sessions, play))


def http_run(url: str, sessions: int, steps: int) -> Run:
    async def play(barrier: asyncio.Barrier) -> Played:
        latencies = []
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:  # one connection per client task
            session_id = (await http.post("/reset", json={**RESET, "session": True})).json()["session_id"]
            await barrier.wait()
            first = time.perf_counter()
            for step in range(steps):
                body = {"action": {"text": ACTIONS[step % len(ACTIONS)]}, "session_id": session_id}
                started = time.perf_counter()
                answer = (await http.post("/step", json=body)).json()
                latencies.append(time.perf_counter() - started)
                if answer["done"]:
                    await http.post("/reset", json={**RESET, "session_id": session_id})
            ended = time.perf_counter()
            await http.post("/close", json={"session_id": session_id})
        return first, ended, latencies

    return asyncio.run(_sessions(sessions, play))


@contextmanager
def served(sessions: int) -> Iterator[str]:
    """``horizongym serve-env KeyChain-v0`` in its own process on a free port; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "horizongym", "serve-env", ENV_ID, "--port", str(port)]
    command += ["--max-sessions", str(sessions)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode() if process.stderr else ""
                    sys.exit(f"bench.server: error: the server did not start: {error.strip()[-300:]}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def percentile_ms(latencies: list[float], q: int) -> float:
    """The ``q``-th percentile in milliseconds (``statistics.quantiles``, inclusive method)."""
    return statistics.quantiles(latencies, n=100, method="inclusive")[q - 1] * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps; finishes in well under a minute")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the best is reported")
    args = parser.parse_args(argv)
    total_steps = 1024 if args.quick else 20000
    lines = []
    for sessions in (1, 64):
        steps = max(total_steps // sessions, 2 * len(ACTIONS))
        with served(sessions) as url:
            runs: dict[str, Callable[[int], Run]] = {
                "inproc": functools.partial(inproc_run, sessions),
                "ws": functools.partial(ws_run, url, sessions),
                "http": functools.partial(http_run, url, sessions),
            }
            rates = {}
            for transport, run in runs.items():
                run(2 * len(ACTIONS))  # warm: imports, connections, the server's first sessions
                seconds, latencies = min((run(steps) for _ in range(args.repeats)), key=lambda r: r[0])
                rates[transport] = len(latencies) / seconds
                lines.append(figure("steps_per_s", rates[transport], "steps/s", transport=transport, sessions=sessions))
                for metric, q in (("step_p50_ms", 50), ("step_p99_ms", 99)):
                    value = percentile_ms(latencies, q)
                    lines.append(figure(metric, value, "ms", transport=transport, sessions=sessions))
        lines.append(figure("ratio_ws_vs_inproc", rates["ws"] / rates["inproc"], "x", sessions=sessions))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
