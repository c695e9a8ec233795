"""Tree rollouts: where a trunk is forked, what a fork keeps, and what a run of trees counts.

With ``tree`` K > 1 the rollout engine plays each (seed, sample) job as a tree: a trunk
(branch 0) and, at each chosen fork point, K−1 new continuations (the trunk is the K-th). A
fork point "after t turns" is a snapshot taken when the trunk has played t turns and is about to
act again; it is usable when the trunk went on past it (1 <= t <= T−1, T the trunk's turns:
forking after the last turn would continue nothing). ``branch_at`` chooses the fork points:

* ``"all"``: every t in 1..T−1; the trunk keeps every snapshot until it ends (an SWE snapshot is
  a committed image: T−1 of them at once);
* ``N`` (an int >= 1): t = N; a trunk of fewer than N+1 turns is not forked (counted in
  :class:`TreeStats`, and the run's summary says so);
* ``"random"``: one t uniform in 1..T−1, by reservoir sampling over the turns as they are played
  (Vitter's Algorithm R with a reservoir of one: the candidate of turn t replaces the kept one with
  probability 1/t, so each of 1..T−1 is kept with probability 1/(T−1)), with one snapshot alive at
  a time: a replaced snapshot is released as soon as the new one is taken. The draws come from a
  generator seeded by the sampling seed, the task seed and the sample: the same run forks at the
  same turns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from horizongym.agents.base import Message
from horizongym.envs.snapshot import Snapshot
from horizongym.training.rollouts.context import PolicyContext
from horizongym.training.rollouts.trajectory import Episode, Step

BranchAt = Literal["all", "random"] | int
"""Where a trunk forks: every turn, one random turn, or after turn N."""


def parse_branch_at(value: object) -> BranchAt:
    """``"all"``, ``"random"`` or a whole number N >= 1 (an int, or its digits as text); ValueError otherwise."""
    if value in ("all", "random"):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"branch_at must be 'all', 'random' or a turn N >= 1, got {value!r}")


@dataclass
class ForkPoint:
    """A trunk after ``turn`` turns: its env's snapshot and everything its record and policy had then."""

    turn: int
    snapshot: Snapshot
    context: PolicyContext
    transcript: list[Message]
    steps: list[Step]
    total_reward: float
    task_id: str | None
    tools: list[dict[str, Any]]


class ForkPoints:
    """The fork points one trunk keeps, chosen by ``branch_at`` as its turns are played (see the module docstring).

    :meth:`wants` says whether a snapshot after ``turn`` turns is to be taken; :meth:`keep` stores it
    and returns the snapshots it replaces, for the caller to release.
    """

    __slots__ = ("_rng", "branch_at", "kept")

    def __init__(self, branch_at: BranchAt, seed: int) -> None:
        self.branch_at = branch_at
        self.kept: list[ForkPoint] = []
        self._rng = random.Random(seed) if branch_at == "random" else None

    def wants(self, turn: int) -> bool:
        """Whether to snapshot the trunk after ``turn`` (>= 1) turns; draws the reservoir's coin for ``random``."""
        if self._rng is not None:
            return self._rng.random() * turn < 1.0  # probability 1/turn; the first candidate always
        if self.branch_at == "all":
            return True
        return turn == self.branch_at

    def keep(self, point: ForkPoint) -> list[ForkPoint]:
        """Keep ``point``; return the points it replaces (``random`` keeps one)."""
        replaced: list[ForkPoint] = []
        if self._rng is not None:
            replaced, self.kept = self.kept, []
        self.kept.append(point)
        return replaced

    def usable(self, trunk_turns: int) -> tuple[list[ForkPoint], list[ForkPoint]]:
        """The kept points a trunk of ``trunk_turns`` turns can be forked at (t <= T−1), and the others."""
        usable = [p for p in self.kept if p.turn < trunk_turns]
        return usable, [p for p in self.kept if p.turn >= trunk_turns]


def fork_seed(sampling_seed: int, seed: int, sample: int) -> int:
    """The seed of the ``random`` fork draws of one job: reproducible, distinct per run, task and sample."""
    return (sampling_seed * 1_000_003 + seed) * 100_003 + sample


class TreeMember(Protocol):
    """What :meth:`TreeStats.count` reads of an episode (an ``Episode``, or an outline of one)."""

    @property
    def branch(self) -> int: ...
    @property
    def fork_turn(self) -> int: ...
    @property
    def num_turns(self) -> int: ...


@dataclass
class TreeStats:
    """What a run of trees played: trunks, branches, env steps, and trunks that could not be forked."""

    trunks: int = 0
    branches: int = 0
    env_steps: int = 0
    """Env steps run: a trunk's turns plus each branch's own (a branch's first ``fork_turn`` are its parent's)."""
    unforked: int = 0
    """Trunks with no usable fork point (too short for ``branch_at`` N, or of one turn); a trunk that
    ended in an infrastructure failure is not forked either, and not counted here."""
    short_for: int | None = field(default=None)
    """``branch_at`` when it is a turn N (what the summary line names)."""

    def add(self, episodes: list[Episode]) -> None:
        """Count one tree (its trunk and branches)."""
        for episode in episodes:
            self.count(episode)
        if len(episodes) == 1 and episodes[0].outcome != "infra_error":  # a trunk that failed is no short trunk
            self.unforked += 1

    def count(self, episode: TreeMember) -> None:
        """Count one episode, a trunk or a branch (its own turns as env steps)."""
        if episode.branch:
            self.branches += 1
            self.env_steps += episode.num_turns - episode.fork_turn
        else:
            self.trunks += 1
            self.env_steps += episode.num_turns

    def line(self) -> str:
        """The run's summary line of its trees."""
        text = f"trees: {self.trunks} trunks, {self.branches} branches, {self.env_steps} env steps"
        if self.unforked:
            why = f"fewer than {self.short_for + 1} turns" if self.short_for is not None else "no turn to fork after"
            text += f"; {self.unforked} trunks not forked ({why})"
        return text
