"""Play a recorded episode on from one of its turns: ``horizongym play --from RUN.jsonl#EPISODE:TURN``.

``EPISODE`` is the episode's number in the run file, counted from 0 in the order the file's
readers give (``read_run``: file order, less bad and duplicate lines), the ``#N`` of the page
``horizongym show --html`` writes; ``TURN`` is how many of its turns to keep (0: from the reset).

**Reaching the turn.** A run file holds no snapshot of an env (a snapshot lives in the process
that took it), so the turn is reached by replaying: the env is built from the episode's env id
and keyword arguments, reset with its seed as the rollout reset it (no reset options: naming the
task would change the env's random draws; the task it draws must be the recorded one) and
stepped with the recorded actions of turns 1..TURN, each answer compared with the record as
``horizongym replay`` compares it (:func:`~horizongym.training.rollouts.replay.replay_prefix`).
An env that answers otherwise no longer reproduces the episode, and :class:`NotReproduced`
says at which turn and what differed.

**The branch.** From there a person plays at the keyboard (:func:`play_at_keyboard`, the loop
of plain ``play`` as well), and the continuation is stored in the same run file as a branch of
the episode (:func:`branch_of`): the same env id, kwargs, seed, sample and task; ``branch`` one
above the highest branch of that seed and sample in the file; ``parent_branch`` the episode's
branch; ``fork_turn`` = TURN; its steps and messages the episode's first TURN turns, copied, then
the person's; policy ``human``. A person who stops (``/quit``, end of input) before the env ends
the episode truncates it: reason ``max_turns`` (a turn limit set outside the env), with the
words in ``termination_detail``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from horizongym.agents.base import Message, PolicyError
from horizongym.agents.human import HumanPolicy
from horizongym.envs.contract import OUTCOME_OF_REASON, REWARD_COMPONENTS, SUCCESS, TerminationReason
from horizongym.envs.registration import UnknownEnvironment, is_env_url, spec
from horizongym.failures import infrastructure_cause
from horizongym.training.rollouts.context import PolicyContext
from horizongym.training.rollouts.engine import INFO_KEPT_ELSEWHERE, EnvRecipe, step_ending
from horizongym.training.rollouts.replay import ReplayedPrefix, replay_prefix
from horizongym.training.rollouts.rng import generator_state
from horizongym.training.rollouts.store import EpisodeStore, RunFileError, read_episodes, read_run
from horizongym.training.rollouts.trajectory import Episode, Step

HUMAN = HumanPolicy.name
"""The policy a branch played at the keyboard is recorded under."""
SOURCE_FORM = "RUN.jsonl#EPISODE:TURN"
FORK_HELP = (
    f"play a recorded episode on from one of its turns with --from {SOURCE_FORM}: EPISODE is its number in "
    "the file, from 0 (the #N of 'show --html'), TURN the turns kept (0 = from the reset). The env is built from "
    "the episode's env id and settings, reset with its seed and replayed to the turn, each answer checked against "
    "the record (a run file holds no snapshots); your continuation is saved in the same file as a branch of the "
    "episode (policy 'human')."
)
"""What ``play --help`` says of ``--from``."""
_SOURCE = re.compile(r"^(?P<path>.+)#(?P<episode>\d+):(?P<turn>\d+)$")


class ForkError(ValueError):
    """A ``--from`` that cannot be played: bad syntax, no such file, episode or turn (one line with the fix)."""


class NotReproduced(RuntimeError):
    """The env no longer answers the episode's recorded actions as the record says."""


@dataclass(frozen=True)
class ForkSource:
    """Where to fork: the run file, the episode's number in it (from 0), and the turns kept."""

    path: Path
    episode: int
    turn: int

    def __str__(self) -> str:
        return f"{self.path}#{self.episode}:{self.turn}"


def parse_fork_source(text: str) -> ForkSource:
    """``RUN.jsonl#EPISODE:TURN`` as a :class:`ForkSource`; :class:`ForkError` when it is not of that form."""
    match = _SOURCE.match(text)
    if match is None:
        raise ForkError(
            f"--from {text!r} is not {SOURCE_FORM}: a run file, '#', the episode's number (from 0, as "
            "'show --html' numbers them), ':', the turns to keep (0 = from the reset), e.g. runs/e.jsonl#3:2"
        )
    return ForkSource(Path(match["path"]), int(match["episode"]), int(match["turn"]))


