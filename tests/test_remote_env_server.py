"""RemoteEnv against horizongym's own env server: whole episodes equal the in-process env's, the rollout
engine and the CLI drive it, and the server's own endings (env errors, idle timeouts, capacity) reach the engine."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import horizongym
from horizongym.agents.scripted import expert_for
from horizongym.cli import main
from horizongym.envs.base import Task, TextEnv
from horizongym.envs.remote.client import RemoteEnv, RemoteEnvAtCapacity, RemoteEnvError
from horizongym.envs.remote.protocol import MAX_MESSAGE_BYTES, jsonable
from horizongym.envs.remote.server import SERVER_CONFIG, create_app
from horizongym.serverthread import ServerThread
from horizongym.training.rollouts import EnvRecipe, RolloutEngine, read_episodes
from horizongym.training.rollouts.replay import replay_episodes

ENV_ID = "KeyChain-v0"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with ServerThread(create_app(ENV_ID, max_sessions=8, idle_timeout_s=60), **SERVER_CONFIG) as server:
        yield f"ws://{server.host}:{server.port}"


def play(env: Any, seed: int, prefix: list[str]) -> list[tuple[Any, ...]]:
    """Every value ``env`` returns in an episode from ``seed``: the ``prefix`` actions, then the expert's."""
    expert = expert_for(ENV_ID)
    observation, info = env.reset(seed=seed)
    played: list[tuple[Any, ...]] = [(observation, jsonable(info))]
    seen = [{"role": "user", "content": observation}]
    pending = list(prefix)
    while True:
        action = pending.pop(0) if pending else expert.decide(seen, info["tools"], None).env_action()
        observation, reward, terminated, truncated, info = env.step(action)
        seen.append({"role": "user", "content": observation})
        played.append((action, observation, reward, terminated, truncated, jsonable(info)))
        if terminated or truncated:
            return played


@pytest.mark.parametrize("seed", [0, 11])
def test_episodes_equal_the_in_process_env(url: str, seed: int) -> None:
    prefix = ["no call at all", "<tool_call>{not json</tool_call>"]
    local = play(horizongym.make(ENV_ID), seed, prefix)
    env = horizongym.make(url)
    assert isinstance(env, RemoteEnv)
    try:
        assert play(env, seed, prefix) == local
        assert local[-1][3] is True and local[-1][5]["success"] is True
        assert env.state()["env_id"] == ENV_ID and env.served_env_id == ENV_ID
    finally:
        env.close()


def test_the_engine_the_cli_and_replay_drive_it_like_a_local_env(url: str, tmp_path: Path) -> None:
    with RolloutEngine(EnvRecipe(url), expert_for(ENV_ID), concurrency=4, progress=False) as engine:
        remote_run = sorted(engine.run_sync(8), key=lambda e: e.seed)
    with RolloutEngine(EnvRecipe(ENV_ID), expert_for(ENV_ID), concurrency=4, progress=False) as engine:
        local_run = sorted(engine.run_sync(8), key=lambda e: e.seed)
    timings = {"policy_seconds", "env_seconds"}
    for remote, local in zip(remote_run, local_run, strict=True):
        assert remote.outcome == "completed" and remote.success is True
        assert remote.task_id == local.task_id and remote.total_reward == local.total_reward
        assert remote.messages == local.messages
        assert [s.model_dump(exclude=timings) for s in remote.steps] == [
            s.model_dump(exclude=timings) for s in local.steps
        ]
    assert all(verdict.matches for verdict in replay_episodes(remote_run))  # a remote run replays on the server
    out = tmp_path / "run.jsonl"
    assert main(["rollout", url, "--policy", "expert", "-n", "4", "--out", str(out), "--quiet"]) == 0
    assert [e.success for e in read_episodes(out)] == [True] * 4


class Fickle(TextEnv):
    """Says ``ok`` to anything, except ``crash`` (raises), ``shout`` (an answer over 1 MiB) and
    ``options.fail`` at reset (raises)."""

    def new_task(self, options: dict[str, Any]) -> Task:
        if options.get("fail"):
            raise RuntimeError("no task today")
        return Task("fickle", "Say anything.")

    def on_text(self, text: str) -> str:
        if text == "crash":
            raise RuntimeError("the env broke")
        if text == "shout":
            return "é" * MAX_MESSAGE_BYTES  # 2 MiB of UTF-8: an answer may be larger than a request
        return "ok"


def test_the_servers_own_endings_reach_the_caller() -> None:
    if "RemoteFickle-v0" not in horizongym.registry:
        horizongym.register("RemoteFickle-v0", Fickle)
    long_texts = {"max_text_length": 2 * MAX_MESSAGE_BYTES}
    app = create_app("RemoteFickle-v0", long_texts, max_sessions=1, idle_timeout_s=0.3)
    with ServerThread(app, **SERVER_CONFIG) as server:
        url = f"ws://{server.host}:{server.port}"
        env, other = RemoteEnv(url), RemoteEnv(url)
        try:
            env.reset()
            with pytest.raises(RemoteEnvAtCapacity, match="at capacity"):
                other.reset()
            _, _, _, truncated, end = env.step("crash")  # the server's own env_error observation, unchanged
            assert truncated and end["termination_reason"] == "env_error"
            assert "the env broke" in end["termination_detail"]
            with pytest.raises(RemoteEnvError, match="no task today"):
                env.reset(options={"fail": True})
            with pytest.raises(RemoteEnvAtCapacity, match="at capacity"):
                other.reset()  # the session serves on after its env raised
            deadline = time.monotonic() + 10
            while app.state.server.table.active and time.monotonic() < deadline:
                time.sleep(0.02)
            assert app.state.server.table.active == 0  # the server closed the idle session
            assert env.reset()[0].startswith("Say anything.")  # and the next reset opens another
            info = env.step("hello")[4]
            assert info["turn"] == 1 and info["task_id"] == "fickle"
            observation, _, _, truncated, info = env.step("shout")
            assert observation == "é" * MAX_MESSAGE_BYTES and not truncated and info["turn"] == 2
        finally:
            env.close()
            other.close()


def test_train_drives_a_served_env(url: str, tiny_model_dir: Path) -> None:
    out = tiny_model_dir.parent / "remote-train"
    args = ["train", url, "--policy", f"hf:{tiny_model_dir}", "--out", str(out), "--quiet", "--steps", "1"]
    args += ["--group", "2", "--tasks-per-step", "1", "--max-new-tokens", "4", "--eval-every", "1", "--eval-tasks", "2"]
    assert main(args) == 0
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics and metrics[-1]["step"] == 1
    episodes = read_episodes(out / "episodes.jsonl")
    assert len(episodes) == 2 and {e.env_id for e in episodes} == {url}
    assert all(e.outcome in ("completed", "truncated") and e.steps for e in episodes)


def test_a_rollout_against_no_server_names_the_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{probe.getsockname()[1]}"
    out = tmp_path / "run.jsonl"
    args = ["rollout", url, "--policy", "random", "-n", "2", "--out", str(out), "--quiet", "--max-attempts", "2"]
    assert main(args) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "all 2 episodes failed (infra_error 2)" in line and "RemoteEnvUnavailable" in line
    assert f"is 'horizongym serve-env' running at {url}" in line
    assert all(not e.trainable and e.retryable and len(e.attempts) == 1 for e in read_episodes(out))  # 2 tries
    assert main(["play", url]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"horizongym: error: {url} failed in reset (seed 0): RemoteEnvUnavailable")
    assert "serve-env" in line and "registered" not in line
