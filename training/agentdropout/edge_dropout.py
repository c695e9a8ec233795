"""Edge dropout: learn which messages to drop, then prune the weakest edges (AgentDropout).

Source: arXiv 2503.18891, sec. 3.3 ("Edge Dropout", eq. 7–9), and the authors' code
(github wangzx1219/AgentDropout: ``experiments/run_gsm8k.py`` for the loss, ``nuclear_norm`` and
``frobenius_norm`` in ``AgentDropout/utils/utils.py``, ``Graph.update_masks_diff`` for pruning).

The per-query loss of the per-round logits ``S_r`` (spatial, T of them) and ``T_r`` (temporal,
T − 1 of them), each the full N × N logit matrix as the authors take it (entries outside the mask
included), is

    ℓ = −u · log p(G) + c_* · (mean_r ‖S_r‖_* + mean_r ‖T_r‖_*)
        + c_F · (ReLU(mean_r ‖A_s − S_r‖_F − δ) + ReLU(mean_r ‖A_t − T_r‖_F − δ)),

averaged over the batch; ``A_s`` / ``A_t`` are the 0/1 edge masks the training started from (the
authors' fixed topology, one matrix for every round; here each round's mask after node dropout, so
the agent dropped in round r has zero rows and columns in A_r) and
the norms are on the logits, not the probabilities, as in the authors' code. ``‖X‖_* = Σ σ_i(X)``
(its gradient is ``U Vᵀ`` from the SVD ``X = U Σ Vᵀ`` when X has full rank); ``‖A − X‖_F`` has
gradient ``(X − A) / ‖A − X‖_F`` in X. A mean over an empty set of matrices (T = 1 has no temporal logits) is 0.
``u`` may be replaced by ``u − mean_batch(u)`` for non-binary utilities.

**Pruning** every k batches, per round and per kind: of the ``E`` edges still allowed, the
``max(1, round(β·E))`` with the lowest logits are masked out for good (masks only shrink).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from horizongym.agents.team.graph import BoolArray, FloatArray, GraphParameters


def nuclear_norm(matrix: torch.Tensor) -> torch.Tensor:
    """``‖X‖_*``: the sum of the singular values of ``matrix``."""
    return torch.linalg.svdvals(matrix).sum()


def frobenius_distance(anchor: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``‖A − X‖_F``."""
    return torch.linalg.matrix_norm(anchor - matrix, ord="fro")


def mean_nuclear(matrices: torch.Tensor) -> torch.Tensor:
    """``mean_r ‖X_r‖_*`` over a (R, N, N) stack (0 when R = 0)."""
    if matrices.shape[0] == 0:
        return matrices.new_zeros(())
    return torch.stack([nuclear_norm(m) for m in matrices]).mean()


def frobenius_hinge(anchors: torch.Tensor, matrices: torch.Tensor, delta: float) -> torch.Tensor:
    """``ReLU(mean_r ‖A_r − X_r‖_F − δ)`` over (R, N, N) stacks of anchors and matrices (0 when R = 0)."""
    if anchors.shape != matrices.shape:
        raise ValueError(f"anchor shape {tuple(anchors.shape)} differs from logit shape {tuple(matrices.shape)}")
    if matrices.shape[0] == 0:
        return matrices.new_zeros(())
    distances = [frobenius_distance(a, m) for a, m in zip(anchors, matrices, strict=True)]
    return F.relu(torch.stack(distances).mean() - delta)


def regulariser(
    spatial_logits: torch.Tensor,
    temporal_logits: torch.Tensor,
    spatial_anchors: torch.Tensor,
    temporal_anchors: torch.Tensor,
    *,
    delta: float,
    nuclear_coef: float = 1.0,
    frobenius_coef: float = 1.0,
) -> torch.Tensor:
    """The low-rank and closeness terms of ``ℓ`` (module docstring)."""
    low_rank = mean_nuclear(spatial_logits) + mean_nuclear(temporal_logits)
    close = frobenius_hinge(spatial_anchors, spatial_logits, delta) + frobenius_hinge(
        temporal_anchors, temporal_logits, delta
    )
    return nuclear_coef * low_rank + frobenius_coef * close


def prune_count(surviving: int, beta: float) -> int:
    """``max(1, round(β·E))`` edges pruned from ``E`` surviving ones (none when none survive)."""
    if not 0 < beta < 1:
        raise ValueError(f"the edge pruning rate β must be in (0, 1), not {beta}")
    if surviving == 0:
        return 0
    return min(max(1, round(beta * surviving)), surviving)


def prune_lowest(logits: FloatArray, mask: BoolArray, beta: float) -> BoolArray:
    """The mask with its ``prune_count`` lowest-logit surviving edges removed (ties: the earlier edge)."""
    surviving = np.flatnonzero(mask)
    k = prune_count(len(surviving), beta)
    order = np.argsort(logits.reshape(-1)[surviving], kind="stable")[:k]
    pruned = mask.copy().reshape(-1)
    pruned[surviving[order]] = False
    return pruned.reshape(mask.shape)


def prune(params: GraphParameters, beta: float) -> int:
    """Prune every round's spatial and temporal edges in place (module docstring); returns how many went."""
    before = surviving_edges(params)
    for r in range(params.rounds):
        params.spatial_mask[r] = prune_lowest(params.spatial_logits[r], params.spatial_mask[r], beta)
    for r in range(params.rounds - 1):
        params.temporal_mask[r] = prune_lowest(params.temporal_logits[r], params.temporal_mask[r], beta)
    return before - surviving_edges(params)


def surviving_edges(params: GraphParameters) -> int:
    """Spatial plus temporal edges still allowed by the masks."""
    return int(params.spatial_mask.sum() + params.temporal_mask.sum())
