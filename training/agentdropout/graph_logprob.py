"""``log p(G)`` of a sampled team graph as a torch expression of the edge logits, for gradients.

A graph realised by :meth:`GraphParameters.realise` records every edge it visited (cycle-closing
spatial edges are skipped and not recorded) in :attr:`TeamGraph.choices`. Under logits θ and
temperature τ (AgentPrune, arXiv 2410.02506, eq. 5; AgentDropout, arXiv 2503.18891, sec. 3.3)

    log p(G) = Σ_{visited e} [kept_e · log σ(θ_e/τ) + (1 − kept_e) · log(1 − σ(θ_e/τ))],

computed with ``logsigmoid`` (log(1 − σ(x)) = logsigmoid(−x)) so saturated logits stay finite. Its
gradient per visited edge is ∂/∂θ_e = (kept_e − σ(θ_e/τ)) / τ; an edge never visited gets none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from horizongym.agents.team.graph import TeamGraph


def graph_log_prob(
    graph: TeamGraph, spatial_logits: torch.Tensor, temporal_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """``log p(G)`` (module docstring), differentiable in ``spatial_logits`` (T, N, N) and ``temporal_logits``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, not {temperature}")
    rounds, n = graph.rounds, graph.n_agents
    if tuple(spatial_logits.shape) != (rounds, n, n) or tuple(temporal_logits.shape) != (max(rounds - 1, 0), n, n):
        raise ValueError(
            f"logit shapes {tuple(spatial_logits.shape)} and {tuple(temporal_logits.shape)} do not fit a graph "
            f"of {rounds} rounds and {n} agents (want ({rounds}, {n}, {n}) and ({max(rounds - 1, 0)}, {n}, {n}))"
        )
    terms = [spatial_logits.new_zeros(())]
    for c in graph.choices:
        logits = spatial_logits[c.round] if c.kind == "spatial" else temporal_logits[c.round - 1]
        x = logits[c.source, c.target] / temperature
        terms.append(F.logsigmoid(x) if c.kept else F.logsigmoid(-x))
    return torch.stack(terms).sum()
