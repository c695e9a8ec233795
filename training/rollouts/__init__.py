"""Rollouts: the engine, its records and their store (no torch); the trainer builds on these."""

from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine, RolloutError, policy_seed
from horizongym.training.rollouts.store import EpisodeStore, read_episodes
from horizongym.training.rollouts.trajectory import Episode, Step

__all__ = [
    "EnvRecipe",
    "Episode",
    "EpisodeStore",
    "RolloutEngine",
    "RolloutError",
    "Step",
    "policy_seed",
    "read_episodes",
]
