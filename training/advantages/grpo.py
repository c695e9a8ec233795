"""GRPO: group-relative outcome advantage, the same value on every turn of an episode.

    A_{i,t} = (R_i − mean_j R_j) / (std_j R_j + ε)     for every turn t = 1..T_i

with the population std (ddof = 0) over the episodes of the group and ε = 1e-6. A group whose
rewards are all equal gets zeros. With ``normalize_std=False`` only the mean is subtracted,
A_{i,t} = R_i − mean_j R_j (the Dr. GRPO variant).

Source: Shao et al. 2024, "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
Language Models", arXiv:2402.03300 (GRPO); Liu et al. 2025, "Understanding R1-Zero-Like
Training: A Critical Perspective", arXiv:2503.20783 (Dr. GRPO, no std division).
"""

from __future__ import annotations

from collections.abc import Sequence

from horizongym.training.advantages.base import DEFAULT_EPS, Advantages, EpisodeCredit, check_group, normalize


def grpo(group: Sequence[EpisodeCredit], *, normalize_std: bool = True, eps: float = DEFAULT_EPS) -> Advantages:
    """Per-turn GRPO advantages: each episode's normalised group-relative reward on all its turns."""
    check_group(group)
    episode_advantages = normalize([ep.reward for ep in group], eps=eps, scale=normalize_std)
    return [[a] * ep.num_turns for a, ep in zip(episode_advantages, group, strict=True)]
