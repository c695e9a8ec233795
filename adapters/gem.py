"""horizongym envs as GEM envs (``gem-llm`` 0.1), for GEM's wrappers, vector envs and trainers.

:class:`HorizonGemEnv` is a ``gem.Env`` around any horizongym env, and :func:`register_gem_envs`
registers every horizongym id under its full name, so GEM builds them as it builds its own::

    env = gem.make("horizongym/KeyChain-v0", seed=7)   # constructor keywords of the env too
    observation, info = env.reset()
    observation, reward, terminated, truncated, info = env.step(action_text)

GEM's signatures, as the env meets them: ``reset(seed=None) -> (observation, info)`` and
``step(action) -> (observation, reward, terminated, truncated, info)`` with text in and out
and the env's own ``info`` (the horizongym contract: ``tools``, ``task_id``, ``turn``,
``reward_components``...). The ``seed`` given to the constructor (what ``gem.make_vec`` gives
each env) seeds the first reset; later resets without a seed continue the env's own random
stream, so a vector env's auto-resets draw new, reproducible tasks. The env owns its RNG and
never seeds the global ones (GEM's base ``reset`` would). ``sample_random_action`` is
horizongym's random policy: valid-looking calls of the env's tools, and malformed ones.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any, Final

import gem
from gem.envs.registration import ENV_REGISTRY

from horizongym.agents.scripted import RandomPolicy
from horizongym.envs import full_id, make, registry, spec

ENTRY_POINT: Final = "horizongym.adapters.gem:HorizonGemEnv"


class HorizonGemEnv(gem.Env):
    """A horizongym env as a GEM env: the same text, rewards and ``info``."""

    def __init__(self, horizongym_id: str, seed: int | None = None, **env_kwargs: Any) -> None:
        super().__init__()
        self.horizongym_id = full_id(horizongym_id)
        self.env_kwargs = env_kwargs
        self.env = make(horizongym_id, **env_kwargs)
        self.first_seed = seed
        self._next_seed = seed
        self._tools: list[dict[str, Any]] = []
        self._actions = random.Random(seed)

    def reset(self, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        if seed is None:
            seed, self._next_seed = self._next_seed, None
        else:
            self._next_seed = None
        observation, info = self.env.reset(seed=seed)
        self._tools = list(info.get("tools", []))
        return observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, float(reward), bool(terminated), bool(truncated), info

    def sample_random_action(self) -> str:
        choice = RandomPolicy().decide([], self._tools, self._actions.randrange(2**31))
        return choice.env_action()

    def spawn(self, same_state: bool = False, **kwargs: Any) -> HorizonGemEnv:
        """A new env of the same id and keywords (``kwargs`` override them), not yet reset.

        ``same_state=True`` (a copy of this episode in progress) is refused: horizongym envs
        branch an episode by replaying its actions on a fresh env, not by copying one.
        """
        if same_state:
            raise ValueError(
                "spawn(same_state=True) is not supported: build a fresh env with spawn() and replay "
                "the episode's actions after reset(seed=...) to reach the same state"
            )
        options = {"seed": self.first_seed, **self.env_kwargs, **kwargs}
        return HorizonGemEnv(self.horizongym_id, **options)

    def close(self) -> None:
        self.env.close()


def register_gem_envs(env_ids: Iterable[str] | None = None) -> list[str]:
    """Register horizongym envs (all registered ones by default) with ``gem.register``.

    Each is registered under its full id (``horizongym/KeyChain-v0``); one already registered
    by an earlier call is left as it is. An unknown id raises
    :class:`~horizongym.envs.UnknownEnvironment`. Returns the full ids.
    """
    ids = [full_id(spec(env_id).id) for env_id in (sorted(registry) if env_ids is None else env_ids)]
    for env_id in ids:
        existing = ENV_REGISTRY.get(env_id)
        if existing is None:
            gem.register(env_id, ENTRY_POINT, horizongym_id=env_id)
        elif existing.entry_point != ENTRY_POINT:
            raise ValueError(f"gem already has another env registered as {env_id!r}: {existing.entry_point}")
    return ids
