"""Property tests: every registered env's ``step`` takes any text, however odd (tag-like and JSON-like
fragments, calls of its own tools with arbitrary arguments), and answers within the contract: no
exception, a str observation, a float reward that its ``reward_components`` sum to, and the
contract's ``info`` keys (:mod:`horizongym.envs.contract`)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import horizongym
from horizongym.envs import registry, short_id
from horizongym.envs.contract import (
    ERROR,
    REWARD_COMPONENTS,
    SUCCESS,
    TASK_ID,
    TERMINATION_REASON,
    TERMINATION_REASONS,
    TOOL_CALLS,
    TOOL_RESULTS,
    TOOLS,
    TURN,
)


def _registered_by_this_package(env_id: str) -> bool:
    entry = registry[env_id].entry_point
    module = entry.partition(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", "")
    return module.startswith("horizongym.")


ENV_IDS = sorted(short_id(env_id) for env_id in registry if _registered_by_this_package(env_id))
"""What ``horizongym list`` lists of this package's own envs (not those other test modules register:
which of them are imported when this module is collected differs between test workers)."""

CHEAP: dict[str, tuple[dict[str, Any], int]] = {
    "SWE-v0": ({"backend": "docker", "command_timeout": 3.0, "test_timeout": 60.0}, 5),
    "KernelGen-v0": ({"backend": "cpu", "trials": 1, "checks": 1, "timeout_s": 60.0}, 15),
}
"""Heavy envs: settings that keep each step cheap (commands run in a container, never on this
machine), and how many examples to try."""
DEFAULT: tuple[dict[str, Any], int] = ({}, 100)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
FRAGMENTS = [
    "<tool_call>", "</tool_call>", "{", "}", "[", "]", '"', "'", ":", ",", "\\", "\n", "\x00", "null", "1e999",
    "NaN", "-0", '"name"', '"arguments"', "<|im_end|>", "[" * 40, "😀", "\u202e", "</", ">", "<",
]  # fmt: skip


def values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the JSON schema ``schema``: mostly of its type (odd ones included), sometimes anything."""
    kind = schema.get("type")
    if "anyOf" in schema:
        return st.one_of([values(option) for option in schema["anyOf"]])
    if kind == "null":
        return st.none()
    if "enum" in schema:
        typed: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    elif kind == "string":
        typed = st.text(max_size=30) | st.sampled_from(FRAGMENTS)
    elif kind == "integer":
        typed = st.integers(-3, 10**6) | st.sampled_from([0, -1, 2**63])
    elif kind == "number":
        typed = st.floats()
    elif kind == "boolean":
        typed = st.booleans()
    elif kind == "array":
        typed = st.lists(values(schema.get("items", {})), max_size=3)
    else:
        return JSON_VALUES
    return st.one_of(typed, typed, typed, typed, typed, JSON_VALUES)


def arguments(tool: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments of a tool call: its parameters with values of their types (required ones always),
    or a dict of anything."""
    parameters = tool["function"]["parameters"]
    properties: dict[str, Any] = parameters.get("properties", {})
    required = set(parameters.get("required", []))
    typed = st.fixed_dictionaries(
        {name: values(schema) for name, schema in properties.items() if name in required},
        optional={name: values(schema) for name, schema in properties.items() if name not in required},
    )
    return typed | st.dictionaries(st.sampled_from(sorted(properties) or ["x"]) | st.text(max_size=5), JSON_VALUES)


def actions(tools: list[dict[str, Any]]) -> st.SearchStrategy[str]:
    """Text for an env offering ``tools``: free text, fragments, and calls of its own tools (as tags and
    as ``<tool_call>`` JSON) with arbitrary arguments, mixed together."""
    names = [tool["function"]["name"] for tool in tools]
    name = st.sampled_from(names)
    tags = name.flatmap(lambda n: st.sampled_from([f"<{n}>", f"</{n}>"]))
    tag_call = st.builds(lambda n, text: f"<{n}>{text}</{n}>", name, st.text(max_size=30))
    json_call = st.sampled_from(tools).flatmap(
        lambda tool: arguments(tool).map(
            lambda a: f"<tool_call>{json.dumps({'name': tool['function']['name'], 'arguments': a})}</tool_call>"
        )
    )
    piece = st.text(max_size=20) | st.sampled_from(FRAGMENTS + names) | tags | tag_call | json_call | json_call
    return st.lists(piece, max_size=6).map("".join)


def check_step(result: tuple[Any, ...], tools: list[dict[str, Any]]) -> bool:
    """Assert the contract on one ``step`` result; return whether the episode ended."""
    observation, reward, terminated, truncated, info = result
    assert isinstance(observation, str)
    assert isinstance(reward, float)
    assert not math.isnan(reward)
    assert isinstance(terminated, bool) and isinstance(truncated, bool)
    assert info[TOOLS] == tools and isinstance(info[TASK_ID], str) and isinstance(info[TURN], int)
    components = info[REWARD_COMPONENTS]
    assert all(isinstance(v, float) for v in components.values())
    assert math.isclose(sum(components.values()), reward, abs_tol=1e-9)
    for call in info.get(TOOL_CALLS, []):
        assert isinstance(call["name"], str) and isinstance(call["arguments"], dict)
    for answer in info.get(TOOL_RESULTS, []):
        assert isinstance(answer["content"], str)
    assert isinstance(info.get(ERROR, ""), str)
    if terminated or truncated:
        assert info[TERMINATION_REASON] in TERMINATION_REASONS and SUCCESS in info
    return bool(terminated or truncated)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_takes_any_text_within_the_contract(env_id: str) -> None:
    kwargs, examples = CHEAP.get(env_id, DEFAULT)
    env = horizongym.make(env_id, **kwargs)
    try:
        _, info = env.reset(seed=0)
        tools = info[TOOLS]

        @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(texts=st.lists(actions(tools), min_size=1, max_size=3))
        def episode(texts: list[str]) -> None:
            env.reset(seed=0)
            for text in texts:
                if check_step(env.step(text), tools):
                    break

        episode()
    finally:
        env.close()


def test_the_envs_tried_are_those_the_list_command_shows() -> None:
    assert {"KeyChain-v0", "LongChain-v0", "SearchJudge-v0", "EmailInbox-v0", "KernelGen-v0", "SWE-v0"} <= set(ENV_IDS)


def test_a_step_without_rewards_returns_a_float_zero() -> None:
    env = horizongym.make("LongChain-v0")
    env.reset(seed=0)
    observation, reward, *_ = env.step("<lookup></lookup>")
    assert "No key" in observation and isinstance(reward, float)
