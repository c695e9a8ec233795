"""horizongym envs as verifiers environments (``verifiers`` 0.4, the ``verifiers.v1`` stack).

:func:`load_environment` returns a ``vf.Env`` that verifiers runs like any of its own: its
evaluation (``env.serving()`` and ``env.run_slot`` / ``env.run_episode``), its trainers and its
trace records. The parts, each verifiers' own kind of plugin:

* :class:`HorizonTaskset`: one task per seed (``first_seed``, ``first_seed + 1``...). A task's
  prompt is the env's first observation after ``reset(seed=...)``, and it carries the OpenAI
  schemas of the env's tools (derived from the tools' argument models, ``info["tools"]``).
* :class:`HorizonEnv`: plays one task as one episode, the way verifiers' stateful envs
  (TextArena, OpenEnv) do: its ``run`` owns a fresh horizongym env for the rollout, opens the
  agent's interaction, and steps every model reply through ``env.step``. A reply's native tool
  calls become the env's action (Hermes blocks, :meth:`Action.env_action`) and each call gets
  its ``tool`` message back; a text reply gets the observation as the next user turn. The
  exchange ends when the env does (``terminated`` or ``truncated``), with the termination
  reason as the trace's stop condition. The conversation is verifiers' and keeps every turn
  (an env's ``fresh_context`` and ``redact_previous_observation`` hints are not applied).
* :class:`HorizonHarness`: the agent's program, in process: one chat completion per segment
  through verifiers' interception endpoint (so verifiers records every model call), offering
  the task's tool schemas. The env, not the harness, runs the tools.
* :class:`HorizonTask`: the rubric. Reward ``episode_return``: the sum of the env's step rewards
  (what the env paid, format penalties included); metrics ``success`` (1 when the env said the
  task was solved) and ``env_turns``. The episode's record (actions, step rewards, reward
  components, termination reason) is in ``trace.info["horizongym"]``.

verifiers finds a taskset, its env and its harness by importing a top-level module named after
the taskset id; this module registers itself under :data:`PLUGIN_ID` so that those look-ups
find these classes once it is imported.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import gymnasium as gym
import httpx
import pydantic
import verifiers.v1 as vf
from verifiers.v1.dialects.chat import message_to_wire

from horizongym.agents.base import Action
from horizongym.envs import UnknownEnvironment, make, spec
from horizongym.envs.contract import REWARD_COMPONENTS, SUCCESS, TERMINATION_REASON
from horizongym.envs.remote.protocol import jsonable
from horizongym.tools import ToolCall, parse_openai_tool_calls
from horizongym.training.rollouts.context import tool_messages

PLUGIN_ID: Final = "horizongym_verifiers"
"""The taskset id (and harness id) under which verifiers finds this module."""

INFO_KEY: Final = "horizongym"
"""The key of ``trace.info`` that holds the episode's record."""


class HorizonTasksetConfig(vf.TasksetConfig):
    """Which horizongym env, with which constructor keywords, and which seeds."""

    env: str = ""
    """A registered horizongym env id (``KeyChain-v0`` or ``horizongym/KeyChain-v0``)."""
    env_kwargs: dict[str, Any] = pydantic.Field(default_factory=dict)
    """Keywords for the env's constructor (``horizongym.make(env, **env_kwargs)``)."""
    num_tasks: int = pydantic.Field(16, ge=1)
    """How many tasks: seeds ``first_seed`` .. ``first_seed + num_tasks - 1``."""
    first_seed: int = pydantic.Field(0, ge=0)
    system_message: str | None = None
    """A system prompt put before each task's prompt (None: the env's first observation alone)."""

    @pydantic.field_validator("env")
    @classmethod
    def _registered(cls, env: str) -> str:
        if not env:
            raise ValueError("name a horizongym env id, e.g. env='KeyChain-v0' ('horizongym list' shows them)")
        try:
            spec(env)
        except UnknownEnvironment as exc:  # its message names the closest registered ids
            raise ValueError(str(exc)) from None
        return env


class HorizonTaskData(vf.TaskData):
    """One task: the env, the seed its episode is reset with, and the tools it offers."""

    env: str
    env_kwargs: dict[str, Any] = pydantic.Field(default_factory=dict)
    seed: int
    task_id: str | None = None
    tools: list[dict[str, Any]] = pydantic.Field(default_factory=list)
    """OpenAI function schemas of the env's tools (``info["tools"]`` after reset)."""


