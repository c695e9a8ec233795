"""verifiers drives horizongym envs: rollouts through verifiers' own env API against a served tiny model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
import verifiers.v1 as vf

import horizongym
from horizongym.adapters.verifiers import (
    INFO_KEY,
    PLUGIN_ID,
    HorizonEnv,
    HorizonTaskData,
    HorizonTasksetConfig,
    env_action,
    load_environment,
)
from horizongym.agents.serving import ServerThread, create_app
from horizongym.envs import UnknownEnvironment

MODEL = "tiny-keychain"
SYSTEM = "You play KeyChain. Use the tools."
AMBER_SEED = 25
"""KeyChain-v0 with this seed starts at key ``amber`` in a 12-key store: the prompt the tiny model was trained on."""
ENV_KWARGS = {"tool_instructions": False, "max_turns": 3}


@pytest.fixture(scope="module")
def server(trained_model_dir: Path) -> Iterator[ServerThread]:
    with ServerThread(create_app(trained_model_dir, MODEL, max_new_tokens=120)) as running:
        yield running


def _env() -> HorizonEnv:
    return load_environment("KeyChain-v0", num_tasks=2, first_seed=AMBER_SEED, system_message=SYSTEM, **ENV_KWARGS)


def test_tasks_are_seeded_resets_with_the_env_tools() -> None:
    tasks = list(_env().taskset)
    env = horizongym.make("KeyChain-v0", **ENV_KWARGS)
    assert [t.data.seed for t in tasks] == [AMBER_SEED, AMBER_SEED + 1]
    for task in tasks:
        data = task.data
        assert isinstance(data, HorizonTaskData)
        observation, info = env.reset(seed=data.seed)
        assert data.prompt == observation and data.task_id == info["task_id"]
        assert data.tools == info["tools"] and {t["function"]["name"] for t in data.tools} == {"lookup", "answer"}
        assert data.system_prompt == SYSTEM
    assert "Start key: amber." in str(tasks[0].data.prompt)


def test_verifiers_rollouts_step_our_env_and_score_its_return(server: ServerThread) -> None:
    env = _env()
    tasks = list(env.taskset)
    ctx = vf.ModelContext(
        model=MODEL,
        client=vf.EvalClientConfig(base_url=server.base_url, api_key_var="HORIZONGYM_TEST_NO_KEY"),
        sampling=vf.SamplingConfig(temperature=0.0),
    )

    async def evaluate() -> list[vf.Episode]:
        async with env.serving():
            return list(await asyncio.gather(*(env.run_slot(slot, ctx) for t in tasks for slot in env.slots(t))))

    episodes = asyncio.run(evaluate())
    assert [e.ok for e in episodes] == [True, True], [e.errors for e in episodes]
    for episode in episodes:
        (trace,) = episode.traces
        record = trace.info[INFO_KEY]
        data = trace.task.data
        # every model turn was one step of our env, and the episode ended when the env did
        assert trace.num_turns == len(record["actions"]) == ENV_KWARGS["max_turns"]
        assert trace.stop_condition == record["termination_reason"] == "max_turns"
        # the reward is the env's: replaying the recorded actions on a fresh env pays the same
        replay = horizongym.make("KeyChain-v0", **ENV_KWARGS)
        replay.reset(seed=data.seed)
        rewards = [float(replay.step(action)[1]) for action in record["actions"]]
        assert rewards == record["rewards"]
        assert trace.rewards["episode_return"] is not None
        assert trace.rewards["episode_return"].score == pytest.approx(sum(rewards))
        assert trace.reward == pytest.approx(sum(rewards))
        assert trace.metrics == {"success": 0.0, "env_turns": 3.0}

    # On the prompt it was trained on the model calls the offered `lookup` tool natively (the
    # server reads tool calls only when the request offers tools); the env ran it, and its
    # result came back as the call's `tool` message.
    amber = episodes[0].traces[0]
    messages = [node.message for node in amber.nodes]
    first_reply = next(m for m in messages if isinstance(m, vf.AssistantMessage))
    assert first_reply.tool_calls and first_reply.tool_calls[0].name == "lookup"
    assert amber.info[INFO_KEY]["actions"][0] == env_action(first_reply)
    answer = messages[messages.index(first_reply) + 1]
    assert isinstance(answer, vf.ToolMessage) and answer.tool_call_id == first_reply.tool_calls[0].id
    fresh = horizongym.make("KeyChain-v0", **ENV_KWARGS)
    fresh.reset(seed=AMBER_SEED)
    assert answer.content == fresh.step(env_action(first_reply))[0]
    assert str(answer.content).startswith("amber = ")


def test_env_action_turns_native_calls_into_hermes_blocks() -> None:
    call = vf.ToolCall(id="call_0", name="lookup", arguments='{"key": "amber"}')
    assert env_action(vf.AssistantMessage(content=None, tool_calls=[call])) == (
        '<tool_call>{"name": "lookup", "arguments": {"key": "amber"}}</tool_call>'
    )
    assert env_action(vf.AssistantMessage(content="just text")) == "just text"
    broken = vf.ToolCall(id="call_1", name="lookup", arguments="{not json")
    env = horizongym.make("KeyChain-v0")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env_action(vf.AssistantMessage(content=None, tool_calls=[broken])))
    assert "invalid_json" in info["error"] and float(reward) < 0


def test_unknown_env_id_is_refused_with_the_registered_ones_named() -> None:
    with pytest.raises(UnknownEnvironment, match=r"unknown environment 'KeyChian-v0'.*KeyChain-v0"):
        load_environment("KeyChian-v0")
    with pytest.raises(pydantic.ValidationError, match=r"unknown environment 'KeyChian-v0'.*KeyChain-v0"):
        HorizonTasksetConfig(id=PLUGIN_ID, env="KeyChian-v0")


def test_verifiers_loaders_find_the_taskset_env_and_harness_by_id() -> None:
    config = vf.resolve_env_config({"taskset": {"id": PLUGIN_ID, "env": "KeyChain-v0", "num_tasks": 1}})
    env = vf.load_environment(config)
    assert isinstance(env, HorizonEnv)
    assert type(env._harnesses["player"]).__name__ == "HorizonHarness"
    (task,) = list(env.taskset)
    assert isinstance(task.data, HorizonTaskData) and task.data.seed == 0
