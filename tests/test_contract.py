"""The env ↔ engine contract: info keys, termination reasons, and records that always read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_type_hints

import gymnasium as gym
import pytest

import horizongym
from horizongym.agents import RandomPolicy, expert_for
from horizongym.envs import Task, TextEnv
from horizongym.envs.contract import (
    SANDBOX_LIMITS,
    TERMINATION_REASONS,
    StepInfo,
    UnknownTerminationReason,
    termination_reason,
)
from horizongym.sandboxes.base import LimitName
from horizongym.training.rollouts import Episode, EpisodeStore, RolloutEngine, read_episodes
from horizongym.training.rollouts.store import UnreadableEpisode


class OffContractEnv(TextEnv):
    """Ends every episode on its first step with a termination reason the contract does not have."""

    blocking = False

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id="off", prompt="go")

    def on_text(self, text: str) -> str:
        self.state.truncated = True
        self.set_info("termination_reason", "exploded: the reactor melted")
        return "bye"


def test_an_unknown_termination_reason_is_recorded_as_an_env_error_that_reads_back(tmp_path: Path) -> None:
    horizongym.register("TestOffContract-v0", OffContractEnv)
    try:
        with EpisodeStore(tmp_path / "e.jsonl") as store:
            (episode,) = RolloutEngine("TestOffContract-v0", RandomPolicy(), store=store, progress=False).run_sync(1)
    finally:
        del gym.registry["horizongym/TestOffContract-v0"]
    assert episode.termination_reason == "env_error"
    assert episode.error is not None and "exploded" in episode.error and "termination_detail" in episode.error
    (stored,) = read_episodes(tmp_path / "e.jsonl")
    assert stored.termination_reason == "env_error" and stored.key == episode.key


def test_truncate_episode_takes_only_contract_reasons() -> None:
    env = OffContractEnv()
    env.reset(seed=0)
    with pytest.raises(UnknownTerminationReason, match="timeout: killed"):
        env.truncate_episode("timeout: killed", "detail")  # type: ignore[arg-type]
    env.truncate_episode("command_timeout", "'sleep 9' ran past 2 s")
    assert termination_reason("memory_limit") == "memory_limit"


def test_every_sandbox_limit_has_a_termination_reason() -> None:
    assert set(SANDBOX_LIMITS) == set(LimitName.__args__)  # type: ignore[attr-defined]
    assert set(SANDBOX_LIMITS.values()) <= TERMINATION_REASONS


def test_the_base_env_emits_only_step_info_keys() -> None:
    keys = set(get_type_hints(StepInfo))
    env = horizongym.make("KeyChain-v0")
    policy = expert_for("KeyChain-v0")
    _, info = env.reset(seed=3)
    assert set(info) <= keys
    bad = '<tool_call>{"name": "nope", "arguments": {}}</tool_call>'
    _, _, _, _, info = env.step(bad)
    assert set(info) <= keys and "error" in info
    done = False
    messages: list[dict[str, Any]] = [{"role": "user", "content": "x"}]
    while not done:
        action = policy.decide(messages, info["tools"], 0)
        observation, _, terminated, truncated, info = env.step(action.env_action())
        messages += [{"role": "assistant", "content": action.env_action()}, {"role": "user", "content": observation}]
        done = terminated or truncated
        assert set(info) <= keys
    assert info["termination_reason"] in TERMINATION_REASONS


def test_the_store_refuses_an_episode_it_could_not_read_back(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    good = Episode(env_id="KeyChain-v0", seed=0)
    bad = Episode.trusted({"env_id": "KeyChain-v0", "seed": 1, "termination_reason": "timeout: killed"})
    with EpisodeStore(path) as store:
        store.append(good)
        with pytest.raises(UnreadableEpisode, match="would not read back"):
            store.append(bad)
    assert [e.seed for e in read_episodes(path)] == [0]
