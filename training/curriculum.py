"""SFT on whole expert episodes, short contexts first: a curriculum for tiny models on a CPU.

:func:`~horizongym.training.sft.sft_warm_start` trains one (context, action) example per step,
so every action pays for a forward pass over its whole conversation. Here an episode is one
token sequence (the chat template applied to the full conversation; a step whose prompt does
not extend the sequence so far, e.g. after a redacted observation, starts a new one) with a
weight per token: 1 on the actions and their eos token, ``context_weight`` on everything
else. The loss of a batch is

    L = − Σ_tokens w_t log π(x_t | x_<t) / Σ_tokens [w_t = 1]

so the action tokens are averaged and the context adds a weighted language-modelling term.

A :class:`Phase` trains on the sequences some function of the episodes builds, for a number of
optimizer steps at its batch size; :func:`train_phases` runs phases one after another with one
AdamW optimizer and one learning-rate schedule (linear warmup, cosine decay to 10%) across all
of them. A tiny model learns to copy (an entity from the question into a search, a span from a
page into an answer) far sooner from short sequences, so a curriculum starts from trimmed
conversations (:func:`trim_first_message`) and ends on the real prompts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from horizongym.agents.base import Message
from horizongym.agents.hf import encode_prompt
from horizongym.training.rollouts.trajectory import Episode
from horizongym.training.sft import step_contexts

Row = tuple[list[int], list[float]]
"""One training sequence: token ids and a loss weight per token."""


def trim_first_message(marker: str) -> Callable[[list[Message]], list[Message]]:
    """A context edit that keeps the first message's text from ``marker`` on (all of it when absent)."""

    def trim(messages: list[Message]) -> list[Message]:
        if not messages:
            return messages
        content = messages[0].get("content")
        if not isinstance(content, str) or marker not in content:
            return messages
        return [{**messages[0], "content": content[content.index(marker) :]}, *messages[1:]]

    return trim


def episode_rows(
    tokenizer: Any,
    episodes: Sequence[Episode],
    *,
    edit: Callable[[list[Message]], list[Message]] | None = None,
    turns: int | None = None,
    context_weight: float = 0.0,
) -> list[Row]:
    """The successful ``episodes`` as weighted sequences (see the module docstring).

    ``edit`` rewrites each step's context before it is rendered (the same edit for every step
    of an episode keeps the steps one sequence); ``turns`` keeps only each episode's first
    ``turns`` steps.
    """
    eos = int(tokenizer.eos_token_id)
    rows: list[Row] = []
    for episode in episodes:
        if not episode.success:
            continue
        tokens: list[int] = []
        weights: list[float] = []
        for messages, action in step_contexts(episode)[:turns]:
            prompt = encode_prompt(tokenizer, edit(messages) if edit else messages, None)
            if prompt[: len(tokens)] != tokens:
                rows.append((tokens, weights))
                tokens, weights = [], []
            target = [int(i) for i in tokenizer(action, add_special_tokens=False)["input_ids"]] + [eos]
            weights += [context_weight] * (len(prompt) - len(tokens)) + [1.0] * len(target)
            tokens = prompt + target
        if tokens:
            rows.append((tokens, weights))
    return rows


def repeat_rows(tokenizer: Any, pages: Sequence[str], count: int, seed: int) -> list[Row]:
    """``count`` sequences ``s \\n s``, ``s`` a random segment (60 to 160 bytes) of one of ``pages``.

    The weight is 1 on the second ``s`` and 0 before it: the second copy is predictable byte for
    byte only by looking back at the first, which is how a model forms induction heads (Olsson
    et al. 2022, "In-context Learning and Induction Heads"). A tiny byte-level model that has
    them learns to copy spans out of its context (an answer out of a page) many times sooner.
    """
    rng = random.Random(seed)
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    rows: list[Row] = []
    for _ in range(count):
        page = pages[rng.randrange(len(pages))]
        start = rng.randrange(max(1, len(page) - 160))
        ids = tokenizer(page[start : start + rng.randint(60, 160)], add_special_tokens=False)["input_ids"]
        rows.append((ids + newline + ids, [0.0] * (len(ids) + len(newline)) + [1.0] * len(ids)))
    return rows


@dataclass(frozen=True)
class Phase:
    """``steps`` optimizer steps on ``rows``, ``batch_size`` sequences each (reshuffled every pass)."""

    name: str
    rows: list[Row]
    steps: int
    batch_size: int


def train_phases(
    model: Any,
    phases: Sequence[Phase],
    *,
    lr: float,
    seed: int,
    pad_token_id: int,
    warmup_steps: int = 50,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> dict[str, list[float]]:
    """Train ``model`` in place through ``phases``; return each phase's mean action loss per 100 steps.

    Example order comes from ``random.Random(seed)``; AdamW (no weight decay), gradient norm
    clipped to 1.0. ``progress`` shows a bar over all phases' steps (rate, ETA, current loss).
    """
    total = sum(p.steps for p in phases)
    if total < 1 or any(p.steps and not p.rows for p in phases):
        raise ValueError("the phases have no steps, or a phase with steps has no sequences")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / max(1, warmup_steps)) * (0.1 + 0.45 * (1 + math.cos(math.pi * step / total)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    device = next(model.parameters()).device
    was_training = model.training
    model.train()
    curves: dict[str, list[float]] = {}
    bar = tqdm(total=total, desc="sft", unit="step", disable=not progress, dynamic_ncols=True)
    try:
        for phase in phases:
            bar.set_description(f"sft {phase.name}")
            order: list[int] = []
            losses: list[float] = []
            window: list[float] = []
            for step in range(phase.steps):
                if len(order) < phase.batch_size:
                    order += rng.sample(range(len(phase.rows)), len(phase.rows))
                batch = [phase.rows[i] for i in order[: phase.batch_size]]
                del order[: phase.batch_size]
                window.append(_step(model, batch, pad_token_id, device, optimizer, params))
                scheduler.step()
                bar.update()
                bar.set_postfix(loss=f"{window[-1]:.3f}", refresh=False)
                if len(window) == 100 or step == phase.steps - 1:
                    losses.append(sum(window) / len(window))
                    window = []
                    if log:
                        log(f"{phase.name} step {step + 1}/{phase.steps}: action loss {losses[-1]:.3f}")
            curves[phase.name] = losses
    finally:
        bar.close()
        model.train(was_training)
    return curves


def _step(
    model: Any,
    batch: list[Row],
    pad: int,
    device: torch.device,
    optimizer: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
) -> float:
    """One optimizer step on ``batch``; returns its mean action-token loss.

    Sequences are padded on the right and no attention mask is passed: under the causal mask no
    real token attends to a pad after it, the pads' own outputs have weight 0, and SDPA takes
    its faster causal path.
    """
    width = max(len(tokens) for tokens, _ in batch)
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    weights = torch.zeros((len(batch), width))
    for row, (tokens, token_weights) in enumerate(batch):
        input_ids[row, : len(tokens)] = torch.tensor(tokens)
        weights[row, : len(token_weights)] = torch.tensor(token_weights)
    input_ids, weights = input_ids.to(device), weights.to(device)
    logits = model(input_ids=input_ids).logits[:, :-1].float()
    picked = torch.log_softmax(logits, dim=-1).gather(2, input_ids[:, 1:, None]).squeeze(-1)
    shifted = weights[:, 1:]
    actions = (shifted == 1.0).float()
    count = actions.sum().clamp(min=1.0)
    loss = -(picked * shifted).sum() / count
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    return float((-(picked.detach() * actions).sum() / count).item())
