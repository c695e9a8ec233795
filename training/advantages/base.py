"""Shared input type and helpers for the per-turn advantage estimators.

Every estimator takes one *group*: several episodes of the same task, each summarised by an
``EpisodeCredit``. It returns ``Advantages``, a list with one entry per episode, each a list with
one advantage per turn: index 0..T_i−1 stands for turn t = 1..T_i.

Group normalisation used throughout (population std, ddof = 0):

    norm(x)_k = (x_k − mean(x)) / (std(x) + ε),   ε = 1e-6

and a group whose values are all equal normalises to zeros.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Advantages = list[list[float]]
"""[episode][turn] advantages; turn index 0..T_i−1 corresponds to t = 1..T_i."""

DEFAULT_EPS = 1e-6

_PER_TURN_FIELDS = ("hindsight_logprobs", "policy_logprobs", "hindsight_head_logprobs")


@dataclass(frozen=True)
class EpisodeCredit:
    """What an advantage estimator needs to know about one episode of a group.

    ``reward`` is the outcome reward R_i, ``num_turns`` the number T_i ≥ 1 of turns the policy
    acted in. The optional per-turn sequences hold one value per turn t = 1..T_i:

    - ``hindsight_logprobs``: mean token log-prob of the turn's action under a teacher-forced
      pass with the final outcome inserted in the prompt (HCAPO);
    - ``policy_logprobs``: mean token log-prob of the action under the policy (HCA);
    - ``hindsight_head_logprobs``: log h(a_t | s_t, Z) from a learned hindsight head (HCA).
    """

    reward: float
    num_turns: int
    success: bool = False
    hindsight_logprobs: Sequence[float] | None = None
    policy_logprobs: Sequence[float] | None = None
    hindsight_head_logprobs: Sequence[float] | None = None
    parent: int | None = None
    """For an episode forked from another of the group (a tree rollout): that episode's index in the group."""
    fork_turn: int = 0
    """For a forked episode: the turns 1..fork_turn it shares with its parent (its first own turn is fork_turn + 1)."""

    def __post_init__(self) -> None:
        if isinstance(self.num_turns, bool) or not isinstance(self.num_turns, int) or self.num_turns < 1:
            raise ValueError(f"num_turns must be an integer >= 1, got {self.num_turns!r}")
        if not math.isfinite(float(self.reward)):
            raise ValueError(f"reward must be a finite number, got {self.reward!r}")
        for name in _PER_TURN_FIELDS:
            values = getattr(self, name)
            if values is not None and len(values) != self.num_turns:
                raise ValueError(f"{name} has {len(values)} entries but num_turns is {self.num_turns}")
        if not 0 <= self.fork_turn < self.num_turns:
            raise ValueError(f"fork_turn must be in 0..num_turns-1 ({self.num_turns - 1}), got {self.fork_turn}")
        if self.parent is None and self.fork_turn:
            raise ValueError("fork_turn is set but parent is not: a forked episode names its parent")


def check_group(group: Sequence[EpisodeCredit]) -> None:
    """Raise ValueError unless ``group`` is a non-empty sequence of ``EpisodeCredit``."""
    if len(group) == 0:
        raise ValueError("an advantage group needs at least one episode")
    for index, episode in enumerate(group):
        if not isinstance(episode, EpisodeCredit):
            raise ValueError(f"group[{index}] is a {type(episode).__name__}, expected EpisodeCredit")


def per_turn(episode: EpisodeCredit, field: str, index: int) -> list[float]:
    """The per-turn sequence ``field`` of ``episode`` (group position ``index``), checked present and sized."""
    values = getattr(episode, field)
    if values is None:
        raise ValueError(f"episode {index} has no {field}; this estimator needs one value per turn")
    if len(values) != episode.num_turns:
        raise ValueError(f"episode {index}: {field} has {len(values)} entries but num_turns is {episode.num_turns}")
    return [float(v) for v in values]


def normalize(
    values: Sequence[float], eps: float = DEFAULT_EPS, scale: bool = True, min_std: float = 0.0
) -> list[float]:
    """(x − mean) / (max(std, min_std) + eps) with the population std; only x − mean when ``scale`` is False.

    All-equal inputs give exact zeros (no floating-point residue from the mean).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return []
    if np.all(x == x[0]):
        return [0.0] * int(x.size)
    centred = x - x.mean()
    if scale:
        centred = centred / (max(float(x.std()), min_std) + eps)
    return [float(v) for v in centred]


def discounted_outcome(reward: float, num_turns: int, gamma: float) -> list[float]:
    """γ^(T − t) · R for t = 1..T: the outcome reward discounted back from the last turn."""
    return [gamma ** (num_turns - t) * reward for t in range(1, num_turns + 1)]


def split_by_episode(flat: Sequence[float], group: Sequence[EpisodeCredit]) -> Advantages:
    """Cut a flat list of all turns of all episodes back into [episode][turn]."""
    out: Advantages = []
    start = 0
    for episode in group:
        out.append(list(flat[start : start + episode.num_turns]))
        start += episode.num_turns
    if start != len(flat):
        raise ValueError(f"{len(flat)} values for a group with {start} turns")
    return out
