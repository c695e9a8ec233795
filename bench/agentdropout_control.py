"""The matched-budget random control of the AgentDropout bench: random dropout with a learned graph's counts.

For each test query the learned method played a graph ``G``. The control plays a graph ``R`` with
the same counts, everything else uniform at random (drawn from the ``rng`` given):

* in round ``r`` it drops as many agents as ``G`` left inactive there, chosen uniformly among all
  ``N``;
* it keeps as many spatial edges as ``G`` has live in round ``r``, chosen uniformly among the
  pairs ``i → j`` (``i < j``) of the agents it kept (the full graph's orientation, so a DAG);
* into round ``r ≥ 1`` it keeps as many temporal edges as ``G`` has, chosen uniformly among the
  pairs ``i → j`` with ``i`` kept in round ``r − 1`` and ``j`` in round ``r`` (self-edges included).

When the kept agents allow fewer pairs than ``G``'s count, the control keeps them all. The counts
match; the tokens match only on average to the extent that AgentDropout's choices are not
systematically cheaper or dearer than random ones, so the bench reports the measured ratio of the
two methods' prompt tokens next to the accuracy gain.
"""

from __future__ import annotations

import numpy as np

from horizongym.agents.team.graph import TeamGraph


def random_budget_graph(reference: TeamGraph, rng: np.random.Generator) -> TeamGraph:
    """A uniformly random graph with ``reference``'s agent and edge counts per round (module docstring)."""
    rounds, n = reference.rounds, reference.n_agents
    active = np.ones((rounds, n), dtype=bool)
    for r in range(rounds):
        dropped = n - int(reference.active[r].sum())
        active[r, rng.choice(n, size=dropped, replace=False)] = False
    spatial = np.zeros((rounds, n, n), dtype=bool)
    temporal = np.zeros((max(rounds - 1, 0), n, n), dtype=bool)
    for r in range(rounds):
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if active[r, i] and active[r, j]]
        _keep(spatial[r], pairs, int(reference.live_spatial(r).sum()), rng)
        if r > 0:
            pairs = [(i, j) for i in range(n) for j in range(n) if active[r - 1, i] and active[r, j]]
            wanted = sum(len(reference.temporal_sources(r, j)) for j in range(n))
            _keep(temporal[r - 1], pairs, wanted, rng)
    return TeamGraph(active=active, spatial=spatial, temporal=temporal)


def _keep(edges: np.ndarray, pairs: list[tuple[int, int]], count: int, rng: np.random.Generator) -> None:
    """Set ``count`` of ``pairs`` (all of them when fewer) in ``edges``, uniformly without replacement."""
    for k in rng.choice(len(pairs), size=min(count, len(pairs)), replace=False):
        edges[pairs[int(k)]] = True


def edge_counts(graph: TeamGraph) -> list[tuple[int, int, int]]:
    """Per round: (inactive agents, live spatial edges, live temporal edges into it)."""
    return [
        (
            graph.n_agents - int(graph.active[r].sum()),
            int(graph.live_spatial(r).sum()),
            sum(len(graph.temporal_sources(r, j)) for j in range(graph.n_agents)),
        )
        for r in range(graph.rounds)
    ]