class HorizonTask(vf.Task[HorizonTaskData]):
    """A horizongym task; its reward is the episode's return, as the env paid it."""

    @vf.reward
    async def episode_return(self, trace: vf.Trace) -> float:
        """The sum of the env's step rewards over the episode."""
        return float(_record(trace).get("return", 0.0))

    @vf.metric
    async def success(self, trace: vf.Trace) -> float:
        """1.0 when the env ended the episode as solved (``info["success"]``), else 0.0."""
        return 1.0 if _record(trace).get("success") else 0.0

    @vf.metric
    async def env_turns(self, trace: vf.Trace) -> float:
        """How many actions the env took."""
        return float(len(_record(trace).get("actions", [])))


def _record(trace: vf.Trace) -> dict[str, Any]:
    record = trace.info.get(INFO_KEY)
    return record if isinstance(record, dict) else {}


class HorizonTaskset(vf.Taskset[HorizonTask, HorizonTasksetConfig]):
    """One task per seed; the prompt and tools come from the env's reset with that seed."""

    def load(self) -> Iterator[HorizonTask]:
        config = self.config
        env = make(config.env, **config.env_kwargs)
        try:
            for seed in range(config.first_seed, config.first_seed + config.num_tasks):
                observation, info = env.reset(seed=seed)
                yield HorizonTask(
                    HorizonTaskData(
                        id=f"{config.env}#seed={seed}",
                        name=str(info.get("task_id") or f"{config.env}#{seed}"),
                        prompt=observation,
                        system_prompt=config.system_message,
                        env=config.env,
                        env_kwargs=config.env_kwargs,
                        seed=seed,
                        task_id=info.get("task_id"),
                        tools=list(info.get("tools", [])),
                    ),
                    config.task,
                )
        finally:
            env.close()


class HorizonHarnessConfig(vf.HarnessConfig):
    """The in-process chat harness (no program to install, no runtime to run it in)."""


class HorizonHarness(vf.Harness[HorizonHarnessConfig]):
    """One chat completion per segment, through verifiers' interception, offering the task's tools.

    The reply (text and/or native tool calls) ends the segment; :class:`HorizonEnv` steps it
    through the env and answers with the next turn.
    """

    APPENDS_SYSTEM_PROMPT = True
    SUPPORTS_RESUME = True
    EXECUTES_CODE = False
    NEEDS_CONTAINER = False

    async def launch(
        self,
        ctx: vf.ModelContext,
        trace: vf.Trace,
        runtime: vf.Runtime,
        endpoint: str,
        secret: str,
        mcp_urls: dict[str, str],
        data: vf.TaskData,
    ) -> vf.ProgramResult:
        system, prompt = self.resolve_prompt(data)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        if isinstance(prompt, str):
            messages.append({"role": "user", "content": prompt})
        else:
            messages.extend(message_to_wire(message) for message in prompt or [])
        body: dict[str, Any] = {"model": ctx.model, "messages": messages}
        tools = getattr(data, "tools", None)
        if tools:
            body["tools"] = tools
        url = f"{endpoint.rstrip('/')}/chat/completions"
        async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=30.0)) as client:
            response = await client.post(url, json=body, headers={"Authorization": f"Bearer {secret}"})
        if response.status_code != 200:
            return vf.ProgramResult(1, "", f"POST {url} answered HTTP {response.status_code}: {response.text[:500]}")
        return vf.ProgramResult(0, "", "")


class HorizonEnvConfig(vf.EnvConfig):
    """The one seat, ``player``, whose harness runs in this process (``subprocess`` runtime)."""

    player: vf.AgentConfig = vf.AgentConfig(runtime=vf.SubprocessConfig(), network_notice=False)


