"""Replay: run a stored episode's actions again on a fresh env and say whether the env answered the same.

For each episode, the env is built from the episode's ``env_id`` and ``env_kwargs`` (merged with
overrides, e.g. a data path that moved), reset with the episode's seed, and stepped with every
recorded action (``Step.action``). At the reset and after each step the replay compares, in
order, and stops at the first difference:

* at the reset: the task id, and the first observation when observations are compared;
* at each step: what the env declares in ``replay_compares``
  (:data:`~horizongym.envs.base.REPLAY_COMPARES` by default: observation, reward, reward
  components and events, tool calls and results, error, the rest of ``info``), and always
  whether the step ended the episode (``terminated``, ``truncated``);
* at the end: the outcome (the termination reason and success, when the env ended the
  episode; the same exception, when a step raised: the episode's ``unfinished_action`` is run
  again), then the env's random draws (the generator state the episode ended in).

Values are compared as the store writes them (JSON), so a tuple matches the list it was
stored as; a deterministic env matches exactly. An episode that ended in an infrastructure
failure is skipped: the failure was not the env's doing and has nothing to reproduce. Where
the engine or the policy ended an episode (a time limit, a policy error), the steps recorded
are compared and nothing after them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
from pydantic_core import to_json
from tqdm import tqdm

from horizongym.envs.base import REPLAY_COMPARES
from horizongym.envs.contract import (
    ERROR,
    OUTCOME_OF_REASON,
    REWARD_COMPONENTS,
    REWARD_EVENTS,
    SUCCESS,
    TASK_ID,
    TOOL_CALLS,
    TOOL_RESULTS,
)
from horizongym.training.rollouts.engine import INFO_KEPT_ELSEWHERE, EnvRecipe, step_ending
from horizongym.training.rollouts.rng import generator_state
from horizongym.training.rollouts.trajectory import Episode, Step

ReplayStatus = Literal["match", "differs", "skipped"]
ALWAYS_COMPARED = ("terminated", "truncated")
"""Step fields compared whatever the env declares: whether the episode ended is part of its outcome."""
RANDOM_DRAWS = "random draws (generator state at the end)"
"""The name a report gives the env's random draws when they differ."""
SHOWN_CHARS = 80
"""How much of a differing value a report shows, around the first character that differs."""


class ReplayError(RuntimeError):
    """A replay cannot run: an env cannot be built (the message says which, with what arguments)."""


@dataclass(frozen=True)
class Difference:
    """The first place where a replay differs from the record."""

    step: int
    """The step (its turn, from 1); 0 is the reset."""
    field: str
    recorded: str
    """The recorded value, shortened around the first character that differs."""
    replayed: str

    def __str__(self) -> str:
        where = "reset" if self.step == 0 else f"step {self.step}"
        return f"{where}, {self.field}: recorded {self.recorded} vs replayed {self.replayed}"


@dataclass(frozen=True)
class EpisodeReplay:
    """The verdict on one replayed episode."""

    env_id: str
    seed: int
    sample: int
    task_id: str | None
    status: ReplayStatus
    steps: int
    """Steps replayed (up to the difference, when there is one)."""
    difference: Difference | None = None
    note: str | None = None
    """Why the episode was skipped, or what of it could not be compared."""

    @property
    def matches(self) -> bool:
        return self.status != "differs"

    def describe(self) -> str:
        """One line: which episode, and how it went."""
        name = f"{self.env_id} seed {self.seed} sample {self.sample}"
        if self.status == "differs":
            return f"differs: {name}: {self.difference}"
        return f"{self.status}: {name}" + (f" ({self.note})" if self.note else "")

    def to_json(self) -> dict[str, Any]:
        """The verdict as plain data (one line of a replay report)."""
        difference = self.difference
        return {
            "env_id": self.env_id,
            "seed": self.seed,
            "sample": self.sample,
            "task_id": self.task_id,
            "status": self.status,
            "steps": self.steps,
            "difference": None
            if difference is None
            else {
                "step": difference.step,
                "field": difference.field,
                "recorded": difference.recorded,
                "replayed": difference.replayed,
            },
            "note": self.note,
        }


