import math
from typing import Any

import pytest
from covkit.stats import RunningStats, median, percentile


def test_running_mean_and_variance() -> None:
    stats = RunningStats()
    stats.extend([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert stats.count == 8
    assert stats.mean == 5.0
    assert math.isclose(stats.variance, 32 / 7)
    assert math.isclose(stats.stdev, math.sqrt(32 / 7))


def test_running_min_max() -> None:
    stats = RunningStats()
    stats.extend([3.0, -1.0, 8.0])
    assert (stats.minimum, stats.maximum) == (-1.0, 8.0)


def test_variance_of_one_value_is_zero() -> None:
    stats = RunningStats()
    stats.push(3.0)
    assert stats.variance == 0.0


def test_extend_pushes_every_value(mocker: Any) -> None:
    stats = RunningStats()
    push = mocker.spy(stats, "push")
    stats.extend([1.0, 2.0, 3.0])
    assert push.call_count == 3


def test_median_odd_and_even() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_of_nothing() -> None:
    with pytest.raises(ValueError):
        median([])


@pytest.mark.parametrize(("q", "expected"), [(0, 1.0), (50, 3.0), (100, 5.0), (25, 2.0), (90, 4.6)])
def test_percentile(q: float, expected: float) -> None:
    assert math.isclose(percentile([5.0, 1.0, 4.0, 2.0, 3.0], q), expected)


def test_percentile_bounds() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([], 50)
