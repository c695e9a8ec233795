"""A rule a candidate broke: the record the static, library and runtime checks all report."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """A rule a candidate broke: a stable ``code`` and a sentence for the agent."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"
