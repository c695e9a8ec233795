from __future__ import annotations

import pytest
from textkit.intervals import contains, intersect, merge, total_length


def test_merge_overlapping() -> None:
    assert merge([(5, 8), (1, 3), (2, 4)]) == [(1, 4), (5, 8)]


def test_merge_touching() -> None:
    assert merge([(1, 2), (2, 3)]) == [(1, 3)]
    assert merge([(1, 2), (2, 3)], touching=False) == [(1, 2), (2, 3)]


def test_merge_nested() -> None:
    assert merge([(1, 10), (2, 3), (4, 5)]) == [(1, 10)]


def test_merge_empty_and_points() -> None:
    assert merge([]) == []
    assert merge([(3, 3)]) == [(3, 3)]


def test_merge_rejects_reversed() -> None:
    with pytest.raises(ValueError):
        merge([(3, 1)])


def test_intersect() -> None:
    assert intersect([(0, 5), (10, 15)], [(3, 12)]) == [(3, 5), (10, 12)]


def test_intersect_disjoint_and_touching() -> None:
    assert intersect([(0, 1)], [(2, 3)]) == []
    assert intersect([(0, 2)], [(2, 3)]) == []


def test_intersect_many() -> None:
    assert intersect([(0, 2), (3, 5), (6, 9)], [(1, 7), (8, 10)]) == [(1, 2), (3, 5), (6, 7), (8, 9)]


def test_total_length_counts_overlaps_once() -> None:
    assert total_length([(0, 2), (1, 3), (10, 11)]) == 4


def test_contains_half_open() -> None:
    assert contains([(0, 2), (5, 6)], 0)
    assert contains([(0, 2), (5, 6)], 5.5)
    assert not contains([(0, 2), (5, 6)], 2)
    assert not contains([], 1)
