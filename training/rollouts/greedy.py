"""Greedy episodes of an in-process transformers model: the held-out evaluation of a model being trained."""

from __future__ import annotations

import asyncio
from typing import Any

from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine
from horizongym.training.rollouts.store import EpisodeStore
from horizongym.training.rollouts.trajectory import Episode


def play_greedy(
    model: Any,
    tokenizer: Any,
    recipe: EnvRecipe,
    count: int,
    *,
    seed: int,
    max_new_tokens: int,
    batch_size: int,
    device: str | None = None,
    max_turns: int | None = None,
    store: EpisodeStore | None = None,
) -> list[Episode]:
    """``count`` greedy episodes of ``recipe`` (task seeds ``seed .. seed + count - 1``), sorted by seed.

    Up to ``batch_size`` episodes run at once, and their turns are decoded together in one batch
    (:class:`~horizongym.agents.hf.TransformersPolicy`); ``store`` keeps them as they end.
    """
    from horizongym.agents.hf import TransformersPolicy

    policy = TransformersPolicy(
        model, tokenizer, max_new_tokens=max_new_tokens, temperature=0.0, max_batch_size=batch_size, device=device
    )

    async def run(engine: RolloutEngine) -> list[Episode]:
        try:
            return await engine.run(count, 1, seed=seed)
        finally:
            await policy.aclose()

    with RolloutEngine(
        recipe, policy, concurrency=batch_size, max_turns=max_turns, store=store, progress=False
    ) as engine:
        return sorted(asyncio.run(run(engine)), key=lambda e: e.seed)
