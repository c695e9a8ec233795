"""The demo's episodes: the scripted expert on the train questions (the SFT data) and the model's
greedy evaluation on the held-out questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from horizongym.training.demo.data import split_size
from horizongym.training.demo.settings import ENV_ID, WORLD_TEST_QUESTIONS, DemoSettings


def expert_episodes(data: str, settings: DemoSettings, path: Path, split: str = "train") -> list[Any]:
    """The scripted expert on the ``split`` questions (``sft_tasks`` of them), stored at ``path``."""
    from horizongym.agents.scripted import expert_for
    from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine
    from horizongym.training.rollouts.store import EpisodeStore

    path.unlink(missing_ok=True)
    count = split_size(data, split) if settings.sft_tasks is None else min(settings.sft_tasks, split_size(data, split))
    with (
        EpisodeStore(path) as store,
        RolloutEngine(
            EnvRecipe(ENV_ID, settings.env_kwargs(data, split)),
            expert_for(ENV_ID),
            concurrency=settings.concurrency,
            store=store,
            progress=False,
        ) as engine,
    ):
        return sorted(engine.run_sync(count, 1, seed=0), key=lambda e: e.seed)


def evaluate(model: Any, tokenizer: Any, data: str, settings: DemoSettings, path: Path) -> dict[str, Any]:
    """Greedy episodes on the held-out questions (seeds ``0..n-1``), stored at ``path``: :func:`measured`
    figures and the mean reward."""
    import numpy as np

    from horizongym.training.rollouts.engine import EnvRecipe
    from horizongym.training.rollouts.greedy import play_greedy
    from horizongym.training.rollouts.store import EpisodeStore

    path.unlink(missing_ok=True)
    count = split_size(data, "test") if settings.eval_tasks is None else settings.eval_tasks
    with EpisodeStore(path) as store:
        episodes = play_greedy(
            model,
            tokenizer,
            EnvRecipe(ENV_ID, settings.env_kwargs(data, "test")),
            count,
            seed=0,
            max_new_tokens=settings.max_new_tokens,
            batch_size=settings.eval_batch_size,
            store=store,
        )
    return measured([bool(e.success) for e in episodes]) | {
        "mean_reward": float(np.mean([e.total_reward for e in episodes])),
        "episodes": len(episodes),
        "episodes_path": str(path),
    }


def measured(outcomes: list[bool]) -> dict[str, Any]:
    """Success over held-out questions (in seed order) with its 95% Wilson interval, and over the world's own
    :data:`WORLD_TEST_QUESTIONS` (the first seeds), with the outcomes themselves for the paired tests."""
    from horizongym.training.paired_stats import wilson_interval

    low, high = wilson_interval(sum(outcomes), len(outcomes))
    world = outcomes[:WORLD_TEST_QUESTIONS]
    return {
        "success": sum(outcomes) / len(outcomes),
        "ci_low": low,
        "ci_high": high,
        "n": len(outcomes),
        "world_success": sum(world) / len(world),
        "outcomes": [int(o) for o in outcomes],
    }
