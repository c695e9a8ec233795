"""The base class of every horizongym environment: a multi-turn, tool-using text env.

A subclass writes :meth:`TextEnv.new_task` and marks its tools with ``@tool``; the base
class parses actions, runs tools, turns every malformed call into a corrective observation
with a format penalty, counts turns, and fills ``info`` as DESIGN.md's contract says.

Recorded episodes can be replayed and rescored (``horizongym replay``):

* **Reward events.** A reward paid through :meth:`TextEnv.score` is an *event*: its name and
  the facts that price it (``score("answer", correct=True)``) go to ``info["reward_events"]``,
  and its value, :meth:`TextEnv.event_rewards` of the event, to the reward components. The
  value is a pure function of the event and the env's reward settings, so a stored episode's
  rewards can be recomputed under other settings without running a tool. An env whose
  rewards are all events names the constructor keywords that change only rewards in
  :attr:`TextEnv.reward_settings`; the format penalty is the base class's ``format`` event.
* **Replay.** :attr:`TextEnv.replay_compares` names what a replay of the recorded actions
  compares step by step (:data:`REPLAY_COMPARES` by default: everything an env answers); an
  env whose raw output is not reproducible (command output, timings) names the parts that are.

Episodes are forkable (:mod:`horizongym.envs.snapshot`): :meth:`TextEnv.snapshot` copies the
base class's :class:`EpisodeState`, the random generator's state and what the subclass names in
:meth:`TextEnv.fork_state` (by default the attributes in :attr:`TextEnv.episode_attributes`);
:meth:`TextEnv.restore` puts copies of them back, so two restores of one snapshot share nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, SupportsFloat

import gymnasium as gym

from horizongym.envs.contract import REWARD_EVENTS, StepInfo, TerminationReason, termination_reason
from horizongym.envs.seeding import np_random
from horizongym.envs.snapshot import NotForkable, Snapshot, type_name
from horizongym.envs.spaces import UnicodeText
from horizongym.tools import (
    NoToolCall,
    ParsedAction,
    ToolCallError,
    ToolResult,
    ToolSet,
    is_plain_text,
    parse_action,
)

REPLAY_COMPARES: Final[tuple[str, ...]] = (
    "observation",
    "reward",
    "reward_components",
    "reward_events",
    "terminated",
    "truncated",
    "tool_calls",
    "tool_results",
    "error",
    "info",
)
"""What a replay compares at each step by default: every field of the step record
(:class:`~horizongym.training.rollouts.trajectory.Step`) that the env's answer fills; ``info``
is the rest of the step's ``info``. The reset's observation is compared when ``observation`` is."""


class UnknownRewardEvent(ValueError):
    """A reward event that the env has no value for."""


@dataclass(frozen=True)
class Task:
    """What one episode asks: a stable id and the first observation's text."""

    id: str
    prompt: str


@dataclass(frozen=True)
class TextEnvSnapshot:
    """What :meth:`TextEnv.snapshot` keeps (the ``state`` of its :class:`~horizongym.envs.snapshot.Snapshot`):
    the base class's episode state, the generator's state (None before the first seeded reset) and
    the subclass's :meth:`TextEnv.fork_state`."""

    episode: EpisodeState
    rng: dict[str, Any] | None
    own: Any


@dataclass
class EpisodeState:
    """The base class's per-episode state, kept in one place (forking copies this)."""

    task: Task | None = None
    turn: int = 0
    terminated: bool = False
    truncated: bool = False
    success: bool | None = None
    step_rewards: dict[str, float] = field(default_factory=dict)
    step_events: list[dict[str, Any]] = field(default_factory=list)
    turn_ended: bool = False
    step_info: dict[str, Any] = field(default_factory=dict)
    termination_reason: TerminationReason | None = None
    termination_detail: str | None = None
    retryable: bool | None = None
    last_observation: str = ""


