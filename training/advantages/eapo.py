"""EAPO: efficiency-aware per-round advantages, normalised over all rounds of the group.

Each round t = 1..T_i of episode i is its own training sample, rewarded with the episode's
outcome discounted back from the final round:

    r_{i,t} = γ^(T_i − t) · R_i,    γ = 0.995

so reaching the same outcome in fewer rounds earns more. The advantages normalise over the set
C of ALL rounds of ALL episodes in the group (population std, ε = 1e-6):

    A_{i,t} = (r_{i,t} − mean_C r) / (std_C r + ε)

``min_std`` (0 by default, the paper's formula) floors the std: A_{i,t} = (r_{i,t} − mean_C r) /
(max(std_C r, min_std) + ε). When every episode of a group has the same outcome R, the rounds
differ only by the discount (γ^(T − t) R, a spread of 0.5% of R per round at γ = 0.995), and
plain normalisation blows that spread up to advantages of ±1 that push every last round up and
every earlier round down, whatever was done in them; with a floor such a group's advantages
stay as small as its rewards differ.

Adaptive downsampling: |C| is generally not a multiple of the data-parallel size, so
|C| mod dp_size rounds, drawn at random without replacement, are dropped and every rank gets a
batch of the same size (``downsample_to_multiple``).

Source: "IterResearch: Rethinking Long-Horizon Agents via Markovian State Reconstruction",
arXiv:2511.07327, section "Efficiency-Aware Policy Optimization" (EAPO).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from horizongym.training.advantages.base import (
    DEFAULT_EPS,
    Advantages,
    EpisodeCredit,
    check_group,
    discounted_outcome,
    normalize,
    split_by_episode,
)

T = TypeVar("T")

DEFAULT_GAMMA = 0.995


def eapo(
    group: Sequence[EpisodeCredit], *, gamma: float = DEFAULT_GAMMA, eps: float = DEFAULT_EPS, min_std: float = 0.0
) -> Advantages:
    """Per-round EAPO advantages: discounted outcome γ^(T_i − t)·R_i, normalised over all rounds."""
    check_group(group)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if min_std < 0.0:
        raise ValueError(f"min_std must be >= 0, got {min_std}")
    rewards = [r for ep in group for r in discounted_outcome(ep.reward, ep.num_turns, gamma)]
    return split_by_episode(normalize(rewards, eps=eps, min_std=min_std), group)


def downsample_to_multiple(samples: Sequence[T], multiple: int, rng: random.Random) -> list[T]:
    """Drop len(samples) mod ``multiple`` randomly chosen samples; the kept ones stay in order.

    ``multiple`` is the data-parallel size; ``multiple=1`` keeps everything.
    """
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple must be an integer >= 1, got {multiple!r}")
    excess = len(samples) % multiple
    dropped = set(rng.sample(range(len(samples)), excess))
    return [sample for index, sample in enumerate(samples) if index not in dropped]
