"""Statistics for comparing success rates measured on the same questions: binomial intervals and
paired tests.

* :func:`wilson_interval`: the 95% Wilson score interval of a success rate,
  ``(p̂ + z²/2n ± z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`` (Wilson 1927; Brown, Cai & DasGupta
  2001 recommend it over the normal interval for small ``n`` or rates near 0 or 1).
* :func:`mcnemar_exact`: the exact McNemar test of two policies on the same questions. Only the
  discordant questions carry information: ``b`` (first right, second wrong) and ``c`` (first
  wrong, second right); under no difference ``c ~ Binomial(b + c, 1/2)``, and the two-sided
  p-value is ``min(1, 2·P(X ≤ min(b, c)))`` (McNemar 1947, the exact binomial form).
* :func:`sign_flip_test`: the paired randomization test of a mean difference: under no
  difference each question's difference ``d_q`` is as likely to be ``−d_q``, so the p-value is
  the share of random sign flips whose ``|mean|`` is at least the observed one, counted as
  ``(1 + k) / (1 + rounds)`` (Fisher 1935; Good, *Permutation Tests*, 2005). With ``d_q`` the
  difference of a question's success averaged over seeds, it pools seeds without treating the
  same question seen by several seeds as independent evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054
"""The standard normal's 97.5% quantile."""


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` out of ``n`` (95% with the default ``z``)."""
    if n <= 0:
        raise ValueError(f"an interval needs at least one trial, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # holds p̂ despite rounding


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of a second policy against a first on the same questions."""

    delta: float
    """Mean of (second − first) over the questions."""
    p_value: float
    """Two-sided p-value of no difference."""
    test: str
    """Which test gave ``p_value``."""
    n: int
    """Questions compared."""
    better: int = 0
    """Questions only the second got right (McNemar's ``c``)."""
    worse: int = 0
    """Questions only the first got right (McNemar's ``b``)."""


def _binomial_cdf_half(k: int, n: int) -> float:
    """P(X ≤ k) for X ~ Binomial(n, 1/2), summed exactly."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def mcnemar_exact(first: Sequence[bool], second: Sequence[bool]) -> PairedTest:
    """The exact McNemar test of ``second`` against ``first`` (outcomes per question, same order)."""
    if len(first) != len(second):
        raise ValueError(f"paired outcomes differ in length: {len(first)} and {len(second)}")
    if not first:
        raise ValueError("a paired test needs at least one question")
    worse = sum(a and not b for a, b in zip(first, second, strict=True))
    better = sum(b and not a for a, b in zip(first, second, strict=True))
    discordant = worse + better
    p = 1.0 if discordant == 0 else min(1.0, 2 * _binomial_cdf_half(min(worse, better), discordant))
    delta = (better - worse) / len(first)
    return PairedTest(delta=delta, p_value=p, test="mcnemar_exact", n=len(first), better=better, worse=worse)


def sign_flip_test(differences: Sequence[float], rounds: int = 20_000, seed: int = 0) -> PairedTest:
    """The paired sign-flip randomization test of ``mean(differences) = 0`` (two-sided)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        raise ValueError("a paired test needs at least one question")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    observed = abs(float(d.mean()))
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(rounds, d.size))
    flipped = np.abs((signs * d).mean(axis=1))
    at_least = int(np.count_nonzero(flipped >= observed - 1e-12))
    return PairedTest(
        delta=float(d.mean()),
        p_value=(1 + at_least) / (1 + rounds),
        test="sign_flip",
        n=int(d.size),
        better=int(np.count_nonzero(d > 0)),
        worse=int(np.count_nonzero(d < 0)),
    )
