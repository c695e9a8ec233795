"""HCA: return-conditional hindsight credit assignment, plus a tiny learned hindsight head.

For episode i with return Z_i = R_i and turns t = 1..T_i:

    A_{i,t} = (1 − π(a_t | s_t) / h(a_t | s_t, Z_i)) · Z_i

π(a_t | s_t) = exp(mean token log-prob of the action under the policy)   (``policy_logprobs``)
h(a_t | s_t, Z_i) = exp(log-prob of the action under the hindsight model)  (``hindsight_head_logprobs``)

An action that the hindsight distribution, knowing the return, finds more likely than the policy
did (h > π) gets credit of the sign of Z; an action the return makes less likely gets the opposite.
Stability: the ratio π/h is clipped to [0, max_ratio] with max_ratio = 10, so a hindsight model
that assigns an action almost no probability cannot produce an unbounded advantage. The ratio is
computed as exp(min(log π − log h, log max_ratio)), which never overflows.

``HindsightHead`` is a small torch model of h(a | s, Z) over a discrete action set for callers
that have no model-based h: features of the state and the return in, action logits out, fit by
cross-entropy on (state, return, action) triples from finished episodes.

Source: Harutyunyan et al. 2019, "Hindsight Credit Assignment", NeurIPS 2019 (arXiv:1912.02503),
return-conditional HCA advantage (1 − π(a|s) / h(a|s, Z)) · Z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from horizongym.training.advantages.base import Advantages, EpisodeCredit, check_group, per_turn

DEFAULT_MAX_RATIO = 10.0


def hca(group: Sequence[EpisodeCredit], *, max_ratio: float = DEFAULT_MAX_RATIO) -> Advantages:
    """Per-turn return-conditional HCA advantages (1 − clip(π/h, 0, max_ratio)) · R_i."""
    check_group(group)
    if not max_ratio > 0:
        raise ValueError(f"max_ratio must be > 0, got {max_ratio}")
    log_max = math.log(max_ratio)
    out: Advantages = []
    for index, episode in enumerate(group):
        policy = per_turn(episode, "policy_logprobs", index)
        hindsight = per_turn(episode, "hindsight_head_logprobs", index)
        row: list[float] = []
        for log_pi, log_h in zip(policy, hindsight, strict=True):
            if math.isnan(log_pi) or math.isnan(log_h) or log_h == math.inf or log_pi == math.inf:
                raise ValueError(f"episode {index}: log-probs must not be NaN or +inf")
            ratio = math.exp(min(log_pi - log_h, log_max)) if log_h != -math.inf else max_ratio
            row.append((1.0 - ratio) * episode.reward)
        out.append(row)
    return out


class HindsightHead(nn.Module):
    """h(a | s, Z): an MLP from state features [N, d] and returns Z [N] to logits over ``num_actions``."""

    def __init__(self, num_features: int, num_actions: int, hidden: int = 32) -> None:
        super().__init__()
        if num_features < 1 or num_actions < 2 or hidden < 1:
            raise ValueError("HindsightHead needs num_features >= 1, num_actions >= 2 and hidden >= 1")
        self.net = nn.Sequential(
            nn.Linear(num_features + 1, hidden),
            nn.Tanh(),
            nn.Linear(hidden, num_actions),
        )

    def forward(self, features: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
        """Action logits [N, num_actions] for state features [N, d] and returns [N]."""
        if features.dim() != 2 or returns.dim() != 1 or features.shape[0] != returns.shape[0]:
            raise ValueError(
                f"expected features [N, d] and returns [N], got {tuple(features.shape)} and {tuple(returns.shape)}"
            )
        inputs = torch.cat([features.float(), returns.float().unsqueeze(-1)], dim=-1)
        logits: torch.Tensor = self.net(inputs)
        return logits

    def log_prob(self, features: torch.Tensor, returns: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log h(a | s, Z) for each row: a tensor [N]."""
        log_probs = torch.log_softmax(self(features, returns), dim=-1)
        return log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def fit(
        self,
        features: torch.Tensor,
        returns: torch.Tensor,
        actions: torch.Tensor,
        steps: int = 200,
        lr: float = 1e-2,
    ) -> list[float]:
        """Full-batch Adam on the cross-entropy −log h(a | s, Z); returns the loss before each step."""
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        losses: list[float] = []
        self.train()
        for _ in range(steps):
            loss = -self.log_prob(features, returns, actions).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        self.eval()
        return losses
