"""Node dropout: learn which agents to drop in each round (AgentDropout, Wang et al., ACL 2025).

Source: arXiv 2503.18891, sec. 3.2 ("Node Dropout"), and the authors' code
(github wangzx1219/AgentDropout: ``Graph.arun(skip=True)`` and ``Graph.update_masks_dec`` in
``AgentDropout/graph/graph.py``, the ``--dec`` loop of ``experiments/run_gsm8k.py``).

Node dropout trains a second set of per-round intra-round (spatial) logits φ_r on the *fixed*
graph (every allowed edge kept, the cycle rule applied: for a full mask, ``i → j`` for ``i < j``).
Temporal edges play no part (the authors' temporal terms are commented out).

**Node score** of agent ``i`` in round ``r``: its weighted (in + out) degree normalised by its
degree in the fixed mask ``M_r``,

    s_i = (Σ_j M_r[i, j] φ_r[i, j] + Σ_j M_r[j, i] φ_r[j, i]) / (Σ_j M_r[i, j] + Σ_j M_r[j, i]).

After training each round drops its ``k_r = max(1, round(α·N))`` lowest-score agents (ties: the
lower index, as the authors' strict ``<`` scan), static at test time; at least one agent stays.

**Faithful estimator** (the authors'): per round a drop ``d`` is sampled from
``softmax(w)`` *detached*, where ``w_i = Σ_{e ∈ E_r, e ∋ i} φ_e`` sums the logits of the fixed
graph's realised edges ``E_r`` touching ``i`` (not normalised, as ``log_list`` in ``arun``). The
pseudo-log-likelihood

    L_r = (N − 1) · Σ_{e ∈ E_r, e ∋ d} log(1 − σ(φ_e)) + Σ_{i ≠ d} Σ_{e ∈ E_r, e ∋ i} log σ(φ_e)

(no temperature; an edge between two agents counts once for each end) is the authors'
``log_probs_skip``, built from ``loss_t = Σ log(1 − σ)`` weighted ``4.0`` (= N − 1 for their five
agents) for the dropped node and ``loss_f = Σ log σ`` for the others; the loss is
``−u · Σ_r L_r``, averaged over the batch. Differences: the weight is N − 1 of the round's active
agents rather than a literal 4, and when k_r > 1 every dropped agent (sampled without replacement)
gets the (N − 1) weight. It is not the gradient of any expected utility: it raises the logits around
kept agents and lowers those around the dropped one in proportion to u.

**Principled estimator**: REINFORCE over which agents to drop. The drop is sampled from
π = softmax(−s) over the round's active agents (a low score means dropped, so the test-time rule,
drop the lowest scores, is the trained policy's most likely drop); k_r draws without replacement
form a Plackett–Luce order. The loss is

    −(u − b) · Σ_r log π(D_r),    log π(D_r) = Σ_m [−s_{d_m} − log Σ_{i ∉ {d_1..d_{m−1}}} exp(−s_i)],

so gradients reach φ through the normalised scores the final drop uses; ``b`` is the batch's
mean utility (its leave-one-out form differs only by the factor B/(B − 1)).

Note on the faithful sign: the authors sample the drop from softmax(+w) yet finally drop the
*lowest* score. With u ≥ 0 their loss lowers the logits around every sampled drop that scored,
which makes that agent both the final drop and, meanwhile, less likely to be sampled again.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from horizongym.agents.team.graph import BoolArray, GraphParameters


def drop_count(n_agents: int, alpha: float) -> int:
    """``k = max(1, round(α·N))`` agents dropped from a round of ``N`` active agents, keeping at least one."""
    if not 0 < alpha < 1:
        raise ValueError(f"the node dropout rate α must be in (0, 1), not {alpha}")
    if n_agents <= 1:
        return 0
    return min(max(1, round(alpha * n_agents)), n_agents - 1)


def weighted_degree(logits: torch.Tensor, edges: BoolArray) -> torch.Tensor:
    """``Σ_j edges[i, j] θ[i, j] + Σ_j edges[j, i] θ[j, i]`` for every agent ``i`` (an (N,) tensor)."""
    on = torch.as_tensor(edges, dtype=logits.dtype)
    weighted = logits * on
    return weighted.sum(dim=1) + weighted.sum(dim=0)


def node_scores(logits: torch.Tensor, mask: BoolArray) -> torch.Tensor:
    """The node score ``s_i`` (module docstring): weighted degree over the mask divided by the mask degree."""
    degree = mask.sum(axis=1) + mask.sum(axis=0)
    return weighted_degree(logits, mask) / torch.as_tensor(np.maximum(degree, 1), dtype=logits.dtype)


def faithful_drop_weights(logits: torch.Tensor, edges: BoolArray) -> torch.Tensor:
    """The authors' sampling weights ``w_i``: the summed logits of realised edges touching ``i`` (detached)."""
    return weighted_degree(logits.detach(), edges)


