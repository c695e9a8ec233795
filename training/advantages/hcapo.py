"""HCAPO: hindsight credit assignment for LLM agents, a GRPO macro term plus a per-turn micro term.

For episode i with outcome R_i and turns t = 1..T_i, ``hindsight_logprobs`` holds ℓ_t, the mean
token log-prob of the turn's action under a teacher-forced pass whose prompt also states the final
outcome. With temperature τ = 5:

    π_hind(a_t) = exp(ℓ_t / τ)
    ρ_t         = clip( π_hind(a_t) / mean_{t'} π_hind(a_{t'}),  0.8, 1.2 )   (mean over the turns of episode i)
    Q_{i,t}     = ρ_t · γ^(T_i − t) · R_i,                          γ = 0.95
    A_micro     = (Q − mean Q) / (std Q + ε)                        over all turns of all episodes of the group
    A_{i,t}     = A_GRPO,i + ω · A_micro,{i,t},                      ω = 1

In a successful episode (``success=True``) negative micro terms are set to 0 before adding: a turn
of a winning episode is never pushed below its episode's macro advantage. The ratio ρ_t only
depends on differences of ℓ_t / τ, so the exponentials are computed after subtracting the
episode's maximum (no underflow for long actions).

``eapo_hcapo`` is the same estimator with EAPO's per-round advantage as the macro term instead of
GRPO's:  A_{i,t} = A_EAPO,{i,t} + ω · A_micro,{i,t}.

Sources: "Hindsight Credit Assignment for Long-Horizon LLM Agents" (HCAPO), arXiv:2603.08754;
macro terms from DeepSeekMath (GRPO), arXiv:2402.03300, and IterResearch (EAPO), arXiv:2511.07327.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from horizongym.training.advantages.base import (
    DEFAULT_EPS,
    Advantages,
    EpisodeCredit,
    check_group,
    discounted_outcome,
    normalize,
    per_turn,
    split_by_episode,
)
from horizongym.training.advantages.eapo import DEFAULT_GAMMA as EAPO_GAMMA
from horizongym.training.advantages.eapo import eapo
from horizongym.training.advantages.grpo import grpo

DEFAULT_GAMMA = 0.95
DEFAULT_TEMPERATURE = 5.0
DEFAULT_OMEGA = 1.0
RHO_MIN = 0.8
RHO_MAX = 1.2


def hindsight_ratios(
    logprobs: Sequence[float],
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    rho_min: float = RHO_MIN,
    rho_max: float = RHO_MAX,
) -> list[float]:
    """ρ_t = clip(π_hind(a_t) / mean_t' π_hind(a_t'), rho_min, rho_max) with π_hind = exp(ℓ / τ)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not rho_min <= rho_max:
        raise ValueError(f"rho_min ({rho_min}) must not exceed rho_max ({rho_max})")
    scaled = [lp / temperature for lp in logprobs]
    if not scaled:
        return []
    if not all(math.isfinite(s) for s in scaled):
        raise ValueError("hindsight log-probs must be finite")
    top = max(scaled)
    weights = [math.exp(s - top) for s in scaled]
    mean_weight = sum(weights) / len(weights)
    return [min(max(w / mean_weight, rho_min), rho_max) for w in weights]


def micro_advantages(
    group: Sequence[EpisodeCredit],
    *,
    gamma: float = DEFAULT_GAMMA,
    temperature: float = DEFAULT_TEMPERATURE,
    rho_min: float = RHO_MIN,
    rho_max: float = RHO_MAX,
    eps: float = DEFAULT_EPS,
) -> Advantages:
    """A_micro: the hindsight-weighted discounted outcome Q_{i,t}, normalised over all turns of the group."""
    check_group(group)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    q_values: list[float] = []
    for index, episode in enumerate(group):
        logprobs = per_turn(episode, "hindsight_logprobs", index)
        rho = hindsight_ratios(logprobs, temperature=temperature, rho_min=rho_min, rho_max=rho_max)
        discounted = discounted_outcome(episode.reward, episode.num_turns, gamma)
        q_values.extend(r * d for r, d in zip(rho, discounted, strict=True))
    return split_by_episode(normalize(q_values, eps=eps), group)


def _add_micro(macro: Advantages, micro: Advantages, group: Sequence[EpisodeCredit], omega: float) -> Advantages:
    """macro + ω · micro, with negative micro terms of successful episodes set to 0 first."""
    out: Advantages = []
    for episode, macro_row, micro_row in zip(group, macro, micro, strict=True):
        if episode.success:
            micro_row = [max(m, 0.0) for m in micro_row]
        out.append([a + omega * m for a, m in zip(macro_row, micro_row, strict=True)])
    return out


def hcapo(
    group: Sequence[EpisodeCredit],
    *,
    gamma: float = DEFAULT_GAMMA,
    temperature: float = DEFAULT_TEMPERATURE,
    omega: float = DEFAULT_OMEGA,
    rho_min: float = RHO_MIN,
    rho_max: float = RHO_MAX,
    normalize_std: bool = True,
    eps: float = DEFAULT_EPS,
) -> Advantages:
    """HCAPO advantages: A = A_GRPO + ω · A_micro (negative micro terms clipped to 0 in successful episodes)."""
    micro = micro_advantages(group, gamma=gamma, temperature=temperature, rho_min=rho_min, rho_max=rho_max, eps=eps)
    macro = grpo(group, normalize_std=normalize_std, eps=eps)
    return _add_micro(macro, micro, group, omega)


def eapo_hcapo(
    group: Sequence[EpisodeCredit],
    *,
    gamma: float = DEFAULT_GAMMA,
    eapo_gamma: float = EAPO_GAMMA,
    temperature: float = DEFAULT_TEMPERATURE,
    omega: float = DEFAULT_OMEGA,
    rho_min: float = RHO_MIN,
    rho_max: float = RHO_MAX,
    eps: float = DEFAULT_EPS,
) -> Advantages:
    """HCAPO with EAPO's macro term: A = A_EAPO + ω · A_micro (``gamma`` is the micro γ, ``eapo_gamma`` EAPO's)."""
    micro = micro_advantages(group, gamma=gamma, temperature=temperature, rho_min=rho_min, rho_max=rho_max, eps=eps)
    macro = eapo(group, gamma=eapo_gamma, eps=eps)
    return _add_micro(macro, micro, group, omega)