def replay_episodes(
    episodes: Sequence[Episode],
    *,
    env_kwargs: dict[str, Any] | None = None,
    env_factory: Callable[[], gym.Env[Any, Any]] | None = None,
    progress: bool = False,
) -> Iterator[EpisodeReplay]:
    """Replay each episode in turn (see the module docstring); yield each verdict as it is known.

    Envs are built from each episode's ``env_id`` and ``env_kwargs`` updated with ``env_kwargs``,
    or by ``env_factory`` for every episode (as the rollout engine's ``env_factory``: a
    wrapped env, such as the Markovian workspace, whose record names only the inner env).
    One env is built per (env id, arguments) and reset for each of its episodes, as the engine
    does; an env whose step raised is closed and built again. Raises :class:`ReplayError` when
    an env cannot be built.
    """
    overrides = env_kwargs or {}
    envs: dict[str, gym.Env[Any, Any]] = {}
    bar = tqdm(total=len(episodes), unit="ep", disable=not progress, dynamic_ncols=True, desc="replay")
    try:
        for episode in episodes:
            if episode.outcome == "infra_error":
                note = "ended in an infrastructure failure, not the env's doing: nothing to reproduce"
                yield _verdict(episode, "skipped", 0, note=note)
            else:
                recipe = EnvRecipe(episode.env_id, {**episode.env_kwargs, **overrides})
                key = json.dumps([recipe.env_id, recipe.kwargs], sort_keys=True, default=str)
                env = envs.get(key)
                if env is None:
                    env = envs[key] = _build(recipe, env_factory)
                verdict, broken = replay_episode(env, episode)
                if broken:
                    del envs[key]
                    _close(env)
                yield verdict
            bar.update(1)
    finally:
        bar.close()
        for env in envs.values():
            _close(env)


def replay_episode(env: gym.Env[Any, Any], episode: Episode) -> tuple[EpisodeReplay, bool]:
    """Replay ``episode`` on ``env`` (reset here with its seed). Returns the verdict and whether a
    step or the reset raised where the record says it did not (the env is then best discarded)."""
    prefix = replay_prefix(env, episode, len(episode.steps))
    if prefix.stopped is not None:
        return prefix.stopped, prefix.broken
    replayed, info = prefix.steps, prefix.info
    ending = _compare_ending(env, episode, replayed, info)
    if ending is not None:
        return ending
    if episode.rng_state is not None:
        state = generator_state(env.unwrapped)
        if not _equal(episode.rng_state, state):
            turn = episode.steps[-1].turn if episode.steps else 0
            return _differs(episode, replayed, turn, RANDOM_DRAWS, episode.rng_state, state), False
    return _verdict(episode, "match", replayed, note=_uncompared_ending(episode)), False


@dataclass(frozen=True)
class ReplayedPrefix:
    """Where replaying an episode's first steps left the env: stopped early (``stopped``), or at
    the end of the last step asked for, with that step's answer (the reset's, for none)."""

    steps: int
    """Steps replayed (up to the difference, when there is one)."""
    observation: Any = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    stopped: EpisodeReplay | None = None
    """Why the replay stopped before the end: the first difference, or the reset raising as recorded."""
    broken: bool = False
    """Whether a step or the reset raised where the record says it did not (discard the env)."""


