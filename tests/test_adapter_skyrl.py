"""SkyRL builds horizongym envs through skyrl_gym.make and plays them to the env's own reward."""

from __future__ import annotations

from typing import Any

import pytest
import skyrl_gym
from skyrl_gym.envs.base_text_env import BaseTextEnv

import horizongym
from horizongym.adapters.skyrl import HorizonSkyRLEnv, register_skyrl_envs
from horizongym.agents import expert_for
from horizongym.envs import UnknownEnvironment, registry

SYSTEM = {"role": "system", "content": "Use the tools."}


def _play(env: BaseTextEnv, env_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The expert plays ``env`` through SkyRL's API; returns the conversation and every step output."""
    conversation, metadata = env.init([SYSTEM, {"role": "user", "content": "(the dataset's prompt)"}])
    expert = expert_for(env_id)
    outputs: list[dict[str, Any]] = []
    while not (outputs and outputs[-1]["done"]):
        action = expert.decide(conversation, metadata["tools"], None).env_action()
        output = dict(env.step(action))
        conversation += [{"role": "assistant", "content": action}, *output["observations"]]
        outputs.append(output)
    return conversation, outputs


def test_register_then_make_plays_keychain_to_its_reward() -> None:
    ids = register_skyrl_envs()
    assert set(ids) == set(registry) and "horizongym/KeyChain-v0" in skyrl_gym.registry
    assert register_skyrl_envs(["KeyChain-v0"]) == ["horizongym/KeyChain-v0"]  # a second call changes nothing

    env = skyrl_gym.make("horizongym/KeyChain-v0", env_config={"max_depth": 3}, extras={"seed": 11})
    assert isinstance(env, HorizonSkyRLEnv) and isinstance(env, BaseTextEnv)
    conversation, outputs = _play(env, "KeyChain-v0")

    # the task is the env's for that seed: its first observation, after the prompt's system message
    reference = horizongym.make("KeyChain-v0", max_depth=3)
    first, info = reference.reset(seed=11)
    assert conversation[:2] == [SYSTEM, {"role": "user", "content": first}]
    # every step is the env's own: the same observations and rewards as the env played directly
    for output, assistant in zip(outputs, conversation[2::2], strict=True):
        observation, reward, terminated, truncated, step_info = reference.step(assistant["content"])
        assert output["reward"] == float(reward)
        assert output["metadata"]["reward_components"] == step_info["reward_components"]
        assert output["metadata"]["terminated"] is terminated and output["metadata"]["truncated"] is truncated
        assert output["observations"] == ([] if output["done"] else [{"role": "user", "content": observation}])
    last = outputs[-1]
    assert last["done"] and last["reward"] == 1.0 and last["metadata"]["success"] is True
    assert last["metadata"]["observation"] and last["metadata"]["termination_reason"] == "terminated"
    assert all(not o["done"] and o["reward"] == 0.0 for o in outputs[:-1])
    assert env.get_metrics() == {"return": 1.0, "success": 1.0, "turns": len(outputs)}
    assert info["task_id"].startswith("keychain-")
    env.close()


def test_a_seed_gives_the_same_task_and_episode() -> None:
    register_skyrl_envs(["LongChain-v0"])
    runs = [_play(skyrl_gym.make("horizongym/LongChain-v0", extras={"seed": 5}), "LongChain-v0") for _ in range(2)]
    assert runs[0] == runs[1]
    other = skyrl_gym.make("horizongym/LongChain-v0", extras={"seed": 6}).init([])[0]
    assert other != runs[0][0][1:2]


def test_unknown_ids_are_refused() -> None:
    with pytest.raises(UnknownEnvironment, match="KeyChian-v0"):
        register_skyrl_envs(["KeyChian-v0"])
    with pytest.raises(UnknownEnvironment, match="KeyChian-v0"):
        HorizonSkyRLEnv(env_id="KeyChian-v0")
