"""Adapters: horizongym envs inside the RL stacks people already run (TRL, verifiers, SkyRL, GEM)."""