class TextEnv(gym.Env[str, str]):
    """A Gymnasium environment whose observations and actions are text.

    Subclass contract:

    * :meth:`new_task` draws a task with ``self.np_random`` and returns a :class:`Task`.
    * Methods marked ``@tool`` are the tools; inside them call :meth:`score` (or
      :meth:`add_reward`) and :meth:`end_episode`.
    * Optionally override :meth:`on_text` to accept actions that hold no tool call.
    * An env that pays every reward through :meth:`score` prices its events in
      :meth:`event_rewards` and names its reward keywords in :attr:`reward_settings`; then
      ``horizongym replay --rescore`` can recompute its rewards (see the module docstring).

    Class attributes set defaults that constructor keywords override.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "render_fps": 4}  # noqa: RUF012 (Gymnasium API)
    description: ClassVar[str] = ""
    blocking: ClassVar[bool] = True
    """True if ``step`` may block (I/O, subprocesses): the rollout engine then runs it in a thread."""
    reward_settings: ClassVar[frozenset[str] | None] = None
    """The constructor keywords that change only the rewards, when every reward is a reward event
    (:meth:`score`): what ``replay --rescore --reward-kwargs`` may set. None: some reward is paid
    otherwise (:meth:`add_reward` directly), and the env's episodes cannot be rescored."""
    replay_compares: ClassVar[tuple[str, ...]] = REPLAY_COMPARES
    """What a replay compares at each step (:data:`REPLAY_COMPARES`): fields of the step record,
    else keys of its ``info``; ``a.b`` is key ``b`` of the info value ``a``."""

    @classmethod
    def needs_docker(cls, kwargs: Mapping[str, Any]) -> bool:
        """Whether episodes of this env, built with keyword arguments ``kwargs``, run Docker sandboxes.

        A distributed rollout backend places such envs only on machines with a Docker engine. False
        here; an env whose tools run in containers (SWE-v0) says when it needs them.
        """
        return False

    episode_attributes: ClassVar[tuple[str, ...]] = ()
    """The attributes that hold the running episode's own state beyond :class:`EpisodeState` (the
    task's data): what the default :meth:`fork_state` copies into a snapshot."""

    max_turns: int = 16
    format_penalty: float = -0.1
    max_text_length: int = 100_000
    tool_instructions: bool = True

    def __init__(
        self,
        *,
        max_turns: int | None = None,
        format_penalty: float | None = None,
        max_text_length: int | None = None,
        tool_instructions: bool | None = None,
        render_mode: str | None = None,
    ) -> None:
        if max_turns is not None:
            self.max_turns = _positive_int("max_turns", max_turns)
        if format_penalty is not None:
            if isinstance(format_penalty, bool) or not isinstance(format_penalty, int | float):
                raise ValueError(f"format_penalty must be a number, got {format_penalty!r}")
            self.format_penalty = format_penalty
        if max_text_length is not None:
            self.max_text_length = _positive_int("max_text_length", max_text_length)
        if tool_instructions is not None:
            if not isinstance(tool_instructions, bool):
                raise ValueError(f"tool_instructions must be true or false, got {tool_instructions!r}")
            self.tool_instructions = tool_instructions
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = UnicodeText(self.max_text_length)
        self.action_space = UnicodeText(self.max_text_length)
        self.tools = ToolSet.from_object(self)
        self._tool_schemas = self.tools.schemas()
        self._tag_arguments = self.tools.tag_arguments()
        self._tool_instructions_text = self.tools.instructions()
        self.state = EpisodeState()

    # ----- subclass API -------------------------------------------------------------
    def new_task(self, options: dict[str, Any]) -> Task:
        """Draw the next task with ``self.np_random`` (and ``options``) and set it up."""
        raise NotImplementedError(f"{type(self).__name__} must implement new_task()")

    def on_text(self, text: str) -> str:
        """Handle an action that holds no tool call. The default asks for a tool call."""
        names = ", ".join(self.tools.tools) or "(none)"
        raise NoToolCall(
            "your reply contains no tool call. Call one of the tools "
            f'({names}) with <tool_call>{{"name": ..., "arguments": {{...}}}}</tool_call>.'
        )

    def add_reward(self, component: str, value: float) -> None:
        """Add ``value`` to the named reward component of the current step (prefer :meth:`score`)."""
        self.state.step_rewards[component] = self.state.step_rewards.get(component, 0.0) + float(value)

    def score(self, event: str, **facts: Any) -> None:
        """Pay the reward of ``event``: record ``{"event": event, **facts}`` in this step's
        ``info["reward_events"]`` and add its value, :meth:`event_rewards`, to the reward components.

        ``facts`` are plain JSON values: everything the value depends on besides the env's
        reward settings (whether the answer was right, the turn it came in...).
        """
        record = {"event": event, **facts}
        self.state.step_events.append(record)
        for component, value in self.event_rewards(record).items():
            self.add_reward(component, value)

    def event_rewards(self, event: Mapping[str, Any]) -> dict[str, float]:
        """The reward components that ``event`` (a recorded ``{"event": name, **facts}``) is worth.

        A pure function of the event and the env's reward settings: no tool, no episode state
        (a rescore calls it on an env that was never reset). The base class prices ``format``
        (a malformed or failing call): ``format_penalty``. A subclass prices its own events and
        hands the rest to ``super()``.
        """
        if event["event"] == "format":
            return {"format": self.format_penalty} if self.format_penalty else {}
        raise UnknownRewardEvent(f"{type(self).__name__} has no value for the reward event {event['event']!r}")

    def end_episode(self, *, success: bool | None = None) -> None:
        """Mark the task as finished (``terminated``) after this step."""
        self.state.terminated = True
        self.state.success = success

    def truncate_episode(self, reason: TerminationReason, detail: str, *, retryable: bool | None = None) -> None:
        """End the episode as truncated after this step: a limit was hit (``reason``), ``detail`` says which.

        ``reason`` must be one of :data:`~horizongym.envs.contract.TerminationReason` (checked here,
        so a bad one fails in the env that made it); ``detail`` goes to ``info["termination_detail"]``.
        For an infrastructure failure (``sandbox_died``, ``infra_error``), ``retryable`` says whether
        another try on a fresh env may succeed (``info["retryable"]``; the engine assumes it may).
        """
        self.state.truncated = True
        self.state.success = False
        self.state.termination_reason = termination_reason(reason)
        self.state.termination_detail = detail
        self.state.retryable = retryable

    def set_info(self, key: str, value: Any) -> None:
        """Add ``key`` to this step's ``info`` (for what the caller or the engine should know).

        The keys of the env ↔ engine contract are named in :mod:`horizongym.envs.contract`; an
        episode's end is set with :meth:`end_episode` or :meth:`truncate_episode`, not here.
        """
        self.state.step_info[key] = value

    def on_errors(self, errors: list[ToolCallError]) -> None:
        """Called when an action held malformed or failing calls; the default scores a ``format`` event
        (worth ``format_penalty``), with the errors' kinds as its fact."""
        self.score("format", errors=[error.kind for error in errors])

    def on_turn_limit(self) -> None:
        """Called when the turn limit truncates the episode, before the step returns (a hook)."""

    def end_turn(self) -> None:
        """Ignore the rest of this action's calls: the agent must see this call's result first."""
        self.state.turn_ended = True

    # ----- forking (horizongym.envs.snapshot) ----------------------------------------
    def fork_state(self) -> Any:
        """The subclass's part of a snapshot: a picklable copy of what the running episode holds beyond
        :class:`EpisodeState`. The default copies the attributes named in :attr:`episode_attributes`."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self.episode_attributes}

    def load_fork_state(self, state: Any) -> None:
        """Make ``state`` (from :meth:`fork_state`, possibly of another process) the running episode's;
        called with a copy of its own, so the env may keep what it is given."""
        for name, value in state.items():
            setattr(self, name, value)

    def snapshot(self) -> Snapshot:
        """A snapshot of the running episode (:mod:`horizongym.envs.snapshot`); :class:`NotForkable` before reset."""
        if self.state.task is None:
            raise NotForkable(f"{type(self).__name__} has no running episode to snapshot; call reset() first")
        generator = getattr(self, "_np_random", None)
        rng = copy.deepcopy(generator.bit_generator.state) if generator is not None else None
        payload = TextEnvSnapshot(episode=copy.deepcopy(self.state), rng=rng, own=self.fork_state())
        return Snapshot(env_type=type_name(self), turn=self.state.turn, state=payload)

    def restore(self, snapshot: Snapshot) -> None:
        """Continue the episode of ``snapshot`` (taken from an env of this class built with the same arguments)."""
        payload = snapshot.state
        if not isinstance(payload, TextEnvSnapshot):
            raise ValueError(f"not a snapshot of a TextEnv: its state is a {type(payload).__name__}")
        self.load_fork_state(copy.deepcopy(payload.own))
        if payload.rng is not None:
            if getattr(self, "_np_random", None) is None:
                self._np_random, self._np_random_seed = np_random(0)
            self.np_random.bit_generator.state = copy.deepcopy(payload.rng)
        self.state = copy.deepcopy(payload.episode)

    def release_snapshot(self, snapshot: Snapshot) -> None:
        """Free what ``snapshot`` holds outside the process; the default holds nothing there."""

    # ----- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        if seed is not None:  # what Gymnasium's Env.reset does, with a faster-built generator
            self._np_random, self._np_random_seed = np_random(seed)
        self.state = EpisodeState()
        task = self.new_task(dict(options or {}))
        self.state.task = task
        observation = task.prompt
        if self.tool_instructions and len(self.tools):
            observation = f"{observation}\n\n{self._tool_instructions_text}"
        return self._emit(observation), self._info()

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        state = self.state
        task = state.task
        if task is None or state.terminated or state.truncated:
            raise gym.error.ResetNeeded("the episode has not started or has ended; call reset() first")
        state.turn += 1
        state.turn_ended = False
        if state.step_info:
            state.step_info = {}
        if state.step_events:  # left by a timed-out tool of the last step, still running in its thread
            state.step_events = []
        rewards: dict[str, float] = {}
        state.step_rewards = rewards
        info: StepInfo = {
            "tools": self._tool_schemas,
            "task_id": task.id,
            "turn": state.turn,
            "reward_components": rewards,
        }
        errors: list[ToolCallError] = []
        # the parser's fast path: text that cannot hold a call in any format goes straight to on_text
        plain = isinstance(action, str) and is_plain_text(action)
        parsed = None if plain else parse_action(action, self._tag_arguments)
        if parsed is not None and (parsed.calls or parsed.errors):
            observation, errors = self._run_calls(parsed, info)
        else:
            try:
                observation = self.on_text(action.strip() if parsed is None else parsed.text)
            except ToolCallError as error:
                observation, errors = error.observation(), [error]
        if errors:
            info["error"] = "; ".join(f"{e.kind}: {e.message}" for e in errors)
            self.on_errors(errors)
        if not state.terminated and state.turn >= self.max_turns:
            state.truncated = True
            self.on_turn_limit()
            observation += f"\n\nTurn limit reached ({self.max_turns} turns)."
        if state.terminated or state.truncated:
            info["termination_reason"] = "terminated" if state.terminated else state.termination_reason or "max_turns"
            info["success"] = state.success
            if state.termination_detail is not None:
                info["termination_detail"] = state.termination_detail
            if state.retryable is not None:
                info["retryable"] = state.retryable
        record: dict[str, Any] = info  # type: ignore[assignment]  # a StepInfo is the dict Gymnasium returns
        if state.step_info:
            record.update(state.step_info)
        if state.step_events:
            record[REWARD_EVENTS] = state.step_events
            state.step_events = []
        # a timed-out tool still running in its thread writes into a dict nobody reads any more
        state.step_rewards = {}
        info["reward_components"] = components = dict(rewards)
        return self._emit(observation), sum(components.values(), 0.0), state.terminated, state.truncated, record

    def _run_calls(self, parsed: ParsedAction, info: StepInfo) -> tuple[str, list[ToolCallError]]:
        """Run the parsed calls in order; report each result and error. Returns (observation, errors)."""
        errors: list[ToolCallError] = list(parsed.errors)
        outputs = [error.observation() for error in parsed.errors]
        results: list[ToolResult] = []
        for call in parsed.calls:
            if self.state.terminated or self.state.turn_ended:
                reason = "the episode had already ended" if self.state.terminated else "read the earlier result first"
                outputs.append(f"(call to '{call.name}' ignored: {reason})")
                continue
            result = self.tools.invoke(call)
            results.append(result)
            if result.error is not None:
                errors.append(result.error)
            outputs.append(f"[{call.name}] {result.content}" if len(parsed.calls) > 1 else result.content)
        info["tool_calls"] = [{"name": c.name, "arguments": c.arguments, "id": c.id} for c in parsed.calls]
        info["tool_results"] = [
            {"name": r.call.name, "id": r.call.id, "content": r.content, "error": r.error.kind if r.error else None}
            for r in results
        ]
        return "\n\n".join(outputs), errors

    def render(self) -> str | None:
        if self.render_mode == "human":
            print(self.state.last_observation)
        return self.state.last_observation if self.render_mode == "ansi" else None

    # ----- helpers ---------------------------------------------------------------
    def _emit(self, observation: str) -> str:
        if len(observation) > self.max_text_length:
            note = "\n[observation cut to fit the length limit]"
            observation = observation[: self.max_text_length - len(note)] + note
        self.state.last_observation = observation
        return observation

    def _info(self) -> dict[str, Any]:
        task = self.state.task
        return {"tools": self._tool_schemas, "task_id": task.id if task else None, "turn": self.state.turn}


def _positive_int(name: str, value: object) -> int:
    """``value`` if it is a whole number of at least 1; a ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value
