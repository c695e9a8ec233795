"""``AgentDropoutConfig``: every setting of an AgentDropout run, with its default and its meaning.

The defaults follow the authors' GSM8K run (github wangzx1219/AgentDropout, README quick start
and ``experiments/run_gsm8k.py``): node dropout on 2 batches of 20 training queries, edge dropout
on 4 batches of 10 (the same 40 queries again), pruning every 2 edge batches at rate 0.10,
Adam with lr 0.1, δ = 0.1, temperature 1, one agent in five dropped per round (α = 0.2).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AgentDropoutConfig(BaseModel):
    """Everything that defines an AgentDropout training run (stored in the learned graph's metadata)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    node_batches: int = Field(default=2, ge=0)
    """Node-dropout batches (optimizer steps); 0 skips node dropout."""
    node_batch_size: int = Field(default=20, ge=1)
    """Training queries per node-dropout batch."""
    edge_batches: int = Field(default=4, ge=0)
    """Edge-dropout batches (optimizer steps); 0 skips edge dropout."""
    edge_batch_size: int = Field(default=10, ge=1)
    """Training queries per edge-dropout batch."""
    prune_every: int = Field(default=2, ge=1)
    """Prune the lowest-logit edges after every this many edge-dropout batches."""
    alpha: float = Field(default=0.2, gt=0, lt=1)
    """Node dropout rate: each round drops k = max(1, round(α·N)) of its N agents."""
    beta: float = Field(default=0.10, gt=0, lt=1)
    """Edge pruning rate: each prune removes max(1, round(β·E)) of a round's E surviving edges."""
    delta: float = Field(default=0.1, ge=0)
    """δ of the Frobenius hinge ReLU(mean_r ‖A − S_r‖_F − δ)."""
    nuclear_coef: float = Field(default=1.0, ge=0)
    """Weight of the low-rank terms mean_r ‖S_r‖_* + mean_r ‖T_r‖_*."""
    frobenius_coef: float = Field(default=1.0, ge=0)
    """Weight of the Frobenius hinge terms (spatial and temporal)."""
    lr: float = Field(default=0.1, gt=0)
    """Adam learning rate of the node and the edge logits."""
    temperature: float = Field(default=1.0, gt=0)
    """τ of the edge probabilities p_e = σ(θ_e / τ)."""
    baseline: Literal["none", "mean"] = "none"
    """Utility baseline of the edge loss and the faithful node loss: none (u, the authors', right for 0/1
    rewards) or mean (u − the batch mean). The principled node estimator always subtracts the mean."""
    estimator: Literal["faithful", "principled"] = "faithful"
    """Node-dropout gradient: faithful (the authors' pseudo-likelihood) or principled (REINFORCE)."""
    seed: int = 0
    """Seeds every sampled graph and every sampled drop."""
    max_concurrency: int = Field(default=8, ge=1)
    """Queries of a batch played at once."""
