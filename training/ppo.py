"""The policy-gradient loss (PPO-clip, token- or sequence-level) and completion log-probs.

:func:`completion_logprobs` scores completions given their prompts with one teacher-forced
forward pass over a right-padded batch; :func:`ppo_loss` turns those log-probs, the log-probs
recorded at sampling time and the advantages into the loss. The formulas are in
:func:`ppo_loss`'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

RatioLevel = Literal["token", "sequence"]


def completion_logprobs(
    model: Any,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    *,
    pad_token_id: int,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probs of each completion after its prompt, by teacher forcing.

    Row ``b`` of the batch is ``prompts[b] + completions[b]``, right-padded with
    ``pad_token_id`` and masked out by the attention mask. The logits at position
    ``len(prompt) - 1 + j`` predict completion token ``j``; they are divided by ``temperature``
    before the log-softmax, matching the log-probs a sampler at that temperature records
    (see :mod:`horizongym.agents.hf`).

    Returns ``(logprobs, mask)``, both ``[batch, longest completion]`` (float32): ``mask`` is 1
    on real completion tokens, and ``logprobs`` is 0 where ``mask`` is 0.
    """
    if len(prompts) != len(completions) or not prompts:
        raise ValueError("give one or more prompts, each with a completion")
    if any(not p for p in prompts) or any(not c for c in completions):
        raise ValueError("prompts and completions must be non-empty")
    device = next(model.parameters()).device
    size = len(prompts)
    width = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
    longest = max(len(c) for c in completions)
    input_ids = torch.full((size, width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((size, width), dtype=torch.long)
    targets = torch.zeros((size, longest), dtype=torch.long)
    mask = torch.zeros((size, longest), dtype=torch.float32)
    starts = torch.zeros(size, dtype=torch.long)
    for row, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        sequence = [*prompt, *completion]
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        attention[row, : len(sequence)] = 1
        targets[row, : len(completion)] = torch.tensor(list(completion))
        mask[row, : len(completion)] = 1.0
        starts[row] = len(prompt) - 1
    logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
    positions = (starts[:, None] + torch.arange(longest)[None, :]).clamp(max=width - 1).to(device)
    picked = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
    log_probs = torch.log_softmax(picked.float() / temperature, dim=-1)
    mask = mask.to(device)
    token_logprobs = log_probs.gather(2, targets.to(device)[..., None]).squeeze(-1)
    return token_logprobs * mask, mask


@dataclass(frozen=True)
class PPOStats:
    """Diagnostics of one loss evaluation (plain floats, no graph).

    ``clip_fraction``: share of units (tokens, or sequences at the sequence level) whose clip was
    active (r < 1 − ε_low with A < 0, or r > 1 + ε_high with A > 0); ``approx_kl``: mean k3
    estimate of KL(π_old ‖ π) per token; ``mean_ratio``: mean of r over units; ``kl_ref``: mean
    k3 estimate of KL(π ‖ π_ref) per token (0 without a reference); ``units``: how many units
    the means are over; ``is_weight_mean``: mean importance weight over units (1 without weights).
    """

    clip_fraction: float
    approx_kl: float
    mean_ratio: float
    kl_ref: float
    units: int
    is_weight_mean: float = 1.0


def ppo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    ratio_level: RatioLevel = "token",
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    normalizer: float | None = None,
    is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, PPOStats]:
    """The clipped policy-gradient loss over a batch of completions.

    Shapes: ``logprobs``, ``old_logprobs``, ``mask`` and ``ref_logprobs`` are ``[B, L]`` (log π,
    log π_old, real-token mask, log π_ref); ``advantages`` is ``[B]``, one A per completion.

    Token level, PPO-clip (Schulman et al. 2017, "Proximal Policy Optimization Algorithms",
    arXiv:1707.06347), with r_t = exp(log π(y_t) − log π_old(y_t)):

        L = − (1/N) Σ_tokens min(r_t · A, clip(r_t, 1 − ε_low, 1 + ε_high) · A)

    Sequence level, GSPO (Zheng et al. 2025, "Group Sequence Policy Optimization",
    arXiv:2507.18071): one length-normalised importance ratio per completion y_i,

        s_i = exp( (1/|y_i|) Σ_t (log π(y_i,t) − log π_old(y_i,t)) )
        L   = − (1/N) Σ_i min(s_i · A_i, clip(s_i, 1 − ε_low, 1 + ε_high) · A_i)

    GSPO clips far tighter than PPO (its paper uses ε_low = 3e-4, ε_high = 4e-4), hence two
    separate ε. Optional KL penalty to a frozen reference, with Schulman's k3 estimator
    ("Approximating KL Divergence", 2020), unbiased for KL(π ‖ π_ref) and always ≥ 0:

        k3_t = exp(q_t) − q_t − 1,   q_t = log π_ref(y_t) − log π(y_t)
        L   += kl_coef · (1/N) Σ k3_t                 (token level)
        L   += kl_coef · (1/N) Σ_i mean_t k3_i,t      (sequence level)

    N is ``normalizer``: the number of tokens (token level) or completions (sequence level) in
    the whole optimizer batch, so micro-batches accumulated into one step average exactly like
    the full batch would; it defaults to this batch's count.

    ``is_weights`` (``[B, L]`` at the token level, ``[B]`` at the sequence level) multiply each
    unit's clipped term: the truncated importance weights of samples another policy generated
    (:mod:`horizongym.training.truncated_is`).
    """
    if ratio_level not in ("token", "sequence"):
        raise ValueError(f"ratio_level must be 'token' or 'sequence', got {ratio_level!r}")
    if clip_low < 0 or clip_high < 0:
        raise ValueError("clip_low and clip_high must be >= 0")
    mask = mask.float()
    lengths = mask.sum(-1).clamp(min=1.0)
    token_count = float(mask.sum().item())
    log_ratio = (logprobs - old_logprobs) * mask
    low, high = 1.0 - clip_low, 1.0 + clip_high
    if ratio_level == "token":
        ratio = torch.exp(log_ratio)
        adv = advantages[:, None].to(ratio.dtype)
        weights = mask
    else:
        ratio = torch.exp(log_ratio.sum(-1) / lengths)
        adv = advantages.to(ratio.dtype)
        weights = torch.ones_like(ratio)
    objective = torch.minimum(ratio * adv, ratio.clamp(low, high) * adv)
    if is_weights is not None:
        objective = objective * is_weights.detach().to(objective.dtype)
    units = float(weights.sum().item())
    denominator = units if normalizer is None else float(normalizer)
    loss = -(objective * weights).sum() / max(denominator, 1e-8)

    kl_ref = torch.zeros((), device=logprobs.device)
    if ref_logprobs is not None and kl_coef:
        q = (ref_logprobs - logprobs) * mask
        k3 = (torch.exp(q) - q - 1.0) * mask
        per_unit = k3 if ratio_level == "token" else k3.sum(-1) / lengths
        loss = loss + kl_coef * per_unit.sum() / max(denominator, 1e-8)
        kl_ref = k3.sum() / max(token_count, 1.0)

    with torch.no_grad():
        clipped = ((ratio < low) & (adv < 0)) | ((ratio > high) & (adv > 0))
        old_q = -log_ratio
        approx_kl = ((torch.exp(old_q) - old_q - 1.0) * mask).sum() / max(token_count, 1.0)
        is_weight_sum = units if is_weights is None else float((is_weights.to(weights.dtype) * weights).sum().item())
        stats = PPOStats(
            clip_fraction=float((clipped.float() * weights).sum().item() / max(units, 1.0)),
            approx_kl=float(approx_kl.item()),
            mean_ratio=float((ratio * weights).sum().item() / max(units, 1.0)),
            kl_ref=float(kl_ref.detach().item()),
            units=int(units),
            is_weight_mean=is_weight_sum / units if units else 1.0,
        )
    return loss, stats
