"""SWE-v0's infrastructure failures on the real Docker engine (the embedded library's tasks).

A container killed from outside mid-episode ends the attempt as ``sandbox_died``: the rollout
engine plays the episode again on a fresh sandbox and stores it once, as completed, with the
failed attempt listed; with retries exhausted it is stored once as a retryable ``infra_error``
that no trainer learns from. ``--resume`` neither runs it again nor duplicates it, and no
container is left behind. A sandbox that cannot start (at reset, or for the hidden tests) is an
infrastructure failure too, never the agent's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

import horizongym
from horizongym.agents.base import Action, Message
from horizongym.agents.experts.swe import SWEExpert
from horizongym.agents.scripted import ScriptedPolicy
from horizongym.envs.swe import environments
from horizongym.envs.swe.env import SWEEnv
from horizongym.sandboxes import engine
from horizongym.sandboxes.pool import close_shared_pools
from horizongym.sandboxes.reaper import LABEL, run_id
from horizongym.tools import ToolCall
from horizongym.training.rollouts import EnvRecipe, Episode, EpisodeStore, RolloutEngine, read_episodes

RECIPE = EnvRecipe("SWE-v0", {"task_order": "by_seed", "command_timeout": 10.0})


class KillsItsSandbox(ScriptedPolicy):
    """For its first ``kills`` attempts: asks the container's name (its hostname), kills that container
    from outside, then runs one more command. After that it plays :class:`SWEExpert` (gold patch, submit)."""

    name = "kills-then-expert"

    def __init__(self, kills: int) -> None:
        self.kills_left = kills
        self.killed: list[str] = []
        self.turns = 0
        self.expert = SWEExpert()

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        self.turns += 1
        if not self.kills_left:
            return self.expert.decide(messages, tools, seed)
        if not any(m["role"] == "assistant" for m in messages):  # the first turn of an attempt
            return Action(tool_calls=[ToolCall("bash", {"command": "hostname"})])
        hostname = str(messages[-1]["content"]).strip()
        docker.from_env().containers.get(hostname).kill()
        self.killed.append(hostname)
        self.kills_left -= 1
        return Action(tool_calls=[ToolCall("bash", {"command": "echo still here"})])


def our_containers() -> set[str]:
    """The containers labelled as this process's (the reaper's owner label)."""
    client = docker.from_env()
    listed = client.containers.list(all=True, filters={"label": f"{LABEL}={run_id()}"}, ignore_removed=True)
    return {container.id for container in listed}


@pytest.fixture
def no_container_left() -> Iterator[None]:
    """After the test and the shared pools' close, none of this process's containers is new."""
    before = our_containers()
    yield
    close_shared_pools()
    deadline = time.monotonic() + 60  # removals run in background threads; docker removes killed ones itself
    while (left := our_containers() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"containers left behind: {left}"


def run(policy: ScriptedPolicy, path: Path, *, max_attempts: int = 3, resume: bool = False) -> list[Episode]:
    with (
        EpisodeStore(path) as store,
        RolloutEngine(
            RECIPE, policy, concurrency=1, store=store, progress=False, max_attempts=max_attempts
        ) as rollouts,
    ):
        return rollouts.run_sync(1, seed=0, resume=resume)


def assert_resume_runs_nothing(policy: KillsItsSandbox, path: Path, stored: Episode) -> None:
    turns = policy.turns
    assert run(policy, path, resume=True) == []
    assert policy.turns == turns
    assert read_episodes(path) == [stored]


@pytest.mark.usefixtures("no_container_left")
def test_a_killed_container_is_retried_on_a_fresh_sandbox_and_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    policy = KillsItsSandbox(kills=1)
    (episode,) = run(policy, path)

    assert episode.outcome == "completed" and episode.terminated and episode.trainable
    assert episode.success is True and episode.total_reward == 1.0 and not episode.retryable
    (failed,) = episode.attempts
    assert failed.termination_reason == "sandbox_died" and failed.turns == 2
    assert failed.detail is not None and policy.killed[0] in failed.detail
    (stored,) = read_episodes(path)
    assert stored.attempts == episode.attempts and stored.outcome == "completed"
    assert_resume_runs_nothing(policy, path, stored)


@pytest.mark.usefixtures("no_container_left")
def test_with_retries_exhausted_it_is_a_retryable_infra_error_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    policy = KillsItsSandbox(kills=2)
    (episode,) = run(policy, path, max_attempts=2)

    assert len(policy.killed) == 2 and policy.killed[0] != policy.killed[1]  # each try had a container of its own
    assert episode.outcome == "infra_error" and episode.retryable and not episode.trainable
    assert episode.termination_reason == "sandbox_died" and episode.success is None
    assert episode.termination_detail is not None and policy.killed[1] in episode.termination_detail
    (failed,) = episode.attempts
    assert failed.termination_reason == "sandbox_died" and policy.killed[0] in (failed.detail or "")
    (stored,) = read_episodes(path)
    assert stored.outcome == "infra_error" and stored.retryable and len(stored.attempts) == 1
    assert_resume_runs_nothing(policy, path, stored)


def dead_client(folder: Path) -> Any:
    """A docker client of a socket no engine listens on (the API version given: asking for it would fail)."""
    return docker.DockerClient(base_url=f"unix://{folder}/no-engine.sock", version="1.41")


@pytest.fixture
def dead_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's shared docker client points at a socket no engine listens on (as when dockerd died)."""
    client = dead_client(tmp_path)
    monkeypatch.setitem(engine._shared, "pid", os.getpid())
    monkeypatch.setitem(engine._shared, "client", client)
    yield
    client.close()


