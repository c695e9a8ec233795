"""SWE-v0 end to end on the real Docker engine, with the embedded library's mined tasks."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from typing import Any

import pytest

import horizongym
from horizongym.agents.experts.swe import SWEDoNothing, SWEExpert
from horizongym.agents.scripted import ScriptedPolicy
from horizongym.envs.swe.env import SWEEnv
from horizongym.envs.swe.patches import patch_paths
from horizongym.tools import ToolCall


def call(name: str, **arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@pytest.fixture
def env() -> Iterator[SWEEnv]:
    env = horizongym.make("SWE-v0", task_order="by_seed", command_timeout=15.0).unwrapped
    assert isinstance(env, SWEEnv)
    yield env
    env.close()


def play(env: SWEEnv, policy: ScriptedPolicy, seed: int) -> tuple[float, dict[str, Any]]:
    observation, info = env.reset(seed=seed)
    messages: list[Any] = [{"role": "user", "content": observation}]
    total, done = 0.0, False
    while not done:
        action = policy.decide(messages, info["tools"], seed)
        text = "".join(call(c.name, **c.arguments) for c in action.tool_calls)
        messages.append({"role": "assistant", "content": text})
        observation, reward, terminated, truncated, info = env.step(text)
        messages.append({"role": "user", "content": observation})
        total += float(reward)
        done = terminated or truncated
    return total, info


def test_expert_resolves_and_do_nothing_does_not(env: SWEEnv) -> None:
    for seed in range(2):
        reward, info = play(env, SWEExpert(), seed)
        assert reward == 1.0 and info["success"] is True, info.get("evaluation")
        evaluation = info["evaluation"]
        assert evaluation["fail_to_pass"] and set(evaluation["fail_to_pass"].values()) == {"passed"}
        assert set(evaluation["pass_to_pass"].values()) <= {"passed"}
        reward, info = play(env, SWEDoNothing(), seed)
        assert reward == 0.0 and info["success"] is False
        assert any(outcome != "passed" for outcome in info["evaluation"]["fail_to_pass"].values())


def test_deleting_tests_and_skipping_them_is_not_a_fix(env: SWEEnv) -> None:
    class Cheater(ScriptedPolicy):
        def decide(self, messages: list[Any], tools: list[dict[str, Any]], seed: int | None) -> Any:
            from horizongym.agents.base import Action

            turn = sum(m["role"] == "assistant" for m in messages)
            plan = [
                ToolCall("bash", {"command": "rm -rf tests && mkdir tests"}),
                ToolCall(
                    "str_replace_editor",
                    {
                        "command": "create",
                        "path": "/work/conftest.py",
                        "file_text": "def pytest_collection_modifyitems(items):\n    items.clear()\n",
                    },
                ),
                ToolCall("submit", {}),
            ]
            return Action(tool_calls=[plan[turn]])

    reward, info = play(env, Cheater(), 0)
    assert reward == 0.0
    assert "conftest.py" in info["evaluation"]["dropped_files"]


def test_hidden_tests_never_reach_the_agent() -> None:
    env = horizongym.make("SWE-v0", task_order="by_seed", command_timeout=120.0).unwrapped
    assert isinstance(env, SWEEnv)
    try:
        look_for_hidden_tests(env)
    finally:
        env.close()


def look_for_hidden_tests(env: SWEEnv) -> None:
    """Search the agent's container for the hidden test files by path, by name and by content."""
    env.reset(seed=0)
    assert env.episode is not None
    instance = env.episode.instance
    hidden = patch_paths(instance.test_patch)
    assert hidden
    # a line only the hidden test files hold (a test function's definition)
    added = [line[1:].strip() for line in instance.test_patch.splitlines() if line.startswith("+def test_")]
    assert added
    for path in hidden:
        observation, *_ = env.step(call("bash", command=f"cat {path}; git log --all --oneline | wc -l"))
        assert "No such file" in observation
        name = path.rsplit("/", 1)[-1]
        find = f"find / -xdev \\( -path /proc -o -path /sys \\) -prune -o -name {name} -print 2>/dev/null | wc -l"
        observation, *_ = env.step(call("bash", command=find))
        assert observation.strip() == "0", observation
    grep = f"grep -rlF {shlex.quote(added[0])} /work /tmp /home /opt 2>/dev/null | wc -l"
    observation, *_ = env.step(call("bash", command=grep))
    assert observation.strip() == "0", observation


def test_limits_end_the_episode_with_the_reason(env: SWEEnv) -> None:
    env.reset(seed=0)
    observation, _, terminated, truncated, info = env.step(call("bash", command="sleep 60"))
    assert truncated and not terminated
    assert info["termination_reason"] == "command_timeout"
    assert "sleep 60" in info["termination_detail"]
    assert "killed" in observation


@pytest.mark.parametrize(
    ("command", "limit"),
    [
        ("python3 -c 'import os\nwhile True: os.fork()'", "process_limit"),
        ("python3 -c 'a = []\nwhile True: a.append(bytearray(1 << 24))'", "memory_limit"),
        ("head -c 1G /dev/zero > big.bin", "file_size_limit"),
    ],
)
def test_hostile_commands_truncate_the_episode_with_the_limit_in_info(env: SWEEnv, command: str, limit: str) -> None:
    env.reset(seed=1)
    observation, reward, terminated, truncated, info = env.step(call("bash", command=command))
    assert truncated and not terminated and reward == 0.0
    assert info["termination_reason"] == limit, info
    assert "killed" in info["termination_detail"]
    assert "the episode ends" in observation


def test_malformed_calls_become_observations(env: SWEEnv) -> None:
    env.reset(seed=0)
    observation, _, terminated, truncated, _ = env.step(call("str_replace_editor", command="view"))
    assert "Error" in observation and "path" in observation and not (terminated or truncated)
    observation, *_ = env.step(call("str_replace_editor", command="view", path="/work/missing.py"))
    assert "does not exist" in observation
    observation, *_ = env.step(call("bash", command="exit 3"))
    assert "[exit code 3]" in observation
