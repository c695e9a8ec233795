"""Binomial intervals and paired tests, checked against exact enumeration and published values."""

from __future__ import annotations

import itertools
import math

import pytest

from horizongym.training.paired_stats import mcnemar_exact, sign_flip_test, wilson_interval


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), Table I: 81/263 -> (0.2553, 0.3662); 15/148 -> (0.0624, 0.1605); 0/10 -> (0, 0.2775).
    for (k, n), (low, high) in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 10): (0.0, 0.2775),
    }.items():
        got = wilson_interval(k, n)
        assert got == pytest.approx((low, high), abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == 1.0
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes must be in"):
        wilson_interval(11, 10)


def _exact_mcnemar(b: int, c: int) -> float:
    """Two-sided exact p by enumerating Binomial(b + c, 1/2) outcomes as likely or less likely than c."""
    n = b + c
    probability = [math.comb(n, k) / 2**n for k in range(n + 1)]
    return min(1.0, sum(p for p in probability if p <= probability[c] + 1e-15))


def test_mcnemar_counts_discordant_questions_and_matches_enumeration() -> None:
    first = [True] * 3 + [False] * 9 + [True] * 5 + [False] * 3
    second = [False] * 3 + [True] * 9 + [True] * 5 + [False] * 3
    test = mcnemar_exact(first, second)
    assert (test.worse, test.better, test.n) == (3, 9, 20)
    assert test.delta == pytest.approx(6 / 20)
    assert test.p_value == pytest.approx(_exact_mcnemar(3, 9))  # symmetric binomial: both tails agree
    assert test.p_value == pytest.approx(0.14599609375)
    assert mcnemar_exact([True, False], [True, False]).p_value == 1.0
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar_exact([True], [True, False])


def test_sign_flip_p_value_approaches_the_exact_randomization_distribution() -> None:
    d = [1.0, 1.0, 1.0, 0.5, 1.0, -1.0 / 3, 1.0, 0.0]
    observed = abs(sum(d)) / len(d)
    flips = list(itertools.product((-1, 1), repeat=len(d)))
    exact = sum(abs(sum(s * x for s, x in zip(signs, d, strict=True))) / len(d) >= observed - 1e-12 for signs in flips)
    test = sign_flip_test(d, rounds=40_000, seed=1)
    assert test.p_value == pytest.approx(exact / len(flips), abs=0.006)
    assert (test.better, test.worse, test.n) == (6, 1, 8)
    assert sign_flip_test([0.0] * 5).p_value == 1.0  # no difference at all
    assert sign_flip_test(d, seed=3).p_value != sign_flip_test(d, seed=4).p_value  # Monte Carlo, seeded
