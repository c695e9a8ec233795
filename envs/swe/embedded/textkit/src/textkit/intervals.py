"""Half-open integer or float intervals ``(start, end)`` with ``start <= end``."""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[float, float]


def _checked(intervals: Iterable[Interval]) -> list[Interval]:
    items = []
    for start, end in intervals:
        if end < start:
            raise ValueError(f"interval ends before it starts: {(start, end)}")
        items.append((start, end))
    return items


def merge(intervals: Iterable[Interval], touching: bool = True) -> list[Interval]:
    """Sorted, non-overlapping intervals covering the same points.

    With ``touching`` (the default) intervals that only meet, like ``(1, 2)`` and
    ``(2, 3)``, are merged too.
    """
    items = sorted(_checked(intervals))
    merged: list[Interval] = []
    for start, end in items:
        if merged:
            last_start, last_end = merged[-1]
            if start < last_end or (touching and start == last_end):
                merged[-1] = (last_start, max(last_end, end))
                continue
        merged.append((start, end))
    return merged


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """The points in both sets of intervals, as merged intervals."""
    left, right = merge(a, touching=False), merge(b, touching=False)
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            out.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def total_length(intervals: Iterable[Interval]) -> float:
    """The length covered, counting overlaps once."""
    return sum(end - start for start, end in merge(intervals))


def contains(intervals: Iterable[Interval], point: float) -> bool:
    """Whether ``point`` lies in one of the intervals (start included, end excluded)."""
    return any(start <= point < end for start, end in _checked(intervals))
