"""Reward schemes for kernel submissions; each returns named components that sum to the turn's reward.

``kevin`` — Kevin-32B (Baronio et al., "Kevin: Multi-Turn RL for Generating CUDA Kernels", 2025):
each turn scores s_t = 0.3·correct + speedup·correct, and the credit of turn t is the discounted
sum of its own and later scores, G_t = Σ_{k ≥ t} γ^(k−t) · s_k with γ = 0.4, so an attempt that
leads to a good kernel later is credited for it.

``milestones`` — CUDA Agent's milestone reward: −1 if the kernel fails to build or is
incorrect, 1 if correct, 2 if also more than 5 % faster than PyTorch eager, 3 if more than 5 %
faster than both eager and ``torch.compile`` (only where ``torch.compile`` was timed). Each turn
counts on its own (γ = 0).

A speedup above 10× that was re-checked and flagged as suspicious counts as 10× at most.
Both treat a rejected (reward-hacking) kernel as incorrect: it scores 0 (``kevin``) or −1
(``milestones``), never more than an honest wrong answer. On the ``compile-only`` backend a
kernel cannot run, so only the build tier exists: ``kevin`` gives ``compile`` 0.1 for a kernel
that builds, ``milestones`` 0 (against −1 for a failed build).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from horizongym.envs.kernels.evaluator import EvalResult

FASTER = 1.05
"""'Faster' in the milestone scheme: more than 5 % faster."""


def discounted_returns(scores: list[float], gamma: float) -> list[float]:
    """G_t = Σ_{k ≥ t} γ^(k−t) · s_k for every turn t (computed backwards)."""
    returns, running = [0.0] * len(scores), 0.0
    for t in range(len(scores) - 1, -1, -1):
        running = scores[t] + gamma * running
        returns[t] = running
    return returns


@dataclass(frozen=True)
class RewardScheme:
    """Turns an :class:`EvalResult` into reward components; ``gamma`` discounts later turns' credit."""

    name: ClassVar[str] = ""
    gamma: float = 0.0

    def components(self, result: EvalResult) -> dict[str, float]:
        """The named reward components of one evaluated submission (each scheme defines them)."""
        raise NotImplementedError(f"{type(self).__name__} must define components()")

    def returns(self, scores: list[float]) -> list[float]:
        """Per-turn credit from per-turn rewards (see the module docstring)."""
        return discounted_returns(scores, self.gamma)


@dataclass(frozen=True)
class KevinReward(RewardScheme):
    name: ClassVar[str] = "kevin"
    gamma: float = 0.4
    correct_bonus: float = 0.3
    compile_bonus: float = 0.1

    def components(self, result: EvalResult) -> dict[str, float]:
        if result.status == "compiled":
            return {"compile": self.compile_bonus}
        speedup = result.rewarded_speedup
        if not result.correct or speedup is None:
            return {"correct": 0.0, "speedup": 0.0}
        return {"correct": self.correct_bonus, "speedup": speedup}


@dataclass(frozen=True)
class MilestoneReward(RewardScheme):
    name: ClassVar[str] = "milestones"
    gamma: float = 0.0

    def components(self, result: EvalResult) -> dict[str, float]:
        if result.status == "compiled":
            return {"milestone": 0.0}
        if not result.correct or result.timing is None:
            return {"milestone": -1.0}
        timing = result.timing
        level = 1.0
        if timing.speedup > FASTER:
            level = 2.0
            compiled_ms = timing.torch_compile_ms
            if compiled_ms is not None and compiled_ms / timing.candidate_ms > FASTER:
                level = 3.0
        return {"milestone": level}


SCHEMES: dict[str, type[RewardScheme]] = {"kevin": KevinReward, "milestones": MilestoneReward}


def make_scheme(name: str, gamma: float | None = None) -> RewardScheme:
    """The scheme called ``name`` (``kevin`` or ``milestones``), with its default γ unless given."""
    if name not in SCHEMES:
        raise ValueError(f"reward must be one of {sorted(SCHEMES)}, got {name!r}")
    cls = SCHEMES[name]
    return cls() if gamma is None else cls(gamma=gamma)
