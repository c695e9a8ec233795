"""Gymnasium spaces for text that may hold any Unicode character."""

from __future__ import annotations

import string
from typing import Any

from gymnasium.spaces import Text

_SAMPLE_CHARSET = string.printable + "äéßçñøΩλ中文日本語😀<>/{}\"'"


class UnicodeText(Text):
    """A :class:`gymnasium.spaces.Text` that contains any ``str`` within its length bounds.

    ``Text`` only admits characters of its charset; model output is arbitrary Unicode, so
    membership here checks type and length only. Sampling still draws from a small mixed
    charset (ASCII, accents, CJK, emoji, markup characters), which is what random actions
    in ``check_env`` need.
    """

    def __init__(self, max_length: int, *, min_length: int = 0, seed: int | None = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=_SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"
