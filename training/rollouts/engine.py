"""The rollout engine: many concurrent episodes of one environment against one policy.

Each of ``concurrency`` workers owns one environment and takes (seed, sample) jobs from a
queue. A job with seed ``s`` is the task the env draws on ``reset(seed=s)``; its
``group_size`` samples are G attempts at the same task (the groups GRPO-style estimators
need). Turn ``t`` of sample ``g`` of task ``s`` is decoded with
``policy_seed(s, g, t, sampling_seed)``: reproducible, and distinct for every engine
``sampling_seed`` (a trainer's run seed). Environments are kept between runs of one engine
(a trainer calls ``run`` once per iteration); ``close()`` the engine, or use it as a context
manager, to release them.

The engine keeps the chat history, runs blocking env steps in a thread pool, enforces
per-episode turn and wall-clock limits, and turns an env that raises into a truncated
episode with the error recorded; the run goes on. Every episode gets an outcome
(:mod:`horizongym.failures`): an :class:`~horizongym.failures.InfrastructureError` from the env
or the policy (a dead container, a lost server), or a ``sandbox_died`` end, is an
``infra_error``; a retryable one is played again, same seed, on a freshly built env, up to
``max_attempts`` tries, and the episode is stored once with its failed attempts listed. The policy's context is built by
:class:`~horizongym.training.rollouts.context.PolicyContext` (the env steers it through
``fresh_context`` and ``redact_previous_observation``; the stored transcript keeps everything).
An episode's end is held to :mod:`horizongym.envs.contract`: a termination reason outside
it makes the episode an ``env_error``, so nothing is stored that cannot be read back. Every
finished episode is appended to the store (fsynced), so a killed run resumes where it stopped.

What a replay needs is recorded on the way (:mod:`horizongym.training.rollouts.replay`): each
step's action, tool calls and results, reward components and reward events; each episode's seed,
the env's generator state at its end (:mod:`~horizongym.training.rollouts.rng`, one read per
episode) and the action of a step that never returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from tqdm import tqdm

from horizongym.agents.base import Action, ContextLengthExceeded, Message, Policy
from horizongym.envs import make
from horizongym.envs.contract import (
    ERROR,
    OUTCOME_OF_REASON,
    RETRYABLE,
    REWARD_COMPONENTS,
    REWARD_EVENTS,
    SUCCESS,
    TASK_ID,
    TERMINATION_DETAIL,
    TERMINATION_REASON,
    TOOL_CALLS,
    TOOL_RESULTS,
    TOOLS,
    TURN,
    TerminationReason,
    UnknownTerminationReason,
    termination_reason,
)
from horizongym.envs.snapshot import NotForkable, check_forkable, release, restore, snapshot
from horizongym.failures import infrastructure_cause
from horizongym.training.rollouts.context import PolicyContext
from horizongym.training.rollouts.rng import generator_state
from horizongym.training.rollouts.store import EpisodeStore
from horizongym.training.rollouts.trajectory import EMPTY_DICT, EMPTY_LIST, Episode, FailedAttempt, Step
from horizongym.training.rollouts.tree import BranchAt, ForkPoint, ForkPoints, TreeStats, fork_seed, parse_branch_at

INFO_KEPT_ELSEWHERE = frozenset(
    {TOOLS, REWARD_COMPONENTS, REWARD_EVENTS, TOOL_CALLS, TOOL_RESULTS, TURN, TASK_ID, ERROR}
)
"""``info`` keys a Step records in fields of its own (the rest go to ``Step.info``)."""
_EVERY_STEP_INFO = frozenset({TOOLS, REWARD_COMPONENTS, TURN, TASK_ID})
"""The ``info`` keys every step of a TextEnv has: a step whose ``info`` holds no other has no
calls, events, error or other keys to record (most steps of a text action)."""
_NO_CALL_IDS: tuple[str, ...] = ()
"""The call ids of a text action: one shared empty tuple rather than a new list per step."""

# Bound once: looking up an attribute of a pydantic model class costs about 0.4 µs (its
# metaclass's ``__getattr__`` hook), and a step record is built for every step.
_step_record = Step.trusted
_episode_record = Episode.trusted

_STEP_TEMPLATE: dict[str, Any] = {
    "turn": 0,
    "action": "",
    "tool_calls": (),
    "tool_results": (),
    "observation": "",
    "reward": 0.0,
    "reward_components": EMPTY_DICT,
    "reward_events": (),
    "terminated": False,
    "truncated": False,
    "error": None,
    "prompt_token_ids": None,
    "token_ids": None,
    "logprobs": None,
    "policy_version": None,
    "advantage": None,
    "policy_seconds": 0.0,
    "env_seconds": 0.0,
    "info": EMPTY_DICT,
    "policy_trace": None,
}
"""Every field of a Step, at its default: each step's record starts as a copy of it, then gets
what every step sets stored over it, and the rest only where the step has it (a text action's step
has no calls, events or error). Copying a dict clones its table in one go (about 0.1 µs), where a
18-entry dict display costs 0.8 µs: CPython builds a display of more than 15 entries one entry at
a time, resizing the dict as it grows."""


@dataclass(frozen=True)
class EnvRecipe:
    """A picklable description of an environment: an id and keyword arguments."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> gym.Env[Any, Any]:
        """The env with the registry's wrappers, less Gymnasium's passive checker: the engine
        always resets before stepping, and ``check_env`` tests cover what the checker would."""
        return make(self.env_id, disable_env_checker=True, **self.kwargs)


