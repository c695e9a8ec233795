"""Training on rollouts: per-turn samples, advantage estimators, PPO, SFT, the trainer, checkpoints.

The rollout engine, its records and their store are :mod:`horizongym.training.rollouts`, the
layer below this one (they import no torch).
"""
