"""A team's communication graph: who speaks in each round, and whose messages each speaker reads.

A team of ``N`` agents talks over ``T`` rounds. In round ``r``:

* a **spatial** edge ``i → j`` means agent ``j`` reads agent ``i``'s message of round ``r``, so
  ``i`` speaks first. A round's spatial edges form a DAG and its agents speak in topological order;
* a **temporal** edge ``i → j`` (``r ≥ 1``) means ``j`` reads ``i``'s message of round ``r − 1``
  (``i = j``: its own last message). ``temporal[r − 1]`` holds the edges into round ``r``.

An agent that is not ``active`` in a round is dropped: it does not speak, costs nothing, and
every edge touching it is ignored.

Sampling a graph from edge logits θ (AgentPrune, Zhang et al. 2024, arXiv 2410.02506, and
AgentDropout, Wang et al., ACL 2025, arXiv 2503.18891, the authors' ``graph.py``): every allowed
edge is kept with probability ``p_e = σ(θ_e / τ)``. Spatial edges are visited row by row
(``i`` then ``j``); an edge that would close a cycle with the edges kept so far is skipped and
recorded nowhere, so it adds nothing to ``log p(G)``. Temporal edges cannot form cycles and are
all sampled. The graph's log-probability is

    log p(G) = Σ_{visited e} [kept_e · log p_e + (1 − kept_e) · log(1 − p_e)],

summed over rounds; :attr:`TeamGraph.choices` lists the visited edges so the trainer can
recompute it with gradients. ``mode="deterministic"`` keeps an edge iff ``p_e > 0.5`` (the same
cycle rule), ``mode="fixed"`` keeps every allowed edge (the full graph).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Mode = Literal["sampled", "deterministic", "fixed"]
EdgeKind = Literal["spatial", "temporal"]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class EdgeChoice:
    """One sampled edge: in ``round``, ``kind`` edge ``source → target`` was ``kept`` or not."""

    round: int
    kind: EdgeKind
    source: int
    target: int
    kept: bool

    def to_list(self) -> list[Any]:
        return [self.round, self.kind, self.source, self.target, self.kept]

    @classmethod
    def from_list(cls, row: list[Any]) -> EdgeChoice:
        round_, kind, source, target, kept = row
        if kind not in ("spatial", "temporal"):
            raise ValueError(f"edge kind must be spatial or temporal, not {kind!r}")
        return cls(int(round_), kind, int(source), int(target), bool(kept))


@dataclass(frozen=True)
class TeamGraph:
    """One realised graph: active agents per round, kept spatial and temporal edges, the choices made."""

    active: BoolArray
    """``(T, N)``: ``active[r, i]`` when agent ``i`` speaks in round ``r``."""
    spatial: BoolArray
    """``(T, N, N)``: ``spatial[r, i, j]`` when ``j`` reads ``i``'s round-``r`` message (a DAG per round)."""
    temporal: BoolArray
    """``(T − 1, N, N)``: ``temporal[r − 1, i, j]`` when ``j`` in round ``r`` reads ``i``'s round ``r − 1`` message."""
    choices: tuple[EdgeChoice, ...] = ()
    """The sampled edges in the order visited (empty for a fixed or deterministic graph)."""

    def __post_init__(self) -> None:
        rounds, n = self.active.shape
        if self.spatial.shape != (rounds, n, n) or self.temporal.shape != (max(rounds - 1, 0), n, n):
            raise ValueError(
                f"graph shapes disagree: active {self.active.shape}, spatial {self.spatial.shape}, "
                f"temporal {self.temporal.shape} (want (T, N), (T, N, N), (T - 1, N, N))"
            )
        for r in range(rounds):
            if _has_cycle(self.live_spatial(r)):
                raise ValueError(f"round {r}'s spatial edges have a cycle; they must form a DAG")

    @property
    def rounds(self) -> int:
        return int(self.active.shape[0])

    @property
    def n_agents(self) -> int:
        return int(self.active.shape[1])

    def live_spatial(self, r: int) -> BoolArray:
        """Round ``r``'s spatial edges between agents that both speak in it."""
        on = self.active[r]
        return self.spatial[r] & on[:, None] & on[None, :]

    def speaking_order(self, r: int) -> list[int]:
        """Round ``r``'s active agents in topological order of its spatial edges (ties: lower index first)."""
        edges = self.live_spatial(r)
        indegree = edges.sum(axis=0)
        ready = [i for i in range(self.n_agents) if self.active[r, i] and indegree[i] == 0]
        order: list[int] = []
        while ready:
            i = ready.pop(0)
            order.append(i)
            for j in np.flatnonzero(edges[i]):
                indegree[j] -= 1
                if indegree[j] == 0:
                    ready.append(int(j))
            ready.sort()
        return order

    def spatial_sources(self, r: int, j: int) -> list[int]:
        """The agents whose round-``r`` messages agent ``j`` reads in round ``r``."""
        return [int(i) for i in np.flatnonzero(self.live_spatial(r)[:, j])]

    def temporal_sources(self, r: int, j: int) -> list[int]:
        """The agents whose round ``r − 1`` messages agent ``j`` reads in round ``r`` (none in round 0)."""
        if r == 0 or not self.active[r, j]:
            return []
        return [int(i) for i in np.flatnonzero(self.temporal[r - 1][:, j] & self.active[r - 1])]

    def edges(self) -> Iterator[tuple[int, EdgeKind, int, int]]:
        """Every live edge as ``(round, kind, source, target)``."""
        for r in range(self.rounds):
            for i, j in zip(*np.nonzero(self.live_spatial(r)), strict=True):
                yield r, "spatial", int(i), int(j)
            for j in range(self.n_agents):
                for i in self.temporal_sources(r, j):
                    yield r, "temporal", i, j

    def to_dict(self) -> dict[str, Any]:
        return {
            "active": self.active.astype(int).tolist(),
            "spatial": self.spatial.astype(int).tolist(),
            "temporal": self.temporal.astype(int).tolist(),
            "choices": [c.to_list() for c in self.choices],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TeamGraph:
        active = np.asarray(data["active"], dtype=bool)
        rounds, n = active.shape
        temporal = np.asarray(data["temporal"], dtype=bool).reshape(max(rounds - 1, 0), n, n)
        return cls(
            active=active,
            spatial=np.asarray(data["spatial"], dtype=bool).reshape(rounds, n, n),
            temporal=temporal,
            choices=tuple(EdgeChoice.from_list(row) for row in data.get("choices", ())),
        )


@dataclass
class GraphParameters:
    """What AgentDropout learns for a team: edge logits, the surviving edge masks, the kept agents.

    ``spatial_mask`` / ``temporal_mask`` are the edges still allowed (pruning clears them);
    ``active`` the agents node dropout keeps per round (static at test time). The logits start
    at 0 (``p_e = 0.5``). Saved next to the team as JSON (:meth:`save`, :meth:`load`).
    """

    spatial_logits: FloatArray
    temporal_logits: FloatArray
    spatial_mask: BoolArray
    temporal_mask: BoolArray
    active: BoolArray
    temperature: float = 1.0
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def full(cls, n_agents: int, rounds: int, *, self_edges: bool = True) -> GraphParameters:
        """All agents, every spatial edge between two different agents, every temporal edge, logits 0."""
        if n_agents < 1 or rounds < 1:
            raise ValueError(f"a team needs at least 1 agent and 1 round, not {n_agents} and {rounds}")
        spatial = np.ones((rounds, n_agents, n_agents), dtype=bool)
        spatial[:, np.arange(n_agents), np.arange(n_agents)] = False
        temporal = np.ones((rounds - 1, n_agents, n_agents), dtype=bool)
        if not self_edges:
            temporal[:, np.arange(n_agents), np.arange(n_agents)] = False
        return cls(
            spatial_logits=np.zeros(spatial.shape),
            temporal_logits=np.zeros(temporal.shape),
            spatial_mask=spatial,
            temporal_mask=temporal,
            active=np.ones((rounds, n_agents), dtype=bool),
        )

    @property
    def rounds(self) -> int:
        return int(self.active.shape[0])

    @property
    def n_agents(self) -> int:
        return int(self.active.shape[1])

    def spatial_probs(self) -> FloatArray:
        return _sigmoid(self.spatial_logits / self.temperature)

    def temporal_probs(self) -> FloatArray:
        return _sigmoid(self.temporal_logits / self.temperature)

    def realise(self, mode: Mode = "sampled", rng: np.random.Generator | None = None) -> TeamGraph:
        """One graph: sampled edge by edge (module docstring), kept iff ``p > 0.5``, or every allowed edge."""
        if mode == "sampled" and rng is None:
            raise ValueError("sampling a graph needs an rng (numpy.random.Generator)")
        rounds, n = self.rounds, self.n_agents
        spatial = np.zeros((rounds, n, n), dtype=bool)
        temporal = np.zeros((max(rounds - 1, 0), n, n), dtype=bool)
        choices: list[EdgeChoice] = []
        spatial_p, temporal_p = self.spatial_probs(), self.temporal_probs()

        def keep(p: float) -> bool:
            if mode == "fixed":
                return True
            if mode == "deterministic":
                return p > 0.5
            assert rng is not None
            return bool(rng.random() < p)

        for r in range(rounds):
            on = self.active[r]
            for i in range(n):
                for j in range(n):
                    if not (self.spatial_mask[r, i, j] and on[i] and on[j]):
                        continue
                    if i == j or _reaches(spatial[r], j, i):  # i → j would close a cycle: skipped
                        continue
                    kept = keep(float(spatial_p[r, i, j]))
                    spatial[r, i, j] = kept
                    if mode == "sampled":
                        choices.append(EdgeChoice(r, "spatial", i, j, kept))
            if r == 0:
                continue
            for i in range(n):
                for j in range(n):
                    if not (self.temporal_mask[r - 1, i, j] and self.active[r - 1, i] and on[j]):
                        continue
                    kept = keep(float(temporal_p[r - 1, i, j]))
                    temporal[r - 1, i, j] = kept
                    if mode == "sampled":
                        choices.append(EdgeChoice(r, "temporal", i, j, kept))
        return TeamGraph(active=self.active.copy(), spatial=spatial, temporal=temporal, choices=tuple(choices))

    def log_prob(self, graph: TeamGraph) -> float:
        """``log p(G)`` of a sampled graph under these logits (module docstring), without gradients."""
        total = 0.0
        for c in graph.choices:
            logits = self.spatial_logits[c.round] if c.kind == "spatial" else self.temporal_logits[c.round - 1]
            x = float(logits[c.source, c.target]) / self.temperature
            total -= float(np.logaddexp(0.0, -x if c.kept else x))  # log σ(x) or log(1 − σ(x)), stable
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "spatial_logits": self.spatial_logits.tolist(),
            "temporal_logits": self.temporal_logits.tolist(),
            "spatial_mask": self.spatial_mask.astype(int).tolist(),
            "temporal_mask": self.temporal_mask.astype(int).tolist(),
            "active": self.active.astype(int).tolist(),
            "temperature": self.temperature,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphParameters:
        active = np.asarray(data["active"], dtype=bool)
        rounds, n = active.shape
        t_shape = (max(rounds - 1, 0), n, n)
        params = cls(
            spatial_logits=np.asarray(data["spatial_logits"], dtype=float).reshape(rounds, n, n),
            temporal_logits=np.asarray(data["temporal_logits"], dtype=float).reshape(t_shape),
            spatial_mask=np.asarray(data["spatial_mask"], dtype=bool).reshape(rounds, n, n),
            temporal_mask=np.asarray(data["temporal_mask"], dtype=bool).reshape(t_shape),
            active=active,
            temperature=float(data.get("temperature", 1.0)),
            metadata=dict(data.get("metadata", {})),
        )
        if params.temperature <= 0:
            raise ValueError(f"temperature must be > 0, not {params.temperature}")
        return params

    def save(self, path: Path) -> None:
        """Write the parameters as JSON (atomically: a temp file renamed over ``path``)."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict()))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> GraphParameters:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"cannot read the team graph {path}: {exc}") from None


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _reaches(edges: BoolArray, start: int, goal: int) -> bool:
    """Whether ``goal`` can be reached from ``start`` along ``edges`` (``start == goal`` counts)."""
    seen, stack = {start}, [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for nxt in np.flatnonzero(edges[node]):
            if int(nxt) not in seen:
                seen.add(int(nxt))
                stack.append(int(nxt))
    return False


def _has_cycle(edges: BoolArray) -> bool:
    return any(_reaches(edges, int(j), int(i)) for i, j in zip(*np.nonzero(edges), strict=True))
