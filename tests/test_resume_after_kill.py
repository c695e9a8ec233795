"""A run killed with SIGKILL mid-way and resumed ends with exactly N episodes, none duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

N_TASKS, GROUP = 12, 2

SCRIPT = textwrap.dedent(
    f"""
    import sys, time
    import horizongym
    from horizongym.agents import expert_for
    from horizongym.envs.keychain import KeyChainEnv
    from horizongym.training.rollouts import EpisodeStore, RolloutEngine

    class SlowKeyChain(KeyChainEnv):
        blocking = True

        def step(self, action):
            time.sleep(0.05)
            return super().step(action)

    horizongym.register("SlowKeyChain-v0", SlowKeyChain)
    with EpisodeStore(sys.argv[1]) as store:
        engine = RolloutEngine("SlowKeyChain-v0", expert_for("KeyChain-v0"), concurrency=3, store=store, progress=False)
        engine.run_sync({N_TASKS}, {GROUP}, seed=7, resume=True)
    print("finished")
    """
)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n") if path.exists() else []


def test_sigkill_then_resume_gives_exactly_n_episodes(tmp_path: Path) -> None:
    script, out = tmp_path / "run.py", tmp_path / "episodes.jsonl"
    script.write_text(SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), str(out)], start_new_session=True)
    deadline = time.monotonic() + 60
    while len([line for line in _lines(out) if line.strip()]) < 5:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no episodes were written"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    first_run = [json.loads(line) for line in _lines(out) if line.strip()]
    assert 5 <= len(first_run) < N_TASKS * GROUP, "kill came too late to test resuming"

    # simulate a kill in the middle of a write too: a torn last line
    with open(out, "ab") as handle:
        handle.write(b'{"env_id": "SlowKeyChain-v0", "seed": 99')

    result = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    episodes = [json.loads(line) for line in _lines(out) if line.strip()]
    keys = [(e["seed"], e["sample"]) for e in episodes]
    assert len(keys) == len(set(keys)) == N_TASKS * GROUP
    assert set(keys) == {(7 + t, s) for t in range(N_TASKS) for s in range(GROUP)}
    assert all(e["success"] for e in episodes)
    assert episodes[: len(first_run)] == first_run  # what was stored before the kill is kept as it was
