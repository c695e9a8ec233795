"""Choosing an episode's task from a fixed list, and splitting such lists.

An env with a task list draws each episode's task with its own RNG (``task_order="random"``,
the Gymnasium way: the seed fixes the task), or takes task number ``seed``
(``"by_seed"``: seeds 0..N−1 visit every task once, an evaluation run). ``reset`` options
``task_id`` or ``task_index`` pick one explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
TASK_ORDERS = ("random", "by_seed")


def check_task_order(order: str) -> None:
    if order not in TASK_ORDERS:
        raise ValueError("task_order must be 'random' (drawn with the seed) or 'by_seed' (task number = seed)")


def seeded_options(order: str, seed: int | None, options: dict[str, Any] | None) -> dict[str, Any] | None:
    """The reset options: under ``by_seed``, a plain seeded reset asks for task number ``seed``."""
    if order == "by_seed" and seed is not None and not options:
        return {"task_index": seed}
    return options


def choose(items: Sequence[T], options: dict[str, Any], rng: np.random.Generator, id_of: Callable[[T], str]) -> T:
    """The item named by ``options`` (``task_id`` or ``task_index``), else one drawn with ``rng``."""
    if "task_id" in options:
        for item in items:
            if id_of(item) == options["task_id"]:
                return item
        raise ValueError(f"no task with id {options['task_id']!r}")
    if "task_index" in options:
        return items[int(options["task_index"]) % len(items)]
    return items[int(rng.integers(len(items)))]


def split(items: Sequence[T], name: str, split_of: Callable[[T], str]) -> list[T]:
    """The items of split ``train``, ``test`` or ``all``."""
    if name == "all":
        return list(items)
    if name not in ("train", "test"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {name!r}")
    return [item for item in items if split_of(item) == name]
