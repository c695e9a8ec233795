"""Per-turn advantage estimators for multi-turn agent RL, one module per method.

``estimate(name, group, **options)`` dispatches to ``ESTIMATORS[name]``; each estimator maps a group
of ``EpisodeCredit`` (episodes of the same task) to advantages indexed [episode][turn].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from horizongym.training.advantages.base import Advantages, EpisodeCredit
from horizongym.training.advantages.eapo import downsample_to_multiple, eapo
from horizongym.training.advantages.grpo import grpo
from horizongym.training.advantages.hca import HindsightHead, hca
from horizongym.training.advantages.hcapo import eapo_hcapo, hcapo

ESTIMATORS: dict[str, Callable[..., Advantages]] = {
    "grpo": grpo,
    "eapo": eapo,
    "hcapo": hcapo,
    "eapo+hcapo": eapo_hcapo,
    "hca": hca,
}


def estimate(name: str, group: Sequence[EpisodeCredit], **options: object) -> Advantages:
    """Run the estimator registered as ``name`` on ``group`` with keyword ``options``."""
    try:
        estimator = ESTIMATORS[name]
    except KeyError:
        known = ", ".join(sorted(ESTIMATORS))
        raise ValueError(f"unknown advantage estimator {name!r}; known estimators: {known}") from None
    return estimator(group, **options)


__all__ = [
    "ESTIMATORS",
    "Advantages",
    "EpisodeCredit",
    "HindsightHead",
    "downsample_to_multiple",
    "eapo",
    "eapo_hcapo",
    "estimate",
    "grpo",
    "hca",
    "hcapo",
]
