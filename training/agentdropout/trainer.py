"""Train a team's communication graph with AgentDropout while its agents stay fixed.

``train_node_dropout`` learns which agents each round drops (:mod:`.node_dropout`),
``train_edge_dropout`` learns the edge logits and prunes the weakest edges (:mod:`.edge_dropout`),
``train_agentdropout`` runs node then edge dropout as the authors do (arXiv 2503.18891, sec. 3;
github wangzx1219/AgentDropout, ``experiments/run_gsm8k.py`` with ``--dec --diff``).

Every training query is one ``play(graph, query)`` call on a freshly realised graph; a batch's
queries are played concurrently and make one Adam step. Batch ``b`` of size ``B`` plays the
queries ``queries[(b·B + i) mod len(queries)]``, so the authors' default (2 × 20 node queries,
4 × 10 edge queries) plays the same 40 queries in each phase. The training cost (play calls and
their tokens) is logged apart from any evaluation.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from horizongym.agents.team.graph import GraphParameters, TeamGraph
from horizongym.training.agentdropout.config import AgentDropoutConfig
from horizongym.training.agentdropout.edge_dropout import prune, regulariser, surviving_edges
from horizongym.training.agentdropout.graph_logprob import graph_log_prob
from horizongym.training.agentdropout.node_dropout import (
    drop_agents,
    drop_count,
    faithful_drop_weights,
    faithful_pseudo_log_likelihood,
    lowest_k,
    node_scores,
    plackett_luce_log_prob,
    sample_drop,
)
from horizongym.training.agentdropout.play import Play, PlayResult

Phase = Literal["node", "edge"]


@dataclass(frozen=True)
class BatchRecord:
    """One optimizer step: what its queries scored and cost, the loss, the edges left after it."""

    phase: Phase
    batch: int
    mean_utility: float
    prompt_tokens: int
    completion_tokens: int
    loss: float
    surviving_edges: int


@dataclass
class TrainingCost:
    """What training spent: play calls and their tokens (evaluation is counted elsewhere)."""

    plays: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, results: Sequence[PlayResult]) -> None:
        self.plays += len(results)
        self.prompt_tokens += sum(r.prompt_tokens for r in results)
        self.completion_tokens += sum(r.completion_tokens for r in results)


@dataclass
class TrainingLog:
    """Per-batch records, the training cost, and node dropout's outcome (scores and drops per round)."""

    batches: list[BatchRecord] = field(default_factory=list)
    cost: TrainingCost = field(default_factory=TrainingCost)
    node_scores: list[list[float]] = field(default_factory=list)
    dropped: list[list[int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batches": [asdict(b) for b in self.batches],
            "cost": asdict(self.cost),
            "node_scores": self.node_scores,
            "dropped": self.dropped,
        }


@dataclass
class Trained:
    """The learned graph parameters and how they were learned."""

    params: GraphParameters
    log: TrainingLog


async def play_all(
    play: Play, graphs: Sequence[TeamGraph], queries: Sequence[int], max_concurrency: int, bar: Any = None
) -> list[PlayResult]:
    """Play ``graphs[i]`` on ``queries[i]``, at most ``max_concurrency`` at once, in order."""
    gate = asyncio.Semaphore(max_concurrency)

    async def one(graph: TeamGraph, query: int) -> PlayResult:
        async with gate:
            result = await play(graph, query)
        if not isinstance(result, PlayResult):
            raise TypeError(f"play must return a PlayResult, not {type(result).__name__}")
        if bar is not None:
            bar.update(1)
        return result

    return list(await asyncio.gather(*(one(g, q) for g, q in zip(graphs, queries, strict=True))))


def batch_queries(queries: Sequence[int], batch: int, size: int) -> list[int]:
    """The queries of batch ``batch`` (module docstring: consecutive, wrapping around)."""
    if not queries:
        raise ValueError("AgentDropout needs at least one training query; pass query indices to train on")
    return [queries[(batch * size + i) % len(queries)] for i in range(size)]


def advantages(utilities: Sequence[float], baseline: Literal["none", "mean"]) -> list[float]:
    """``u`` or ``u − mean(u)`` over the batch."""
    if baseline == "none":
        return list(utilities)
    mean = float(np.mean(utilities))
    return [u - mean for u in utilities]


def _record(phase: Phase, batch: int, results: Sequence[PlayResult], loss: float, edges: int) -> BatchRecord:
    return BatchRecord(
        phase=phase,
        batch=batch,
        mean_utility=float(np.mean([r.utility for r in results])),
        prompt_tokens=sum(r.prompt_tokens for r in results),
        completion_tokens=sum(r.completion_tokens for r in results),
        loss=loss,
        surviving_edges=edges,
    )


def _bar(desc: str, total: int, progress: bool) -> Any:
    return tqdm(total=total, desc=desc, unit="query", disable=not progress, dynamic_ncols=True)


async def train_node_dropout(
    params: GraphParameters,
    play: Play,
    queries: Sequence[int],
    config: AgentDropoutConfig | None = None,
    *,
    log: TrainingLog | None = None,
    progress: bool = False,
) -> Trained:
    """Node dropout (:mod:`.node_dropout`): a copy of ``params`` whose ``active`` drops the lowest-score agents."""
    config = config or AgentDropoutConfig()
    params, log = copy.deepcopy(params), log or TrainingLog()
    rng = np.random.default_rng([config.seed, 0])
    fixed = params.realise("fixed")
    realised = [fixed.live_spatial(r) for r in range(params.rounds)]
    masks = [params.spatial_mask[r] & np.outer(params.active[r], params.active[r]) for r in range(params.rounds)]
    drops = [drop_count(int(params.active[r].sum()), config.alpha) for r in range(params.rounds)]
    phi = torch.zeros((params.rounds, params.n_agents, params.n_agents), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([phi], lr=config.lr)
    bar = _bar("node dropout", config.node_batches * config.node_batch_size, progress)
    for b in range(config.node_batches):
        batch = batch_queries(queries, b, config.node_batch_size)
        dropped_per_query: list[list[list[int]]] = []
        graphs: list[TeamGraph] = []
        for _ in batch:
            dropped = []
            for r in range(params.rounds):
                if config.estimator == "faithful":
                    weights = faithful_drop_weights(phi[r], realised[r])
                else:
                    weights = -node_scores(phi[r], masks[r]).detach()
                dropped.append(sample_drop(weights, params.active[r], drops[r], rng))
            dropped_per_query.append(dropped)
            graphs.append(_without(fixed, dropped))
        results = await play_all(play, graphs, batch, config.max_concurrency, bar)
        log.cost.add(results)
        utilities = [r.utility for r in results]
        weights_u = advantages(utilities, "mean" if config.estimator == "principled" else config.baseline)
        terms = []
        for weight, dropped in zip(weights_u, dropped_per_query, strict=True):
            total = phi.new_zeros(())
            for r in range(params.rounds):
                if config.estimator == "faithful":
                    total = total + faithful_pseudo_log_likelihood(phi[r], realised[r], params.active[r], dropped[r])
                else:
                    total = total + plackett_luce_log_prob(-node_scores(phi[r], masks[r]), params.active[r], dropped[r])
            terms.append(-weight * total)
        loss = torch.stack(terms).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        log.batches.append(_record("node", b, results, float(loss.detach()), surviving_edges(params)))
        bar.set_postfix(utility=f"{log.batches[-1].mean_utility:.3f}", loss=f"{float(loss.detach()):.3f}")
    bar.close()
    scores = [node_scores(phi[r].detach(), masks[r]) for r in range(params.rounds)]
    log.node_scores = [[float(x) for x in s] for s in scores]
    log.dropped = [lowest_k(scores[r], params.active[r], drops[r]) for r in range(params.rounds)]
    drop_agents(params, log.dropped)
    return Trained(params, log)


def _without(graph: TeamGraph, dropped: list[list[int]]) -> TeamGraph:
    """``graph`` with ``dropped[r]`` inactive in round ``r`` (their edges then count for nothing)."""
    active = graph.active.copy()
    for r, agents in enumerate(dropped):
        active[r, agents] = False
    return TeamGraph(active=active, spatial=graph.spatial, temporal=graph.temporal)


async def train_edge_dropout(
    params: GraphParameters,
    play: Play,
    queries: Sequence[int],
    config: AgentDropoutConfig | None = None,
    *,
    log: TrainingLog | None = None,
    progress: bool = False,
) -> Trained:
    """Edge dropout (:mod:`.edge_dropout`): returns a copy of ``params`` with trained logits and pruned masks."""
    config = config or AgentDropoutConfig()
    params, log = copy.deepcopy(params), log or TrainingLog()
    params.temperature = config.temperature
    rng = np.random.default_rng([config.seed, 1])
    spatial = torch.tensor(params.spatial_logits, dtype=torch.float64, requires_grad=True)
    temporal = torch.tensor(params.temporal_logits, dtype=torch.float64, requires_grad=True)
    spatial_anchors = torch.tensor(params.spatial_mask, dtype=torch.float64)
    temporal_anchors = torch.tensor(params.temporal_mask, dtype=torch.float64)
    optimizer = torch.optim.Adam([spatial, temporal], lr=config.lr)
    bar = _bar("edge dropout", config.edge_batches * config.edge_batch_size, progress)
    for b in range(config.edge_batches):
        batch = batch_queries(queries, b, config.edge_batch_size)
        graphs = [params.realise("sampled", rng) for _ in batch]
        results = await play_all(play, graphs, batch, config.max_concurrency, bar)
        log.cost.add(results)
        weights = advantages([r.utility for r in results], config.baseline)
        log_probs = [graph_log_prob(g, spatial, temporal, config.temperature) for g in graphs]
        policy = torch.stack([-w * lp for w, lp in zip(weights, log_probs, strict=True)]).mean()
        loss = policy + regulariser(
            spatial,
            temporal,
            spatial_anchors,
            temporal_anchors,
            delta=config.delta,
            nuclear_coef=config.nuclear_coef,
            frobenius_coef=config.frobenius_coef,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        params.spatial_logits = spatial.detach().numpy().copy()
        params.temporal_logits = temporal.detach().numpy().copy()
        if (b + 1) % config.prune_every == 0:
            prune(params, config.beta)
        log.batches.append(_record("edge", b, results, float(loss.detach()), surviving_edges(params)))
        record = log.batches[-1]
        bar.set_postfix(utility=f"{record.mean_utility:.3f}", loss=f"{record.loss:.3f}", edges=record.surviving_edges)
    bar.close()
    return Trained(params, log)


async def train_agentdropout(
    params: GraphParameters,
    play: Play,
    queries: Sequence[int],
    config: AgentDropoutConfig | None = None,
    *,
    progress: bool = False,
) -> Trained:
    """Node dropout, then edge dropout on the graph it leaves; the settings and outcome go into ``metadata``."""
    config = config or AgentDropoutConfig()
    log = TrainingLog()
    trained = params
    if config.node_batches:
        trained = (await train_node_dropout(trained, play, queries, config, log=log, progress=progress)).params
    if config.edge_batches:
        trained = (await train_edge_dropout(trained, play, queries, config, log=log, progress=progress)).params
    trained = copy.deepcopy(trained) if trained is params else trained
    trained.metadata["agentdropout"] = {
        "config": config.model_dump(),
        "dropped": log.dropped,
        "node_scores": log.node_scores,
        "training_cost": asdict(log.cost),
    }
    return Trained(trained, log)
