"""KeyChain-v0: a small multi-turn tool environment that exercises every contract.

The store maps words to values. A value is either another key (``-> birch``) or the
treasure (a number). Starting at the given key, the agent looks keys up one at a time
until it reaches the number, then answers it. Distractor keys hold other numbers and
chains, so guessing does not pay. A chain of depth ``d`` needs ``d + 1`` turns.

Reward components: ``answer`` (1 for the right number, 0 otherwise) and ``format``
(the base class's penalty for a malformed call).
"""

from __future__ import annotations

import itertools
from typing import Any

from horizongym.envs.base import Task, TextEnv
from horizongym.tools import tool

WORDS = (
    "amber birch cedar delta ember fjord grove harbor iris jasper kelp lumen maple nectar onyx pebble "
    "quartz raven saffron tundra umber violet willow xenon yarrow zephyr acorn basil comet dune"
).split()


class KeyChainEnv(TextEnv):
    """Follow a chain of keys through a key-value store and report the number at its end."""

    description = "Follow a chain of keys through a key-value store and answer the number at its end."
    blocking = False
    max_turns = 10

    def __init__(self, *, min_depth: int = 1, max_depth: int = 4, store_size: int = 12, **kwargs: Any) -> None:
        if not 1 <= min_depth <= max_depth or store_size < max_depth + 2 or store_size > len(WORDS):
            raise ValueError("need 1 <= min_depth <= max_depth and max_depth + 2 <= store_size <= 30")
        super().__init__(**kwargs)
        self.min_depth, self.max_depth, self.store_size = min_depth, max_depth, store_size
        self.store: dict[str, str] = {}
        self.answer_value = ""

    def new_task(self, options: dict[str, Any]) -> Task:
        rng = self.np_random
        depth = int(options.get("depth", rng.integers(self.min_depth, self.max_depth + 1)))
        keys = [str(k) for k in rng.choice(WORDS, size=self.store_size, replace=False)]
        chain, others = keys[: depth + 1], keys[depth + 1 :]
        self.store = {key: f"-> {nxt}" for key, nxt in itertools.pairwise(chain)}
        self.answer_value = str(int(rng.integers(1000, 10000)))
        self.store[chain[-1]] = self.answer_value
        for i, key in enumerate(others):
            self.store[key] = (
                f"-> {others[i + 1]}"
                if i + 1 < len(others) and rng.random() < 0.5
                else str(int(rng.integers(1000, 10000)))
            )
        prompt = (
            f"A key-value store holds {len(self.store)} keys. Start key: {chain[0]}. "
            "A value '-> k' points to key k. Follow the chain from the start key until you reach a "
            "number, then answer that number."
        )
        return Task(id=f"keychain-d{depth}-{chain[0]}-{self.answer_value}", prompt=prompt)

    @tool(tag=True)
    def lookup(self, key: str) -> str:
        """Read the value stored under a key.

        Args:
            key: the key to read, e.g. "amber".
        """
        key = key.strip().lower()
        if key not in self.store:
            return f"No key '{key}' in the store."
        return f"{key} = {self.store[key]}"

    @tool(tag=True)
    def answer(self, value: str) -> str:
        """Give the final answer; this ends the episode.

        Args:
            value: the number at the end of the chain.
        """
        correct = value.strip() == self.answer_value
        self.add_reward("answer", 1.0 if correct else 0.0)
        self.end_episode(success=correct)
        return "Correct." if correct else "Wrong answer."
