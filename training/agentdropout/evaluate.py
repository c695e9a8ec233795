"""Evaluate a learned team graph: play held-out queries with it in each inference mode.

AgentDropout is reported in two inference modes (arXiv 2503.18891; the authors evaluate the
``sampled`` one): ``sampled`` draws a fresh graph per query from σ(θ/τ) under the surviving masks
and the static node drop, ``deterministic`` keeps an edge iff σ(θ/τ) > 0.5, one graph for every
query. ``fixed`` (every surviving edge) is available as the full-graph reference.

    accuracy = (1/Q) Σ_q u_q,   prompt_tokens = (1/Q) Σ_q prompt_q,   completion_tokens likewise,

the mean utility (the accuracy for 0/1 utilities) and the tokens per query over ``Q`` queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from horizongym.agents.team.graph import GraphParameters, Mode
from horizongym.training.agentdropout.play import Play
from horizongym.training.agentdropout.trainer import play_all


@dataclass(frozen=True)
class Evaluation:
    """One inference mode's score over the evaluation queries."""

    mode: Mode
    queries: int
    accuracy: float
    """Mean utility per query."""
    prompt_tokens: float
    """Prompt tokens per query."""
    completion_tokens: float
    """Completion tokens per query."""
    edges: float
    """Live edges per query's graph."""


async def evaluate(
    params: GraphParameters,
    play: Play,
    queries: Sequence[int],
    modes: Sequence[Mode] = ("sampled", "deterministic"),
    *,
    seed: int = 0,
    max_concurrency: int = 8,
) -> dict[str, Evaluation]:
    """Play every query once per mode (module docstring); the graphs of ``sampled`` come from ``seed``."""
    if not queries:
        raise ValueError("evaluation needs at least one query; pass query indices to evaluate on")
    rng = np.random.default_rng([seed, 2])
    report: dict[str, Evaluation] = {}
    for mode in modes:
        if mode not in ("sampled", "deterministic", "fixed"):
            raise ValueError(f"inference mode must be sampled, deterministic or fixed, not {mode!r}")
        graphs = [params.realise(mode, rng if mode == "sampled" else None) for _ in queries]
        results = await play_all(play, graphs, queries, max_concurrency)
        report[mode] = Evaluation(
            mode=mode,
            queries=len(queries),
            accuracy=float(np.mean([r.utility for r in results])),
            prompt_tokens=float(np.mean([r.prompt_tokens for r in results])),
            completion_tokens=float(np.mean([r.completion_tokens for r in results])),
            edges=float(np.mean([sum(1 for _ in g.edges()) for g in graphs])),
        )
    return report