def replay_prefix(env: gym.Env[Any, Any], episode: Episode, turns: int) -> ReplayedPrefix:
    """Reset ``env`` with the episode's seed and run its first ``turns`` recorded actions, comparing
    the reset and each answer with the record (the module docstring's first two points); the
    episode's ending and random draws are not compared (:func:`replay_episode` does that)."""
    compares = (*ALWAYS_COMPARED, *getattr(env.unwrapped, "replay_compares", REPLAY_COMPARES))
    compares = tuple(dict.fromkeys(compares))
    reset_failed = episode.task_id is None and not episode.steps and episode.outcome == "env_error"
    try:
        observation, info = env.reset(seed=episode.seed)
    except Exception as exc:
        if reset_failed and _same_error(episode.error, exc):
            stopped = _verdict(episode, "match", 0, note="the reset raised, as recorded")
            return ReplayedPrefix(0, stopped=stopped, broken=True)
        error = episode.error or "(the reset returned)"
        return ReplayedPrefix(0, stopped=_differs(episode, 0, 0, "error", error, _error_text(exc)), broken=True)
    if reset_failed:
        return ReplayedPrefix(0, stopped=_differs(episode, 0, 0, "error", episode.error, "(the reset returned)"))
    if episode.task_id is not None and info.get(TASK_ID) != episode.task_id:
        return ReplayedPrefix(0, stopped=_differs(episode, 0, 0, "task_id", episode.task_id, info.get(TASK_ID)))
    first = next((m.get("content") for m in episode.messages if m.get("role") == "user"), None)
    if "observation" in compares and first is not None and not _equal(first, observation):
        return ReplayedPrefix(0, stopped=_differs(episode, 0, 0, "observation", first, observation))
    replayed = 0
    for step in episode.steps[:turns]:
        try:
            observation, reward, terminated, truncated, info = env.step(step.action)
        except Exception as exc:
            stopped = _differs(episode, replayed, step.turn, "error", "(the step returned)", _error_text(exc))
            return ReplayedPrefix(replayed, stopped=stopped, broken=True)
        replayed += 1
        answer = _answer(observation, reward, terminated, truncated, info)
        for name in compares:
            recorded, now = _recorded_value(step, name), _replayed_value(answer, info, name)
            if not _equal(recorded, now):
                return ReplayedPrefix(replayed, stopped=_differs(episode, replayed, step.turn, name, recorded, now))
    return ReplayedPrefix(replayed, observation, info)


def _compare_ending(
    env: gym.Env[Any, Any], episode: Episode, replayed: int, info: dict[str, Any]
) -> tuple[EpisodeReplay, bool] | None:
    """The difference in how the episode ended, if there is one (and whether the env broke)."""
    last = episode.steps[-1] if episode.steps else None
    if last is not None and (last.terminated or last.truncated):
        reason, _ = step_ending(info, terminated=last.terminated)
        success = None if reason == "env_error" or OUTCOME_OF_REASON[reason] == "infra_error" else info.get(SUCCESS)
        turn = last.turn
        if reason != episode.termination_reason:
            return _differs(episode, replayed, turn, "termination_reason", episode.termination_reason, reason), False
        if success != episode.success:
            return _differs(episode, replayed, turn, "success", episode.success, success), False
    elif episode.unfinished_action is not None and episode.outcome == "env_error":
        turn = (last.turn if last is not None else 0) + 1
        try:
            env.step(episode.unfinished_action)
        except Exception as exc:
            if _same_error(episode.error, exc):
                return None
            return _differs(episode, replayed + 1, turn, "error", episode.error, _error_text(exc)), True
        return _differs(episode, replayed + 1, turn, "error", episode.error, "(the step returned)"), False
    return None


def _uncompared_ending(episode: Episode) -> str | None:
    """What of a matching episode's end was not compared: an end the env did not make."""
    last = episode.steps[-1] if episode.steps else None
    if (last is not None and (last.terminated or last.truncated)) or episode.termination_reason is None:
        return None
    if episode.outcome == "env_error":
        if episode.unfinished_action is not None or episode.task_id is None:  # run again, or the reset raised
            return None
        return "the action whose step raised is not in the record: the steps before were compared"
    return f"ended by {episode.termination_reason}, outside the env: the steps before were compared"


# ----- what each side says ------------------------------------------------------------------
_MISSING = object()