class RolloutError(RuntimeError):
    """A run cannot go on: its env cannot be built, or its store refused an episode (the message says which)."""


_SEED_MODULUS = 2_147_483_647


def policy_seed(seed: int, sample: int, turn: int, sampling_seed: int = 0, branch: int = 0) -> int:
    """A distinct, reproducible sampling seed for each (task, sample, turn) of a run's ``sampling_seed``,
    and for each ``branch`` of a tree rollout (branch 0, the trunk, draws the seeds of a run without trees).

    Linear in ``turn``: ``policy_seed(s, g, t) == (policy_seed(s, g, 0) + t) % 2_147_483_647``,
    which the engine uses to draw each turn's seed without a call.
    """
    job = (sampling_seed * 1_000_003 + seed) * 100_003 + sample
    if branch:
        job = job * 65_537 + branch
    return (job * 1_009 + turn) % _SEED_MODULUS


class RolloutEngine:
    """Run episodes of ``env`` with ``policy``; see the module docstring."""

    def __init__(
        self,
        env: EnvRecipe | str,
        policy: Policy,
        *,
        concurrency: int = 8,
        max_turns: int | None = None,
        episode_timeout_s: float | None = None,
        store: EpisodeStore | None = None,
        system_prompt: str | None = None,
        progress: bool = True,
        env_factory: Callable[[], gym.Env[Any, Any]] | None = None,
        sampling_seed: int = 0,
        max_attempts: int = 3,
        tree: int = 1,
        branch_at: BranchAt = "random",
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if isinstance(tree, bool) or not isinstance(tree, int) or tree < 1:
            raise ValueError(f"tree must be an integer >= 1 (1: no tree; K >= 2: K branches per fork), got {tree!r}")
        self.tree = tree
        self.branch_at = parse_branch_at(branch_at)
        self.tree_stats = TreeStats(short_for=self.branch_at if isinstance(self.branch_at, int) else None)
        """What the last run's trees played (with ``tree`` > 1)."""
        self.recipe = env if isinstance(env, EnvRecipe) else EnvRecipe(env)
        self.policy = policy
        self.concurrency = max(1, concurrency)
        self.max_turns = max_turns
        self.episode_timeout_s = episode_timeout_s
        self.store = store
        self.system_prompt = system_prompt
        self.progress = progress
        self.sampling_seed = sampling_seed
        self.max_attempts = max_attempts
        self._env_factory = env_factory or self.recipe.build
        self._idle_envs: list[gym.Env[Any, Any]] = []
        # room for steps left running by timed-out episodes, so they do not starve the others
        self._threads = ThreadPoolExecutor(max_workers=2 * self.concurrency + 2, thread_name_prefix="env")
        self._closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="env-close")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    def __enter__(self) -> RolloutEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the environments kept between runs and stop the engine's threads."""
        while self._idle_envs:
            with contextlib.suppress(Exception):
                self._idle_envs.pop().close()
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._closer.shutdown(wait=False)
        self._writer.shutdown(wait=True)

    # ----- public API -----------------------------------------------------------------
    def jobs(self, num_tasks: int, group_size: int = 1, seed: int = 0) -> list[tuple[int, int]]:
        """The (seed, sample) pairs of a run: tasks ``seed .. seed+num_tasks-1``, G samples each."""
        return [(seed + task, sample) for task in range(num_tasks) for sample in range(group_size)]

    async def run(self, num_tasks: int, group_size: int = 1, *, seed: int = 0, resume: bool = False) -> list[Episode]:
        """Run every job not already in the store (when ``resume``); return the new episodes."""
        return [episode async for episode in self.stream(num_tasks, group_size, seed=seed, resume=resume)]

    def run_sync(self, num_tasks: int, group_size: int = 1, *, seed: int = 0, resume: bool = False) -> list[Episode]:
        return asyncio.run(self.run(num_tasks, group_size, seed=seed, resume=resume))

    async def stream(
        self, num_tasks: int, group_size: int = 1, *, seed: int = 0, resume: bool = False
    ) -> AsyncIterator[Episode]:
        """Yield episodes as they finish (stored first, when there is a store)."""
        jobs = self.jobs(num_tasks, group_size, seed)
        if resume and self.store is not None:
            done = self.store.finished_keys(self.recipe.env_id, self.recipe.kwargs)
            jobs = [job for job in jobs if job not in done]
        if self.tree > 1:
            self.tree_stats = TreeStats(short_for=self.tree_stats.short_for)
            if jobs:
                await self._check_forkable()
        pending = iter(jobs)  # shared by the workers: each takes the next job when it is free
        finished: asyncio.Queue[Episode | RolloutError | None] = asyncio.Queue()
        workers = [
            asyncio.create_task(self._worker(pending, finished)) for _ in range(min(self.concurrency, len(jobs)))
        ]
        unit = "tree" if self.tree > 1 else "ep"
        bar = tqdm(total=len(jobs), unit=unit, disable=not self.progress, dynamic_ncols=True, desc="rollout")
        reward_sum, count, failed, remaining = 0.0, 0, 0, len(workers)
        try:
            while remaining:
                episode = await finished.get()
                if episode is None:
                    remaining -= 1
                    continue
                if isinstance(episode, RolloutError):
                    raise episode
                if self.progress:  # the bar's figures, read from the record only when there is a bar
                    if episode.trainable:  # the bar's reward is the policy's: failures are counted apart
                        count += 1
                        reward_sum += episode.total_reward
                    else:
                        failed += 1
                    if not episode.branch:  # one job: an episode, or a tree (its trunk counts it)
                        bar.update(1)
                    shown = {"reward": f"{reward_sum / count:.3f}" if count else "-"}
                    bar.set_postfix(shown if not failed else {**shown, "failed": failed}, refresh=False)
                yield episode
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            bar.close()

    # ----- internals ------------------------------------------------------------------
    async def _worker(
        self, jobs: Iterator[tuple[int, int]], finished: asyncio.Queue[Episode | RolloutError | None]
    ) -> None:
        env: gym.Env[Any, Any] | None = None
        in_episode: gym.Env[Any, Any] | None = None  # an env whose step may still be running in a thread
        last_yield = time.perf_counter()
        try:
            for seed, sample in jobs:
                if env is None:
                    try:
                        env = self._idle_envs.pop() if self._idle_envs else await self._build_env()
                    except Exception as exc:
                        recipe = f"{self.recipe.env_id} with {self.recipe.kwargs}"
                        finished.put_nowait(RolloutError(f"could not build {recipe}: {type(exc).__name__}: {exc}"))
                        return
                if self.tree > 1:
                    trunk_env, env = env, None  # the tree's now: it discards what it holds if cancelled
                    tree = await self._tree(trunk_env, seed, sample)
                    if isinstance(tree, RolloutError):
                        finished.put_nowait(tree)
                        return
                    env, episodes = tree
                    if not await self._store_tree(episodes, finished):
                        return
                    await asyncio.sleep(0)  # a tree is many episodes: let the other workers run
                    continue
                attempts: list[FailedAttempt] = []
                while True:
                    in_episode = env
                    episode, discard = await self._episode(env, seed, sample)
                    in_episode = None
                    if not discard:  # the usual case, decided without reading the record's attributes
                        break
                    self._discard_env(env)  # broken, or an infrastructure failure: nothing worth reusing
                    env = None
                    # only an infrastructure failure is retryable, and it always discards the env
                    if not (episode.retryable and len(attempts) + 1 < self.max_attempts):
                        break
                    attempts.append(_failed_attempt(episode))
                    try:
                        env = await self._build_env()
                    except Exception as exc:
                        recipe = f"{self.recipe.env_id} with {self.recipe.kwargs}"
                        finished.put_nowait(RolloutError(f"could not build {recipe}: {type(exc).__name__}: {exc}"))
                        return
                if attempts:
                    episode.attempts = attempts
                if self.store is not None:
                    try:
                        await asyncio.get_running_loop().run_in_executor(self._writer, self.store.append, episode)
                    except Exception as exc:
                        finished.put_nowait(RolloutError(f"could not store an episode: {type(exc).__name__}: {exc}"))
                        return
                finished.put_nowait(episode)
                if time.perf_counter() - last_yield > 0.02:  # instant policies never suspend: let others run
                    await asyncio.sleep(0)
                    last_yield = time.perf_counter()
        finally:
            if in_episode is not None:  # cancelled mid-episode: its thread may still be stepping it
                self._discard_env(in_episode)
            elif env is not None:
                self._idle_envs.append(env)  # kept for the next run; close() closes it
            finished.put_nowait(None)

    # ----- trees ----------------------------------------------------------------------
    async def _check_forkable(self) -> None:
        """Refuse a tree run whose env cannot be forked, before any episode runs (on the first env built)."""
        env = self._idle_envs[-1] if self._idle_envs else await self._fresh_env()
        if env not in self._idle_envs:
            self._idle_envs.append(env)
        try:
            check_forkable(env)
        except NotForkable as exc:
            raise RolloutError(
                f"{self.recipe.env_id} cannot be forked for tree rollouts: {exc}; run it without a tree (tree 1)"
            ) from None

    async def _tree(
        self, env: gym.Env[Any, Any], seed: int, sample: int
    ) -> tuple[gym.Env[Any, Any] | None, list[Episode]] | RolloutError:
        """Play the tree of one job: its trunk, then ``tree - 1`` branches at each usable fork point.

        Returns the env to keep (None when the last one broke) and the episodes, trunk first, or the
        RolloutError of an env that could not be built. A trunk that fails on infrastructure is played
        again whole (its snapshots released), a branch from the same fork point, each on a fresh env,
        up to ``max_attempts`` tries; a trunk that still fails so is not forked."""
        slot = _EnvSlot(env)
        tries: list[ForkPoints] = []  # the trunk's fork points, one per try: the last one's are kept

        async def play_trunk(current: gym.Env[Any, Any]) -> tuple[Episode, bool]:
            if tries:  # the snapshots of a failed try
                await self._release_all(tries[-1].kept, current)
            tries.append(ForkPoints(self.branch_at, fork_seed(self.sampling_seed, seed, sample)))
            return await self._episode(current, seed, sample, forks=tries[-1])

        try:
            trunk = await self._retried(slot, play_trunk)
            forks = tries[-1]
            usable, unusable = forks.usable(trunk.num_turns if trunk.outcome != "infra_error" else 0)
            if slot.env is None and forks.kept:  # releasing and restoring a snapshot take an env
                slot.env = await self._fresh_env()
            if unusable and slot.env is not None:
                await self._release_all(unusable, slot.env)
            forks.kept = list(usable)  # what is still to release if the tree is cut short
            episodes, branch = [trunk], 0
            for point in usable:
                for _ in range(self.tree - 1):
                    branch += 1
                    play_branch = functools.partial(self._branch, seed, sample, branch, point)
                    episodes.append(await self._retried(slot, play_branch))
                if slot.env is None:
                    slot.env = await self._fresh_env()
                forks.kept.remove(point)
                await self._release_all([point], slot.env)
            return slot.env, episodes
        except RolloutError as exc:  # a fresh env could not be built
            if tries and tries[-1].kept:  # through the tree's first env, closed or not
                self._release_later(env, tries[-1].kept)
            return exc
        except BaseException:  # cancelled: an env step may still be running in a thread
            if tries and tries[-1].kept:
                self._release_later(slot.env if slot.env is not None else env, tries[-1].kept)
            if slot.env is not None:
                self._discard_env(slot.env)
            raise

    async def _branch(
        self, seed: int, sample: int, branch: int, point: ForkPoint, env: gym.Env[Any, Any]
    ) -> tuple[Episode, bool]:
        """Play branch ``branch`` of the tree of (seed, sample) on ``env``, from ``point``."""
        return await self._episode(env, seed, sample, branch, fork=point)

    async def _retried(
        self, slot: _EnvSlot, play: Callable[[gym.Env[Any, Any]], Awaitable[tuple[Episode, bool]]]
    ) -> Episode:
        """Play one episode with ``play(env)`` on the slot's env; after a retryable infrastructure failure,
        again on a fresh env, up to ``max_attempts`` tries, the failed ones listed in the episode. The slot
        holds the env to keep after (None when the last one broke), and the one in play meanwhile."""
        attempts: list[FailedAttempt] = []
        while True:
            if slot.env is None:
                slot.env = await self._fresh_env()
            episode, discard = await play(slot.env)
            if discard:
                self._discard_env(slot.env)
                slot.env = None
            if not (discard and episode.retryable and len(attempts) + 1 < self.max_attempts):
                break
            attempts.append(_failed_attempt(episode))
        if attempts:
            episode.attempts = attempts
        return episode

    async def _fresh_env(self) -> gym.Env[Any, Any]:
        """A newly built env of the recipe; RolloutError when it cannot be built."""
        try:
            return await self._build_env()
        except Exception as exc:
            recipe = f"{self.recipe.env_id} with {self.recipe.kwargs}"
            raise RolloutError(f"could not build {recipe}: {type(exc).__name__}: {exc}") from None

    async def _store_tree(
        self, episodes: list[Episode], finished: asyncio.Queue[Episode | RolloutError | None]
    ) -> bool:
        """Store a tree in one write, its branches first and its trunk last (a trunk on file is a whole
        tree: what a resumed run skips), then hand its episodes on, trunk first; False when the store refused it."""
        self.tree_stats.add(episodes)
        if self.store is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._writer, self.store.append_many, [*episodes[1:], episodes[0]]
                )
            except Exception as exc:
                finished.put_nowait(RolloutError(f"could not store a tree: {type(exc).__name__}: {exc}"))
                return False
        for episode in episodes:
            finished.put_nowait(episode)
        return True

    async def _release(self, env: gym.Env[Any, Any], point: ForkPoint) -> None:
        """Free what a fork point's snapshot holds outside the process (a committed image)."""
        if self._blocking(env.unwrapped):
            await self._in_thread(functools.partial(_release_or_warn, env, point), None)
        else:
            _release_or_warn(env, point)

    def _release_later(self, env: gym.Env[Any, Any], points: list[ForkPoint]) -> None:
        """Release the snapshots of a tree cut short without waiting, on the thread that closes broken
        envs (``env`` may be in a step on another thread, or closed: releasing reads only the snapshot)."""
        kept = list(points)

        def free() -> None:
            for point in kept:
                _release_or_warn(env, point)

        self._closer.submit(free)

    async def _release_all(self, points: list[ForkPoint], env: gym.Env[Any, Any]) -> None:
        """Release the snapshots of ``points`` through ``env`` (an env of the recipe)."""
        for point in points:
            await self._release(env, point)

    @staticmethod
    def _blocking(env: gym.Env[Any, Any]) -> bool:
        return bool(getattr(env.unwrapped, "blocking", True))

    async def _build_env(self) -> gym.Env[Any, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._env_factory)

    def _discard_env(self, env: gym.Env[Any, Any]) -> None:
        """Close a broken env without waiting: it may still be stuck in a step on another thread."""

        def close() -> None:
            with contextlib.suppress(Exception):
                env.close()

        self._closer.submit(close)

    async def _in_thread(self, fn: Callable[[], Any], deadline: float | None) -> Any:
        """Run a blocking env call in the thread pool, within the episode's deadline."""
        future = asyncio.get_running_loop().run_in_executor(self._threads, fn)
        timeout = None if deadline is None else max(0.0, deadline - time.perf_counter())
        return await asyncio.wait_for(future, timeout)

    async def _episode(
        self,
        env: gym.Env[Any, Any],
        seed: int,
        sample: int,
        branch: int = 0,
        fork: ForkPoint | None = None,
        forks: ForkPoints | None = None,
    ) -> tuple[Episode, bool]:
        """Play one episode. Returns it and whether the env must be discarded: it broke (raised,
        or ran past the time limit), or the episode ended on an infrastructure failure.

        A tree's trunk passes ``forks``, which takes the snapshots it asks for as the turns are
        played; a branch passes its ``fork``, restored into ``env`` instead of a reset."""
        clock = time.perf_counter
        start = clock()
        deadline = start + self.episode_timeout_s if self.episode_timeout_s else None
        unwrapped = env.unwrapped
        blocking = self._blocking(unwrapped)
        act, max_turns = self.policy.act, self.max_turns
        first_turn_seed = policy_seed(seed, sample, 0, self.sampling_seed, branch)
        steps: list[Step] = []
        transcript: list[Message] = []
        task_id: str | None = None
        success: bool | None = None
        reason: TerminationReason = "terminated"
        retryable = False
        error: str | None = None
        detail: str | None = None
        pending: Message | None = None
        env_action = ""
        broken = False
        total_reward = 0.0
        phase = "reset" if fork is None else "restore"  # what an exception of the env is named by
        try:
            if fork is None:
                if blocking:
                    observation, info = await self._in_thread(lambda: env.reset(seed=seed), deadline)
                else:
                    observation, info = env.reset(seed=seed)
                task_id = info.get(TASK_ID)
                tools: list[dict[str, Any]] = info.get(TOOLS, [])
                context = PolicyContext(observation, self.system_prompt)
                transcript.extend(context.messages)
                turn = 0
            else:  # a branch: the trunk's env, record and policy context as they were at the fork
                # the record first: a branch whose restore fails still holds the shared prefix
                task_id, tools, context = fork.task_id, fork.tools, fork.context.fork()
                transcript.extend(fork.transcript)
                steps.extend(fork.steps)
                total_reward, turn = fork.total_reward, fork.turn
                if blocking:
                    await self._in_thread(functools.partial(restore, env, fork.snapshot), deadline)
                else:
                    restore(env, fork.snapshot)
            phase = "step"
            turn_start = clock()
            while True:
                if max_turns is not None and turn >= max_turns:
                    reason = "max_turns"
                    break
                if forks is not None and turn and forks.wants(turn):
                    phase = "snapshot"
                    if blocking:
                        taken = await self._in_thread(functools.partial(snapshot, env), deadline)
                    else:
                        taken = snapshot(env)
                    phase = "step"
                    point = ForkPoint(
                        turn, taken, context.fork(), list(transcript), list(steps), total_reward, task_id, tools
                    )
                    for replaced in forks.keep(point):
                        await self._release(env, replaced)
                    turn_start = clock()  # the snapshot's time is no policy time
                # (first_turn_seed + turn) % modulus is policy_seed(seed, sample, turn, sampling_seed)
                acting = act(context.messages, tools, seed=(first_turn_seed + turn) % _SEED_MODULUS)
                try:
                    if deadline is None:
                        action: Action = await acting
                    else:
                        action = await asyncio.wait_for(acting, max(0.0, deadline - clock()))
                except TimeoutError:
                    reason, error = "time_limit", "the policy ran past the episode's time limit"
                    break
                except ContextLengthExceeded as exc:
                    reason, error = "context_limit", str(exc)
                    break
                except Exception as exc:
                    infra = infrastructure_cause(exc)
                    reason, error = ("policy_error" if infra is None else "infra_error"), _describe(exc, "policy")
                    retryable = infra is not None and infra.retryable
                    break
                env_start = clock()
                if action.tool_calls:
                    ids = [c.id or f"call_{turn}_{i}" for i, c in enumerate(action.tool_calls)]
                    assistant = action.message(ids)
                    call_ids: Sequence[str] = ids
                    env_action = action.env_action()
                else:
                    call_ids = _NO_CALL_IDS
                    assistant = {"role": "assistant", "content": action.text}
                    env_action = action.text
                pending = assistant  # in the record even if the step fails
                if blocking:
                    observation, reward, terminated, truncated, info = await self._in_thread(
                        functools.partial(env.step, env_action), deadline
                    )
                else:  # a non-blocking env steps right here: no thread, no suspension
                    observation, reward, terminated, truncated, info = env.step(env_action)
                env_end = clock()
                turn += 1
                reward = float(reward)
                total_reward += reward
                record = _STEP_TEMPLATE.copy()  # then what this step has (see _STEP_TEMPLATE)
                record["turn"] = turn
                record["action"] = env_action
                record["observation"] = observation
                record["reward"] = reward
                record["policy_seconds"] = env_start - turn_start
                record["env_seconds"] = env_end - env_start
                components = info.get(REWARD_COMPONENTS)
                if components is None:
                    record["reward_components"] = {"reward": reward}
                elif components:  # else the template's shared empty dict: one dict less per step
                    record["reward_components"] = components
                if terminated or truncated:  # the last step (the template's are False)
                    record["terminated"] = bool(terminated)
                    record["truncated"] = bool(truncated)
                # one test for the usual case, where there is nothing more in info to record
                if not _EVERY_STEP_INFO.issuperset(info):
                    if calls := info.get(TOOL_CALLS):
                        record["tool_calls"] = tuple(calls)
                    if results := info.get(TOOL_RESULTS):
                        record["tool_results"] = tuple(results)
                    if events := info.get(REWARD_EVENTS):
                        record["reward_events"] = tuple(events)
                    if (step_error := info.get(ERROR)) is not None:
                        record["error"] = step_error
                    if not INFO_KEPT_ELSEWHERE.issuperset(info):
                        record["info"] = _other_info(info)
                if action.token_ids is not None:
                    record["token_ids"] = action.token_ids
                if action.prompt_token_ids is not None:
                    record["prompt_token_ids"] = action.prompt_token_ids
                if action.logprobs is not None:
                    record["logprobs"] = action.logprobs
                if action.policy_version is not None:
                    record["policy_version"] = action.policy_version
                if action.trace is not None:
                    record["policy_trace"] = action.trace
                steps.append(_step_record(record))
                pending = None
                transcript.extend(context.add_turn(assistant, observation, info, call_ids))
                if terminated or truncated:
                    success = info.get(SUCCESS)
                    reason, detail = step_ending(info, terminated=bool(terminated))
                    if reason == "env_error":
                        error, success = detail, None
                    elif OUTCOME_OF_REASON[reason] == "infra_error":  # e.g. the container died: try again
                        retryable, success = bool(info.get(RETRYABLE, True)), None
                    break
                # the next turn starts where this step ended (one clock read less per turn): its
                # policy_seconds include the few microseconds spent recording this step
                turn_start = env_end
        except TimeoutError:
            reason, error, broken = "time_limit", "the environment ran past the episode's time limit", True
        except Exception as exc:
            infra = infrastructure_cause(exc)
            reason = "env_error" if infra is None else "infra_error"
            error, broken = _describe(exc, phase), True
            retryable = infra is not None and infra.retryable
        if pending is not None:  # the step of this action raised or ran past the time limit
            transcript.append(pending)
        seconds = clock() - start
        record = {  # 15 entries, the rest stored after (see _STEP_TEMPLATE)
            "env_id": self.recipe.env_id,
            "env_kwargs": dict(self.recipe.kwargs),
            "seed": seed,
            "sample": sample,
            "task_id": task_id,
            "policy": self.policy.name,
            "messages": transcript,
            "steps": steps,
            "total_reward": total_reward,
            "success": success,
            "terminated": reason == "terminated",
            "truncated": reason != "terminated",
            "termination_reason": reason,
            "termination_detail": detail,
            "error": error,
        }
        record["outcome"] = outcome = OUTCOME_OF_REASON[reason]
        record["retryable"] = retryable
        record["attempts"] = EMPTY_LIST  # the worker sets a new list when it retries
        record["unfinished_action"] = None if pending is None else env_action
        record["rng_state"] = generator_state(unwrapped)
        record["started_at"] = time.time() - seconds
        record["seconds"] = seconds
        record["branch"] = branch
        record["parent_branch"] = None if fork is None else 0
        record["fork_turn"] = 0 if fork is None else fork.turn
        return _episode_record(record), broken or outcome == "infra_error"