class HorizonEnv(vf.Env[HorizonEnvConfig]):
    """Plays a task as one horizongym episode: a fresh env per rollout, each model reply one ``env.step``."""

    async def run(self, task: vf.Task, agents: vf.Agents) -> None:
        data = task.data
        if not isinstance(data, HorizonTaskData):
            raise TypeError(f"HorizonEnv plays HorizonTask tasks, got {type(task).__name__}")
        env = make(data.env, **data.env_kwargs)
        try:
            await self._play(env, task, data, agents)
        finally:
            env.close()

    async def _play(self, env: gym.Env[Any, Any], task: vf.Task, data: HorizonTaskData, agents: vf.Agents) -> None:
        blocking = bool(getattr(env.unwrapped, "blocking", True))
        observation, _ = await _call(blocking, env.reset, seed=data.seed)
        if observation != data.prompt:
            raise ValueError(
                f"{data.env} reset with seed {data.seed} gave another first observation than the task's prompt: "
                "an env must draw its task from the seed alone for its tasks to be replayable"
            )
        record: dict[str, Any] = {
            "env": data.env,
            "seed": data.seed,
            "task_id": data.task_id,
            "actions": [],
            "rewards": [],
            "reward_components": {},
            "return": 0.0,
            "success": None,
            "termination_reason": None,
        }
        async with agents.player.interaction(task) as interaction:
            interaction.trace.info[INFO_KEY] = record
            segment = await interaction.turn()
            while not segment.terminated:
                reply = _last_reply(segment.messages)
                action = env_action(reply)
                observation, reward, terminated, truncated, info = await _call(blocking, env.step, action)
                _add_step(record, action, float(reward), info)
                if terminated or truncated:
                    record["success"] = info.get(SUCCESS)
                    record["termination_reason"] = info.get(TERMINATION_REASON)
                    interaction.trace.stop(str(info.get(TERMINATION_REASON) or "env_done"))
                    break
                call_ids = [call.id for call in reply.tool_calls or []] if reply is not None else []
                answer: Any = (
                    [vf.ToolMessage(**message) for message in tool_messages(observation, call_ids, info)]
                    if call_ids
                    else observation
                )
                segment = await interaction.turn(answer)
            interaction.trace.info[INFO_KEY] = jsonable(record)


def env_action(reply: vf.AssistantMessage | None) -> str:
    """The text ``env.step`` takes for a model reply: its text, then its native tool calls as Hermes
    blocks. A call whose arguments are not JSON goes to the env as it came, for the env to report."""
    if reply is None:
        return ""
    wire = message_to_wire(reply)
    parsed = parse_openai_tool_calls(wire)
    if parsed.errors:
        raw = json.dumps(wire.get("tool_calls"), ensure_ascii=False)
        return (parsed.text + "\n" + raw).strip()
    calls = [ToolCall(call.name, call.arguments, call.id) for call in parsed.calls]
    return Action(text=parsed.text, tool_calls=calls).env_action()


def _last_reply(messages: vf.Messages) -> vf.AssistantMessage | None:
    for message in reversed(messages):
        if isinstance(message, vf.AssistantMessage):
            return message
    return None


def _add_step(record: dict[str, Any], action: str, reward: float, info: Mapping[str, Any]) -> None:
    record["actions"].append(action)
    record["rewards"].append(reward)
    record["return"] += reward
    totals = record["reward_components"]
    for name, value in (info.get(REWARD_COMPONENTS) or {}).items():
        totals[name] = totals.get(name, 0.0) + float(value)


async def _call(blocking: bool, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, in a worker thread when the env may block (I/O, subprocesses)."""
    if blocking:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def load_environment(
    env_id: str,
    *,
    num_tasks: int = 16,
    first_seed: int = 0,
    system_message: str | None = None,
    **env_kwargs: Any,
) -> HorizonEnv:
    """A verifiers environment playing the horizongym env ``env_id`` (built with ``env_kwargs``).

    ``num_tasks`` tasks, seeds ``first_seed`` onwards; ``system_message`` goes before each prompt.
    The env's own limits (``max_turns``...) are among ``env_kwargs`` and end an episode as truncated.
    Raises :class:`~horizongym.envs.UnknownEnvironment` for an id that is not registered.
    """
    spec(env_id)
    taskset = HorizonTasksetConfig(
        id=PLUGIN_ID,
        env=env_id,
        env_kwargs=env_kwargs,
        num_tasks=num_tasks,
        first_seed=first_seed,
        system_message=system_message,
    )
    return HorizonEnv(HorizonEnvConfig(taskset=taskset))


sys.modules.setdefault(PLUGIN_ID, sys.modules[__name__])

__all__ = [
    "INFO_KEY",
    "PLUGIN_ID",
    "HorizonEnv",
    "HorizonEnvConfig",
    "HorizonHarness",
    "HorizonHarnessConfig",
    "HorizonTask",
    "HorizonTaskData",
    "HorizonTaskset",
    "HorizonTasksetConfig",
    "env_action",
    "load_environment",
]
