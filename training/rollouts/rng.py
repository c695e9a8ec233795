"""The env's random draws, as an episode records them: the state of its generator.

Every env owns its generator (Gymnasium's ``np_random``, seeded by ``reset(seed=...)``). Its state
when an episode ends says which random numbers the episode drew: a replay from the same seed
that ends in the same state drew the same ones, as many of them. One read per episode (about
2 µs for PCG64), none per step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def generator_state(env: gym.Env[Any, Any]) -> dict[str, Any] | None:
    """The state of the unwrapped ``env``'s generator as plain JSON data; None when it has none.

    Reads Gymnasium's ``_np_random``, never the ``np_random`` property, which would seed a new
    generator where there is none. PCG64's state (Gymnasium's generator) is plain data already.
    """
    generator = getattr(env, "_np_random", None)
    if generator is None:
        return None
    state: dict[str, Any] = generator.bit_generator.state
    return state if state.get("bit_generator") == "PCG64" else _plain(state)


def _plain(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into lists and Python numbers (other generators' states)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