def load_fork(source: ForkSource, env_id: str | None = None) -> Episode:
    """The episode ``source`` names, checked to be one this process can replay to ``source.turn``
    (:func:`check_fork`). Raises :class:`ForkError` for a missing or unreadable file, an episode
    number out of range, and what :func:`check_fork` refuses."""
    try:
        episodes = read_run(source.path, "play --from")
    except RunFileError as exc:
        raise ForkError(str(exc)) from None
    if source.episode >= len(episodes):
        last = len(episodes) - 1
        raise ForkError(
            f"{source.path} holds {len(episodes)} episode{'s' if len(episodes) != 1 else ''}: "
            f"no episode {source.episode} (pick 0..{last})"
        )
    episode = episodes[source.episode]
    check_fork(episode, f"episode {source.episode} of {source.path}", source.turn, env_id)
    return episode


def check_fork(episode: Episode, name: str, turn: int, env_id: str | None = None) -> None:
    """:class:`ForkError` (named ``name``) unless ``episode`` can be replayed here to ``turn`` and played on.

    ``env_id`` (the ``play`` command's ENV_ID, when given) must name the episode's env. Refused: an
    episode of a served env, of an env not registered here, one whose reset raised, a turn past
    its end or at an end the env chose (nothing comes after it).
    """
    if is_env_url(episode.env_id):
        raise ForkError(
            f"{name} was played on the served env {episode.env_id}: a served env cannot be reproduced here; "
            "fork an episode of an env registered in this process"
        )
    try:
        recorded = spec(episode.env_id).id
    except UnknownEnvironment:
        raise ForkError(
            f"{name} was played on {episode.env_id}, which is not registered here; "
            "pass --import MODULE (the module that registers it)"
        ) from None
    if env_id is not None and spec(env_id).id != recorded:
        raise ForkError(
            f"{name} was played on {episode.env_id}, not {env_id}; name {episode.env_id} or leave ENV_ID out"
        )
    if episode.task_id is None and not episode.steps and episode.outcome == "env_error":
        raise ForkError(f"{name} never started: its reset raised ({episode.error}); there is no turn to fork at")
    turns = episode.num_turns
    ended = bool(episode.steps) and _ends_episode(episode.steps[-1])  # by the env: no turn after it
    highest = turns - 1 if ended else turns
    if turn > turns:
        raise ForkError(f"{name} has {turns} turn{'s' if turns != 1 else ''}: no turn {turn} (pick 0..{highest})")
    if turn > highest:
        raise ForkError(
            f"{name} ended at turn {turns} ({episode.termination_reason}): nothing comes after it to play; "
            f"pick a turn of 0..{highest}"
        )


def fork_env(episode: Episode) -> gym.Env[Any, Any]:
    """The env of ``episode``, built from its env id and keyword arguments as the rollout engine
    builds it; :class:`ForkError` when that raises."""
    recipe = EnvRecipe(episode.env_id, dict(episode.env_kwargs))
    try:
        return recipe.build()
    except Exception as exc:
        raise ForkError(
            f"cannot build {recipe.env_id} with the episode's env kwargs {json.dumps(recipe.kwargs, default=str)}: "
            f"{type(exc).__name__}: {exc}; the env's code or data changed since the run, or it needs --import MODULE"
        ) from None


def _ends_episode(step: Step) -> bool:
    return step.terminated or step.truncated


def reach_fork(env: gym.Env[Any, Any], episode: Episode, turn: int) -> ReplayedPrefix:
    """Reset ``env`` with the episode's seed and run its first ``turn`` recorded actions, each
    answer compared with the record. Returns where that left the env (the observation and
    ``info`` of turn ``turn``); :class:`NotReproduced` at the first difference."""
    prefix = replay_prefix(env, episode, turn)
    if prefix.stopped is not None:
        difference = prefix.stopped.difference
        if difference is None:  # the reset raised as recorded: load_fork refuses such an episode
            raise NotReproduced(f"the env cannot reach turn {turn}: {prefix.stopped.note}")
        at = "its reset" if difference.step == 0 else f"turn {difference.step}"
        raise NotReproduced(
            f"the env no longer reproduces this episode at {at}: {difference.field} differs "
            f"(recorded {difference.recorded} vs now {difference.replayed})"
        )
    return prefix


@dataclass
class KeyboardPlay:
    """The turns a person played, and how their episode ended."""

    steps: list[Step] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    """The record's messages of these turns (the assistant's, then the env's answer), as the engine records them."""
    reason: TerminationReason = "max_turns"
    detail: str | None = None
    success: bool | None = None
    error: str | None = None
    retryable: bool = False
    unfinished_action: str | None = None
    """The action whose step raised (in no step: the step never returned)."""
    raised: Exception | None = None
    """What the env raised, when a step raised."""
    ended: bool = False
    """Whether the env ended the episode (terminated or truncated it)."""
    started_at: float = field(default_factory=time.time)
    seconds: float = 0.0

    @property
    def total_reward(self) -> float:
        return sum(step.reward for step in self.steps)