def _release_or_warn(env: gym.Env[Any, Any], point: ForkPoint) -> None:
    """Release ``point``'s snapshot through ``env``; a failure is a warning (the rollout goes on)."""
    try:
        release(env, point.snapshot)
    except Exception as exc:
        warnings.warn(
            f"could not release the snapshot after turn {point.turn}: {type(exc).__name__}: {exc}",
            RuntimeWarning,
            stacklevel=2,
        )


@dataclass
class _EnvSlot:
    """The env a tree is played on: replaced when one breaks, None until a fresh one is built."""

    env: gym.Env[Any, Any] | None


def _failed_attempt(episode: Episode) -> FailedAttempt:
    """The record of a failed try, kept in the episode that was finally stored."""
    return FailedAttempt(
        termination_reason=episode.termination_reason or "infra_error",
        detail=episode.termination_detail,
        error=episode.error,
        turns=episode.num_turns,
        started_at=episode.started_at,
        seconds=episode.seconds,
    )


def _other_info(info: dict[str, Any]) -> dict[str, Any]:
    """The ``info`` entries that a Step has no field of its own for (``Step.info``)."""
    return {key: value for key, value in info.items() if key not in INFO_KEPT_ELSEWHERE}


def step_ending(info: dict[str, Any], *, terminated: bool) -> tuple[TerminationReason, str | None]:
    """The reason and detail of an episode's last step, held to the contract.

    An env that reports a reason outside :data:`~horizongym.envs.contract.TerminationReason`
    breaks the contract: the episode is recorded as an ``env_error`` that says so, never with a
    reason the store could not read back.
    """
    detail = info.get(TERMINATION_DETAIL)
    reported = info.get(TERMINATION_REASON)
    if reported is None:
        return ("terminated" if terminated else "max_turns"), detail
    try:
        reason = termination_reason(reported)
    except UnknownTerminationReason as exc:
        return "env_error", f"step: {exc}"
    if (reason == "terminated") != terminated:  # terminated and truncated never share a reason
        reason = "terminated" if terminated else "max_turns"
    return reason, detail


def _describe(exc: BaseException, where: str, calls: int = 4) -> str:
    """What failed, on one line (``where: Type: message at FILE:LINE``; a message of several lines
    is joined with `` / ``), then the innermost ``calls`` frames of its traceback, one per line,
    the failing one last: ``  horizongym/envs/base.py:201 in step`` (this package's files from
    its root, an installed library's from ``site-packages``)."""
    frames = traceback.extract_tb(exc.__traceback__)
    origin = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    message = str(exc)
    if "\n" in message:
        message = " / ".join(line.strip() for line in message.splitlines() if line.strip())
    root = __file__.rsplit("/", 3)[0] + "/"  # this file is ROOT/training/rollouts/engine.py

    def short(path: str) -> str:
        if path.startswith(root):
            return "horizongym/" + path[len(root) :]
        return path.rpartition("/site-packages/")[2]

    summary = "".join(f"\n  {short(f.filename)}:{f.lineno} in {f.name}" for f in frames[-calls:])
    return f"{where}: {type(exc).__name__}: {message}{origin}{summary}"
