"""Every registered horizongym environment passes Gymnasium's env checker."""

from __future__ import annotations

import warnings

import pytest
from gymnasium.utils.env_checker import check_env

import horizongym

ENV_IDS = sorted(horizongym.registry)


def test_registry_is_not_empty() -> None:
    assert "horizongym/KeyChain-v0" in ENV_IDS


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env(env_id: str) -> None:
    env = horizongym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning is a failure too
        check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_task_and_same_episode(env_id: str) -> None:
    env_a, env_b = horizongym.make(env_id), horizongym.make(env_id)
    first_a, info_a = env_a.reset(seed=123)
    first_b, info_b = env_b.reset(seed=123)
    assert (first_a, info_a["task_id"]) == (first_b, info_b["task_id"])
    actions = [env_a.action_space.sample() for _ in range(3)]
    for action in actions:
        out_a, out_b = env_a.step(action), env_b.step(action)
        assert out_a[:4] == out_b[:4]
        if out_a[2] or out_a[3]:
            break


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_info_contract(env_id: str) -> None:
    env = horizongym.make(env_id)
    _, info = env.reset(seed=0)
    assert {"tools", "task_id", "turn"} <= info.keys()
    _, reward, terminated, truncated, info = env.step("<tool_call>{not json}</tool_call>")
    assert {"tools", "task_id", "turn", "reward_components", "error"} <= info.keys()
    assert sum(info["reward_components"].values()) == pytest.approx(float(reward))
    assert not (terminated and truncated)
