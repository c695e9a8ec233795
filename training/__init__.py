"""Rollouts, trajectories and their store; the trainer builds on these."""

from horizongym.training.rollout import EnvRecipe, RolloutEngine, policy_seed
from horizongym.training.store import EpisodeStore, read_episodes
from horizongym.training.trajectory import Episode, Step

__all__ = ["EnvRecipe", "Episode", "EpisodeStore", "RolloutEngine", "Step", "policy_seed", "read_episodes"]
