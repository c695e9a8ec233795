"""KeyChain-v0: a small multi-turn tool environment that exercises every contract.

A :class:`~horizongym.envs.chain.ChainEnv` whose keys are words (``amber``, ``birch``...). The
store holds ``store_size`` keys; a chain of depth ``d`` (drawn from ``min_depth..max_depth``,
or ``reset(options={"depth": d})``) links ``d + 1`` of them, so it needs ``d + 1`` turns: ``d``
lookups after the start key's, then the answer. The rest are distractors.

Reward components: ``answer`` (1 for the right number, 0 otherwise) and ``format`` (the base
class's penalty for a malformed call).
"""

from __future__ import annotations

from typing import Any

from horizongym.envs.base import Task
from horizongym.envs.chain import ChainEnv

WORDS = (
    "amber birch cedar delta ember fjord grove harbor iris jasper kelp lumen maple nectar onyx pebble "
    "quartz raven saffron tundra umber violet willow xenon yarrow zephyr acorn basil comet dune"
).split()


class KeyChainEnv(ChainEnv):
    """Follow a chain of keys through a key-value store and report the number at its end."""

    description = "Follow a chain of keys through a key-value store and answer the number at its end."
    max_turns = 10
    key_space = len(WORDS)

    def __init__(self, *, min_depth: int = 1, max_depth: int = 4, store_size: int = 12, **kwargs: Any) -> None:
        if not 1 <= min_depth <= max_depth or store_size < max_depth + 2 or store_size > len(WORDS):
            raise ValueError("need 1 <= min_depth <= max_depth and max_depth + 2 <= store_size <= 30")
        super().__init__(**kwargs)
        self.min_depth, self.max_depth, self.store_size = min_depth, max_depth, store_size

    def key_name(self, index: int) -> str:
        return WORDS[index]

    def draw_size(self, options: dict[str, Any]) -> tuple[int, int]:
        drawn = int(self.np_random.integers(self.min_depth, self.max_depth + 1))  # drawn even when set: seeds stay put
        depth = int(options.get("depth", drawn))
        return depth + 1, self.store_size

    def describe(self) -> Task:
        prompt = (
            f"A key-value store holds {len(self.store)} keys. Start key: {self.chain[0]}. "
            "A value '-> k' points to key k. Follow the chain from the start key until you reach a "
            "number, then answer that number."
        )
        return Task(id=f"keychain-d{len(self.chain) - 1}-{self.chain[0]}-{self.answer_value}", prompt=prompt)
