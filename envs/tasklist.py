"""The base class of environments that play a fixed list of tasks: task source, split, order.

SearchJudge-v0, EmailInbox-v0, KernelGen-v0 and SWE-v0 each play one task per episode out of a
list. :class:`TaskListEnv` gives all of them the same options, keyword-only:

* ``tasks`` — where the tasks come from: a spec string that the family's ``data.py`` resolves
  (``"fictional"``, ``"synthetic"``, ``"catalog"``, ``"embedded"``, a path...) or a list of task
  objects.
* ``split`` — ``"train"`` (the default), ``"test"`` or ``"all"``. A task's split is the one its
  data declares (HotpotQA's dev set counts as test), else a stable hash of its id
  (:func:`split_of`: CRC-32 of the id, the lowest :data:`TEST_FRACTION` of the range is test), so
  the same tasks are held out on every machine and in every run. An empty split is an error.
* ``task_order`` — ``"random"``: each episode's task is drawn with the env's own RNG (the
  Gymnasium way: the seed fixes the task); ``"by_seed"``: ``reset(seed=i)`` plays task number
  ``i`` of the split (seeds 0..N−1 visit every task once, an evaluation run).

``reset`` options ``task_id`` (a task's id) or ``task_index`` (its number in the split) pick a
task explicitly. A subclass writes :meth:`TaskListEnv.task_id` and
:meth:`TaskListEnv.start_episode`; its tools read the running episode through
:attr:`TaskListEnv.episode` and its task through :attr:`TaskListEnv.current_task`, which raise
Gymnasium's ``ResetNeeded`` before the first reset, as ``step`` does.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from horizongym.envs.base import Task, TextEnv
from horizongym.envs.registration import is_env_url, spec

TaskT = TypeVar("TaskT")
EpisodeT = TypeVar("EpisodeT")

SPLITS = ("train", "test", "all")
TASK_ORDERS = ("random", "by_seed")
RESET_OPTIONS = frozenset({"task_id", "task_index"})
TEST_FRACTION = 0.2
"""The share of tasks (by id hash) in the test split when the data declares none."""

_DECLARED = {"train": "train", "test": "test", "dev": "test", "validation": "test"}


def split_of(key: str, declared: object = None) -> str:
    """The split of a task: ``declared`` when the data names one (``train``; ``test``, ``dev`` or
    ``validation`` are test), else ``test`` iff ``crc32(key) mod 1000 < 1000·TEST_FRACTION``."""
    named = _DECLARED.get(str(declared or "").lower())
    if named is not None:
        return named
    return "test" if zlib.crc32(key.encode()) % 1000 < TEST_FRACTION * 1000 else "train"


def is_task_list_env(env_id: str) -> bool:
    """Whether the registered ``env_id`` is built by a :class:`TaskListEnv` subclass (it takes ``split``).
    False for a served env's URL: its settings, the split among them, are the server's."""
    if is_env_url(env_id):
        return False
    entry = spec(env_id).entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    return isinstance(creator, type) and issubclass(creator, TaskListEnv)


class TaskListEnv(TextEnv, Generic[TaskT, EpisodeT]):
    """A :class:`TextEnv` whose episodes each play one task of a list (see the module docstring).

    Subclass contract: resolve the ``tasks`` option to a list in ``__init__`` (with the family's
    ``data.py``) and pass it on as ``tasks=``; write :meth:`task_id` and :meth:`start_episode`;
    override :meth:`task_split` when the data declares splits, and :meth:`release_episode` when
    an episode holds something to free (a sandbox).
    """

    def __init__(
        self, *, tasks: Sequence[TaskT], split: str = "train", task_order: str = "random", **kwargs: Any
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        if task_order not in TASK_ORDERS:
            raise ValueError(
                "task_order must be 'random' (drawn with the seed) or 'by_seed' (task number = seed), "
                f"got {task_order!r}"
            )
        super().__init__(**kwargs)
        every = list(tasks)
        if not every:
            raise ValueError(f"{type(self).__name__} has no tasks to play: the task source is empty")
        self.split, self.task_order = split, task_order
        self.tasks: list[TaskT] = every if split == "all" else [t for t in every if self.task_split(t) == split]
        if not self.tasks:
            held_out = sum(self.task_split(t) == "test" for t in every)
            raise ValueError(
                f"split {split!r} is empty: of the {len(every)} tasks, {len(every) - held_out} are train and "
                f"{held_out} test. Pass split='all', or a task source with more tasks."
            )
        self._task: TaskT | None = None
        self._episode: EpisodeT | None = None

    # ----- subclass API -------------------------------------------------------------------
    def task_id(self, task: TaskT) -> str:
        """The stable id of ``task`` (``info["task_id"]``, the ``task_id`` reset option, the split hash)."""
        raise NotImplementedError(f"{type(self).__name__} must implement task_id()")

    def task_split(self, task: TaskT) -> str:
        """The split ``task`` belongs to: by default the stable hash of its id (:func:`split_of`)."""
        return split_of(self.task_id(task))

    def start_episode(self, task: TaskT) -> tuple[EpisodeT, str]:
        """Set up an episode of ``task``; return its state (:attr:`episode`) and the first observation."""
        raise NotImplementedError(f"{type(self).__name__} must implement start_episode()")

    def release_episode(self, episode: EpisodeT) -> None:
        """Free what a finished episode holds, before the next reset and at ``close``; the default holds nothing."""

    # ----- the running episode ----------------------------------------------------------
    @property
    def episode(self) -> EpisodeT:
        """The running episode's state; ``ResetNeeded`` before the first reset."""
        if self._episode is None:
            raise gym.error.ResetNeeded("no episode is running; call reset() first")
        return self._episode

    @property
    def current_task(self) -> TaskT:
        """The running episode's task; ``ResetNeeded`` before the first reset."""
        if self._task is None:
            raise gym.error.ResetNeeded("no episode is running; call reset() first")
        return self._task

    # ----- Gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        if self.task_order == "by_seed" and seed is not None and not options:
            options = {"task_index": seed}
        return super().reset(seed=seed, options=options)

    def new_task(self, options: dict[str, Any]) -> Task:
        unknown = sorted(set(options) - RESET_OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {unknown}: pick a task with task_id (e.g. {self.task_id(self.tasks[0])!r}) "
                "or task_index (its number in the split)"
            )
        self._drop_episode()
        task = self._choose(options)
        episode, prompt = self.start_episode(task)
        self._task, self._episode = task, episode
        return Task(id=self.task_id(task), prompt=prompt)

    def close(self) -> None:
        self._drop_episode()
        super().close()

    # ----- forking (horizongym.envs.snapshot) -------------------------------------------------
    def fork_state(self) -> Any:
        """The running task's id and a copy of the episode's state (plus :attr:`episode_attributes`).
        A subclass whose episode holds what cannot be copied (a sandbox) overrides this."""
        own = super().fork_state()
        own["task_id"] = self.task_id(self.current_task)
        own["episode"] = copy.deepcopy(self.episode)
        return own

    def load_fork_state(self, state: Any) -> None:
        """Release the running episode, then take the snapshot's task (found by id) and episode."""
        state = dict(state)
        task_id, episode = state.pop("task_id"), state.pop("episode")
        task = self._task_by_id(task_id)
        self._drop_episode()
        super().load_fork_state(state)
        self._task, self._episode = task, episode

    # ----- helpers ------------------------------------------------------------------------
    def _choose(self, options: dict[str, Any]) -> TaskT:
        """The task named by ``options`` (``task_id`` or ``task_index``), else one drawn with the env's RNG."""
        if "task_id" in options:
            return self._task_by_id(options["task_id"])
        if "task_index" in options:
            return self.tasks[int(options["task_index"]) % len(self.tasks)]
        return self.tasks[int(self.np_random.integers(len(self.tasks)))]

    def _task_by_id(self, wanted: object) -> TaskT:
        for task in self.tasks:
            if self.task_id(task) == wanted:
                return task
        raise ValueError(f"no task with id {wanted!r} in split {self.split!r}")

    def _drop_episode(self) -> None:
        episode, self._task, self._episode = self._episode, None, None
        if episode is not None:
            self.release_episode(episode)