def faithful_pseudo_log_likelihood(
    logits: torch.Tensor, edges: BoolArray, active: BoolArray, dropped: list[int]
) -> torch.Tensor:
    """The authors' ``L_r`` (module docstring): ``(N−1)·Σ log(1−σ)`` around dropped agents, ``Σ log σ`` around kept."""
    on = torch.as_tensor(edges, dtype=logits.dtype)
    log_keep = F.logsigmoid(logits) * on
    log_drop = F.logsigmoid(-logits) * on
    per_agent_keep = log_keep.sum(dim=1) + log_keep.sum(dim=0)
    per_agent_drop = log_drop.sum(dim=1) + log_drop.sum(dim=0)
    weight = float(active.sum()) - 1.0
    total = logits.new_zeros(())
    for i in np.flatnonzero(active):
        total = total + (weight * per_agent_drop[i] if int(i) in dropped else per_agent_keep[i])
    return total


def plackett_luce_log_prob(scores: torch.Tensor, active: BoolArray, dropped: list[int]) -> torch.Tensor:
    """``log π(D)`` of drawing ``dropped`` in order, without replacement, from ``softmax(scores)`` over ``active``."""
    available = np.asarray(active, dtype=bool).copy()
    total = scores.new_zeros(())
    for d in dropped:
        if not available[d]:
            raise ValueError(f"agent {d} cannot be dropped: it is not active or already dropped")
        total = total + scores[d] - torch.logsumexp(scores[torch.from_numpy(np.flatnonzero(available))], dim=0)
        available[d] = False
    return total


def sample_drop(weights: torch.Tensor, active: BoolArray, k: int, rng: np.random.Generator) -> list[int]:
    """Draw ``k`` of the ``active`` agents without replacement from ``softmax(weights)`` over them, in draw order."""
    candidates = np.flatnonzero(active)
    w = weights.detach().double().numpy()[candidates]
    probs = np.exp(w - w.max())
    probs /= probs.sum()
    chosen = rng.choice(len(candidates), size=k, replace=False, p=probs)
    return [int(candidates[c]) for c in chosen]


def lowest_k(scores: torch.Tensor, active: BoolArray, k: int) -> list[int]:
    """The ``k`` active agents with the lowest scores (ties: the lower index), in ascending index order."""
    candidates = np.flatnonzero(active)
    values = scores.detach().double().numpy()[candidates]
    order = np.argsort(values, kind="stable")[:k]
    return sorted(int(candidates[o]) for o in order)


def drop_agents(params: GraphParameters, dropped: list[list[int]]) -> None:
    """Make the drop static: ``dropped[r]`` leave round ``r`` (``active`` false), their edges there masked out."""
    if len(dropped) != params.rounds:
        raise ValueError(f"a drop list per round is needed: {len(dropped)} lists for {params.rounds} rounds")
    for r, agents in enumerate(dropped):
        for d in agents:
            params.active[r, d] = False
            params.spatial_mask[r, d, :] = False
            params.spatial_mask[r, :, d] = False
            if r > 0:
                params.temporal_mask[r - 1, :, d] = False
            if r < params.rounds - 1:
                params.temporal_mask[r, d, :] = False
