"""Calling a flaky function again after exponentially growing pauses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def backoff_delays(attempts: int, base: float = 0.1, factor: float = 2.0, cap: float = 5.0) -> list[float]:
    """The pauses between ``attempts`` tries: ``base * factor**i``, at most ``cap`` each."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    return [min(cap, base * factor**index) for index in range(attempts - 1)]


def retry(
    function: Callable[[], T],
    attempts: int = 3,
    base: float = 0.1,
    errors: tuple[type[BaseException], ...] = (OSError,),
) -> T:
    """``function()``, tried up to ``attempts`` times while it raises one of ``errors``."""
    delays = backoff_delays(attempts, base)
    for delay in delays:
        try:
            return function()
        except errors:
            time.sleep(delay)
    return function()
