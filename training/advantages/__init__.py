"""Per-turn advantage estimators for multi-turn agent RL, one module per method.

``estimate(name, group, **options)`` dispatches to ``ESTIMATORS[name]``; each estimator maps a group
of ``EpisodeCredit`` (episodes of the same task) to advantages indexed [episode][turn].
``check_options(name, options)`` tries the options on a small group, so that a wrong one fails
before a run starts rather than at its first update.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

from horizongym.training.advantages.base import Advantages, EpisodeCredit
from horizongym.training.advantages.eapo import downsample_to_multiple, eapo
from horizongym.training.advantages.grpo import grpo
from horizongym.training.advantages.hca import HindsightHead, hca
from horizongym.training.advantages.hcapo import eapo_hcapo, hcapo
from horizongym.training.advantages.tree import tree

ESTIMATORS: dict[str, Callable[..., Advantages]] = {
    "grpo": grpo,
    "eapo": eapo,
    "hcapo": hcapo,
    "eapo+hcapo": eapo_hcapo,
    "hca": hca,
    "tree": tree,
}


def estimate(name: str, group: Sequence[EpisodeCredit], **options: object) -> Advantages:
    """Run the estimator registered as ``name`` on ``group`` with keyword ``options``."""
    try:
        estimator = ESTIMATORS[name]
    except KeyError:
        known = ", ".join(sorted(ESTIMATORS))
        raise ValueError(f"unknown advantage estimator {name!r}; known estimators: {known}") from None
    return estimator(group, **options)


def check_options(name: str, options: dict[str, object]) -> None:
    """Raise ValueError (saying what is wrong) unless estimator ``name`` accepts ``options``.

    The estimator runs once on a group of two two-turn episodes that carry every per-turn value
    an estimator may need, so an unknown option, a value of the wrong type, a value out of range
    and one that makes the advantages NaN or infinite are all caught.
    """
    turns = 2
    probe = [
        EpisodeCredit(
            reward=reward,
            num_turns=turns,
            success=reward > 0,
            hindsight_logprobs=[-1.0] * turns,
            policy_logprobs=[-1.5] * turns,
            hindsight_head_logprobs=[-1.2] * turns,
        )
        for reward in (0.0, 1.0)
    ]
    try:
        values = [float(a) for row in estimate(name, probe, **options) for a in row]
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ValueError(f"{json.dumps(options, default=str)} do not suit the {name} estimator: {exc}") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{json.dumps(options, default=str)} make the {name} estimator give non-finite advantages")


__all__ = [
    "ESTIMATORS",
    "Advantages",
    "EpisodeCredit",
    "HindsightHead",
    "check_options",
    "downsample_to_multiple",
    "eapo",
    "eapo_hcapo",
    "estimate",
    "grpo",
    "hca",
    "hcapo",
    "tree",
]
