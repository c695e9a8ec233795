"""Dynamic sampling: train on task groups whose episodes disagree, play more groups to find them.

A group-relative estimator (GRPO, EAPO) measures each episode against the other episodes of its
task. When every episode of a group ends with the same reward (all solved, or all failed), the
group carries no signal about which actions were better: its advantages are zero (GRPO) or only
the discount's tiny spread (EAPO), yet it costs a full share of the update. DAPO's dynamic
sampling keeps only groups whose rewards differ, and over-samples to fill the batch:

    keep group g  iff  max_i R_{g,i} − min_i R_{g,i} > 0,

playing further rounds of ``tasks_per_step`` new tasks until ``tasks_per_step`` groups are kept or
``max_rounds`` rounds are played. The zero-signal groups are still stored with the step's episodes
(they were played), and counted; they are not trained on.

Source: Yu et al., "DAPO: An Open-Source LLM Reinforcement Learning System at Scale",
arXiv:2503.14476, section 3.2 ("Dynamic Sampling").
"""

from __future__ import annotations

from collections.abc import Sequence

from horizongym.training.rollouts.trajectory import Episode

REWARD_TOLERANCE = 1e-9
"""Rewards closer than this count as the same."""


def signal_seeds(episodes: Sequence[Episode]) -> set[int]:
    """The task seeds whose trainable episodes do not all end with the same total reward.

    A group with fewer than two trainable episodes has nothing to compare and carries no signal.
    """
    rewards: dict[int, list[float]] = {}
    for episode in episodes:
        if episode.trainable:
            rewards.setdefault(episode.seed, []).append(episode.total_reward)
    return {seed for seed, values in rewards.items() if max(values) - min(values) > REWARD_TOLERANCE}


def with_signal(episodes: Sequence[Episode], limit: int | None = None) -> list[Episode]:
    """The episodes of groups with signal (:func:`signal_seeds`), in order; with ``limit``, of the
    first ``limit`` such groups by seed."""
    seeds = sorted(signal_seeds(episodes))
    keep = set(seeds if limit is None else seeds[:limit])
    return [e for e in episodes if e.seed in keep]
