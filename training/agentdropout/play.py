"""How the AgentDropout trainer plays its team: one call per query on one realised graph.

The trainer never runs agents itself. It realises a :class:`TeamGraph` from the
:class:`GraphParameters` it is learning and hands it, with the index of a training query, to a
:data:`Play` callable, which runs the team on that graph (the team policy, or a synthetic stand-in
in tests and benchmarks) and reports the query's utility and the tokens it cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from horizongym.agents.team.graph import TeamGraph


@dataclass(frozen=True)
class PlayResult:
    """One query played by the team on one graph."""

    utility: float
    """The env's episode reward (or the task's score)."""
    prompt_tokens: int
    completion_tokens: int


Play = Callable[[TeamGraph, int], Awaitable[PlayResult]]
"""``play(graph, query_index)``: run the team on ``graph`` for training query ``query_index``."""