def play_at_keyboard(
    env: gym.Env[Any, Any],
    observation: str,
    info: dict[str, Any],
    *,
    human: HumanPolicy | None = None,
    turn: int = 0,
    total: float = 0.0,
    out: Callable[[str], None] = print,
) -> KeyboardPlay:
    """Read a person's actions and step ``env`` with them until the episode ends, the person stops
    (``/quit``, end of input) or a step raises; print each answer with its reward and the running
    ``total``. ``observation`` and ``info`` are the env's last answer (its reset's, or the step's
    of turn ``turn``: the turns already played)."""
    human = human or HumanPolicy()
    played = KeyboardPlay()
    clock = time.perf_counter
    start = clock()
    context = PolicyContext(observation)
    while True:
        asked = clock()
        try:
            action = asyncio.run(human.act([], info.get("tools", [])))
        except PolicyError as exc:
            out("\nstopped.")
            played.detail = f"the person stopped at the keyboard after turn {turn} ({exc})"
            break
        answer = play_turn(env, played, context, action.text, turn + 1, thinking_s=clock() - asked)
        if answer is None:
            break
        step, info = answer
        turn, total = step.turn, total + step.reward
        components = ", ".join(f"{k} {v:+g}" for k, v in info.get(REWARD_COMPONENTS, {}).items())
        detail = f" ({components})" if components else ""
        out(f"\n{step.observation}\n[reward {step.reward:+g}{detail} · total {total:+g}]\n")
        if played.ended:
            out(f"episode over: {info.get('termination_reason', 'done')} · total reward {total:+g}")
            break
    played.seconds = clock() - start
    return played


def play_turn(
    env: gym.Env[Any, Any], played: KeyboardPlay, context: PolicyContext, action: str, turn: int, thinking_s: float
) -> tuple[Step, dict[str, Any]] | None:
    """Step ``env`` with a person's ``action`` as turn ``turn`` and record the answer in ``played``
    (its step, and its messages through ``context``, as the rollout engine records them); the
    person took ``thinking_s`` seconds to act. Returns the step and the env's ``info``, or None when the step raised:
    ``played`` then holds the error (reason ``env_error`` or ``infra_error``) and the action.
    When the env ends the episode, ``played`` holds how (:attr:`KeyboardPlay.ended`)."""
    clock = time.perf_counter
    stepped = clock()
    try:
        observation, reward, terminated, truncated, info = env.step(action)
    except Exception as exc:
        infra = infrastructure_cause(exc)
        played.reason = "env_error" if infra is None else "infra_error"
        played.error = f"step: {type(exc).__name__}: {exc}"
        played.retryable = infra is not None and infra.retryable
        played.unfinished_action, played.raised = action, exc
        played.messages.append({"role": "assistant", "content": action})
        return None
    step = _step_record(turn, action, observation, float(reward), bool(terminated), bool(truncated), info)
    step.policy_seconds, step.env_seconds = thinking_s, clock() - stepped  # the person's, the env's
    played.steps.append(step)
    played.messages.extend(context.add_turn({"role": "assistant", "content": action}, observation, info))
    if terminated or truncated:
        played.reason, played.detail = step_ending(info, terminated=bool(terminated))
        played.ended = True
        if played.reason == "env_error":
            played.error = played.detail
        elif OUTCOME_OF_REASON[played.reason] != "infra_error":
            played.success = info.get(SUCCESS)
    return step, info


def _step_record(
    turn: int, action: str, observation: str, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]
) -> Step:
    """The record of one step, with the fields the rollout engine fills from the same answer."""
    components = info.get(REWARD_COMPONENTS)
    return Step(
        turn=turn,
        action=action,
        observation=observation,
        reward=reward,
        reward_components={"reward": reward} if components is None else dict(components),
        reward_events=tuple(info.get("reward_events") or ()),
        terminated=terminated,
        truncated=truncated,
        tool_calls=tuple(info.get("tool_calls") or ()),
        tool_results=tuple(info.get("tool_results") or ()),
        error=info.get("error"),
        info={key: value for key, value in info.items() if key not in INFO_KEPT_ELSEWHERE},
    )


def prefix_messages(messages: Sequence[Message], turns: int) -> list[Message]:
    """The messages of a recorded episode up to the end of turn ``turns``: the opening (system
    prompt, first observation) and each turn's assistant message with the env's answer."""
    assistants = 0
    for index, message in enumerate(messages):
        if message.get("role") == "assistant":
            assistants += 1
            if assistants > turns:
                return list(messages[:index])
    return list(messages)