def _answer(observation: Any, reward: Any, terminated: bool, truncated: bool, info: dict[str, Any]) -> dict[str, Any]:
    """A replayed step's answer under the names of the step record's fields, as the engine records them
    (sequences as tuples, as the record holds them: most values then compare equal without a JSON trip)."""
    reward = float(reward)
    components = info.get(REWARD_COMPONENTS)
    return {
        "observation": observation,
        "reward": reward,
        "reward_components": {"reward": reward} if components is None else components,
        "reward_events": tuple(info.get(REWARD_EVENTS) or ()),
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "tool_calls": tuple(info.get(TOOL_CALLS) or ()),
        "tool_results": tuple(info.get(TOOL_RESULTS) or ()),
        "error": info.get(ERROR),
        "info": {key: value for key, value in info.items() if key not in INFO_KEPT_ELSEWHERE},
    }


_STEP_FIELDS = frozenset(Step.model_fields)


def _recorded_value(step: Step, name: str) -> Any:
    head, _, path = name.partition(".")
    value = getattr(step, head) if head in _STEP_FIELDS else step.info.get(head, _MISSING)
    return _dig(value, path)


def _replayed_value(answer: dict[str, Any], info: dict[str, Any], name: str) -> Any:
    head, _, path = name.partition(".")
    value = answer[head] if head in answer else info.get(head, _MISSING)
    return _dig(value, path)


def _dig(value: Any, path: str) -> Any:
    """``value[a][b]`` for the path ``a.b`` (``_MISSING`` where a key is not there)."""
    for key in path.split(".") if path else ():
        value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
    return value


def _plain(value: Any) -> Any:
    """``value`` as the store writes it and reads it back (JSON)."""
    return json.loads(to_json(value, serialize_unknown=True))


def _equal(recorded: Any, replayed: Any) -> bool:
    if recorded is _MISSING or replayed is _MISSING:
        return recorded is replayed
    return bool(recorded == replayed) or _plain(recorded) == _plain(replayed)


# ----- verdicts ---------------------------------------------------------------------------
def _verdict(episode: Episode, status: ReplayStatus, steps: int, **extra: Any) -> EpisodeReplay:
    return EpisodeReplay(episode.env_id, episode.seed, episode.sample, episode.task_id, status, steps, **extra)


def _differs(episode: Episode, steps: int, turn: int, field: str, recorded: Any, replayed: Any) -> EpisodeReplay:
    shown = shorten(_text(recorded), _text(replayed))
    return _verdict(episode, "differs", steps, difference=Difference(turn, field, *shown))


def _text(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if isinstance(value, str):
        return repr(value)
    return json.dumps(_plain(value), sort_keys=True, ensure_ascii=False)


def shorten(first: str, second: str, width: int = SHOWN_CHARS) -> tuple[str, str]:
    """Both texts cut to about ``width`` characters around the first character where they differ."""
    at = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), min(len(first), len(second)))
    start = max(0, at - width // 3)

    def cut(text: str) -> str:
        end = start + width
        return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")

    return cut(first), cut(second)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _same_error(recorded: str | None, exc: BaseException) -> bool:
    """Whether the recorded error (the engine's words about it) names the same exception and message."""
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return recorded is not None and f"{type(exc).__name__}: {message}" in recorded


# ----- envs ----------------------------------------------------------------------------------
def _build(recipe: EnvRecipe, factory: Callable[[], gym.Env[Any, Any]] | None) -> gym.Env[Any, Any]:
    try:
        return factory() if factory is not None else recipe.build()
    except Exception as exc:
        raise ReplayError(
            f"cannot build {recipe.env_id} with {recipe.kwargs}: {type(exc).__name__}: {exc} "
            "(--env-kwargs changes the arguments the episodes were recorded with, e.g. a data path that moved)"
        ) from exc


def _close(env: gym.Env[Any, Any]) -> None:
    with contextlib.suppress(Exception):
        env.close()