@pytest.mark.usefixtures("dead_engine")
def test_a_sandbox_that_cannot_start_at_reset_is_a_retried_infra_error() -> None:
    recipe = EnvRecipe("SWE-v0", {"task_order": "by_seed", "backend": "docker", "warm_pool": False})
    with RolloutEngine(recipe, SWEExpert(), concurrency=1, progress=False, max_attempts=2) as rollouts:
        (episode,) = rollouts.run_sync(1)
    assert episode.outcome == "infra_error" and episode.retryable and episode.termination_reason == "infra_error"
    assert episode.error is not None and episode.error.startswith("reset: SandboxError") and "docker" in episode.error
    assert not episode.steps and [a.termination_reason for a in episode.attempts] == ["infra_error"]


def submit_call() -> str:
    return '<tool_call>{"name": "submit", "arguments": {}}</tool_call>'


def test_hidden_tests_that_cannot_start_end_the_episode_as_an_infra_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = horizongym.make("SWE-v0", task_order="by_seed").unwrapped
    assert isinstance(env, SWEEnv)
    try:
        env.reset(seed=0)  # the agent's sandbox, from the warm pool (its own client)
        client = dead_client(tmp_path)
        monkeypatch.setitem(engine._shared, "pid", os.getpid())
        monkeypatch.setitem(engine._shared, "client", client)  # the hidden tests' sandbox cannot start
        observation, reward, terminated, truncated, info = env.step(submit_call())
        assert truncated and not terminated and reward == 0.0 and info["success"] is False
        assert info["termination_reason"] == "infra_error" and "hidden tests" in info["termination_detail"]
        assert "The episode ends" in observation
    finally:
        env.close()


def test_a_failure_another_try_cannot_fix_ends_the_episode_as_not_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    env = horizongym.make("SWE-v0", task_order="by_seed").unwrapped
    assert isinstance(env, SWEEnv)
    try:
        env.reset(seed=0)
        instance = env.current_task
        name = environments.image_name(instance.environment)
        monkeypatch.setitem(environments._images, name, "horizongym/no-such-image:0")  # the hidden tests' image
        observation, reward, terminated, truncated, info = env.step(submit_call())
        assert truncated and not terminated and reward == 0.0
        assert info["termination_reason"] == "infra_error" and info["retryable"] is False
        assert "not found" in info["termination_detail"] and "not found" in observation
    finally:
        env.close()
