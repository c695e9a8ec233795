"""Arithmetic helpers for presenting numbers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def ordinal(number: int) -> str:
    """``1`` -> ``"1st"``, ``2`` -> ``"2nd"``, ``11`` -> ``"11th"``, ``23`` -> ``"23rd"``."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    if 10 <= number % 100 <= 20:
        suffix = "th"
    return f"{number}{suffix}"


def human_size(size: float, precision: int = 1) -> str:
    """Bytes in binary units: ``1536`` -> ``"1.5 KiB"``; whole bytes have no decimals."""
    if size < 0:
        return "-" + human_size(-size, precision)
    unit = 0
    while size >= 1024 and unit < len(_UNITS) - 1:
        size /= 1024
        unit += 1
    if unit == 0:
        return f"{int(size)} B"
    return f"{size:.{precision}f} {_UNITS[unit]}"


def clamp(value: float, low: float, high: float) -> float:
    """``value`` limited to ``[low, high]``."""
    if low > high:
        raise ValueError("low must not exceed high")
    return max(low, min(value, high))


def median(values: Iterable[float]) -> float:
    """The middle value (the mean of the two middle values for an even count)."""
    items = sorted(values)
    if not items:
        raise ValueError("median of no values")
    middle = len(items) // 2
    if len(items) % 2 == 1:
        return items[middle]
    return (items[middle - 1] + items[middle]) / 2


def percent_change(old: float, new: float, digits: int = 1) -> float:
    """The change from ``old`` to ``new`` in percent of ``old``, rounded to ``digits``."""
    if old == 0:
        raise ZeroDivisionError("percent change from zero")
    return round((new - old) / abs(old) * 100, digits)


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``size`` items (the last one may be shorter)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]