def next_branch(episodes: Sequence[Episode], seed: int, sample: int) -> int:
    """One above the highest branch among ``episodes`` of this seed and sample (their tree)."""
    return 1 + max((e.branch for e in episodes if e.seed == seed and e.sample == sample), default=0)


def branch_of(original: Episode, fork_turn: int, played: KeyboardPlay, branch: int, env: gym.Env[Any, Any]) -> Episode:
    """The record of the branch a person played from turn ``fork_turn`` of ``original`` (see the
    module docstring), ending where ``env`` is now (its random generator's state)."""
    return _human_record(
        original,
        played,
        env,
        steps=[*original.steps[:fork_turn], *played.steps],
        messages=[*prefix_messages(original.messages, fork_turn), *played.messages],
        branch=branch,
        parent_branch=original.branch,
        fork_turn=fork_turn,
    )


def played_episode(
    recipe: EnvRecipe,
    seed: int,
    sample: int,
    task_id: str | None,
    opening: Sequence[Message],
    played: KeyboardPlay,
    env: gym.Env[Any, Any],
) -> Episode:
    """The record of an episode a person played from the reset (``env.reset(seed=seed)``, which
    drew ``task_id`` and answered ``opening``: the first messages, as :class:`PolicyContext`
    starts them), as the rollout engine records a trunk; policy ``human``."""
    start = Episode(env_id=recipe.env_id, env_kwargs=dict(recipe.kwargs), seed=seed, sample=sample, task_id=task_id)
    return _human_record(start, played, env, steps=list(played.steps), messages=[*opening, *played.messages], branch=0)


def _human_record(
    base: Episode,
    played: KeyboardPlay,
    env: gym.Env[Any, Any],
    *,
    steps: list[Step],
    messages: list[Message],
    branch: int,
    parent_branch: int | None = None,
    fork_turn: int = 0,
) -> Episode:
    """An episode of ``base``'s env, settings, seed, sample and task, played by a person as ``played`` says."""
    reason = played.reason
    return Episode(
        env_id=base.env_id,
        env_kwargs=dict(base.env_kwargs),
        seed=base.seed,
        sample=base.sample,
        task_id=base.task_id,
        policy=HUMAN,
        messages=messages,
        steps=steps,
        total_reward=sum(step.reward for step in steps),
        success=played.success,
        terminated=reason == "terminated",
        truncated=reason != "terminated",
        termination_reason=reason,
        termination_detail=played.detail,
        error=played.error,
        outcome=OUTCOME_OF_REASON[reason],
        retryable=played.retryable,
        unfinished_action=played.unfinished_action,
        rng_state=generator_state(env.unwrapped),
        started_at=played.started_at,
        seconds=played.seconds,
        branch=branch,
        parent_branch=parent_branch,
        fork_turn=fork_turn,
    )


def next_sample(episodes: Sequence[Episode], recipe: EnvRecipe, seed: int) -> int:
    """One above the highest sample among ``episodes`` played by a person on this env, settings and
    seed (0 for the first): each game a person plays of a seed is its own episode in the file."""
    return 1 + max(
        (
            e.sample
            for e in episodes
            if e.policy == HUMAN and e.seed == seed and e.env_id == recipe.env_id and e.env_kwargs == recipe.kwargs
        ),
        default=-1,
    )


def append_played(path: Path, record: Callable[[list[Episode]], Episode]) -> tuple[Episode, int]:
    """Append ``record(episodes)`` to the run file ``path`` (one line, fsynced), ``episodes`` being
    the file's episodes read just before the append (to number a branch or a sample: one stored
    meanwhile by another player is counted). Returns the record and its number in the file (from
    0, as ``read_run`` numbers them)."""
    episodes = read_episodes(path)
    stored = record(episodes)
    with EpisodeStore(path) as store:
        store.append(stored)
    return stored, len(episodes)


def save_branch(source: ForkSource, original: Episode, played: KeyboardPlay, env: gym.Env[Any, Any]) -> Episode:
    """Store the branch a person played from ``source`` (of ``original``) in its run file (one line,
    fsynced) and return it (:func:`store_branch`)."""
    return store_branch(source, original, played, env)[0]


def store_branch(
    source: ForkSource, original: Episode, played: KeyboardPlay, env: gym.Env[Any, Any]
) -> tuple[Episode, int]:
    """Store the branch a person played from ``source`` (of ``original``) in its run file; return it
    and its number in the file. Its branch number is read from the file just before the append,
    so that a branch stored meanwhile (another ``play --from``) is counted."""

    def record(episodes: list[Episode]) -> Episode:
        branch = next_branch(episodes, original.seed, original.sample)
        return branch_of(original, source.turn, played, branch, env)

    return append_played(source.path, record)
