"""LongChain-v0: follow a chain of generated keys, up to thousands of links long.

Like KeyChain-v0, but the keys are generated names (``k0042``), so a chain can hold up to
:data:`MAX_LENGTH` keys. Each lookup reveals the next key (``k0042 = -> k7315``); the last
key of the chain holds a number (``k7315 = 5821``), which the agent must answer. A chain of
length ``n`` takes ``n`` lookups and one answer, ``n + 1`` turns; the turn limit is
``n + 2`` unless ``max_turns`` is given. Distractor keys hold other numbers and pointers,
so guessing does not pay. Tasks are deterministic per seed.

Reward components: ``answer`` (1 for the right number, 0 otherwise) and ``format`` (the base
class's penalty for a malformed call).
"""

from __future__ import annotations

import itertools
from typing import Any

from horizongym.envs.base import Task, TextEnv
from horizongym.tools import tool

MAX_LENGTH = 4096
"""The longest chain a task may have."""

KEY_SPACE = 10_000
"""Keys are drawn from ``k0000`` .. ``k9999``."""


def key_name(index: int) -> str:
    """The name of key number ``index``: ``42`` → ``k0042``."""
    return f"k{index:04d}"


class LongChainEnv(TextEnv):
    """Follow a long chain of generated keys through a key-value store and answer the number at its end.

    Args:
        length: every task's chain length (overrides ``min_length``/``max_length``).
        min_length: the shortest chain drawn when ``length`` is not given.
        max_length: the longest chain drawn when ``length`` is not given.
        distractors: keys that are not on the chain.
        turn_slack: turns allowed beyond the ``length + 1`` a perfect agent needs (when ``max_turns`` is not given).
        **kwargs: the :class:`TextEnv` options (``max_turns``, ``format_penalty``, ``render_mode``...).

    ``reset(options={"length": n})`` sets one task's chain length.
    """

    description = "Follow a long chain of generated keys (k0042 -> k7315 -> ...) and answer the number at its end."
    blocking = False

    def __init__(
        self,
        *,
        length: int | None = None,
        min_length: int = 3,
        max_length: int = 8,
        distractors: int = 16,
        turn_slack: int = 2,
        **kwargs: Any,
    ) -> None:
        if length is not None:
            self._check_length(length)
        if not 1 <= min_length <= max_length <= MAX_LENGTH:
            raise ValueError(f"need 1 <= min_length <= max_length <= {MAX_LENGTH}")
        if not 0 <= distractors <= KEY_SPACE - MAX_LENGTH:
            raise ValueError(f"need 0 <= distractors <= {KEY_SPACE - MAX_LENGTH}")
        if turn_slack < 1:
            raise ValueError("turn_slack must be at least 1 (the answer needs a turn after the last lookup)")
        self._fixed_max_turns = kwargs.get("max_turns") is not None
        super().__init__(**kwargs)
        self.length, self.min_length, self.max_length = length, min_length, max_length
        self.distractors, self.turn_slack = distractors, turn_slack
        self.store: dict[str, str] = {}
        self.chain: list[str] = []
        self.answer_value = ""
        if not self._fixed_max_turns:
            self.max_turns = (length if length is not None else max_length) + turn_slack

    @staticmethod
    def _check_length(length: int) -> None:
        if not 1 <= length <= MAX_LENGTH:
            raise ValueError(f"a chain's length must be between 1 and {MAX_LENGTH}, got {length}")

    def new_task(self, options: dict[str, Any]) -> Task:
        rng = self.np_random
        if "length" in options:
            length = int(options["length"])
        elif self.length is not None:
            length = self.length
        else:
            length = int(rng.integers(self.min_length, self.max_length + 1))
        self._check_length(length)
        ids = rng.choice(KEY_SPACE, size=length + self.distractors, replace=False)
        keys = [key_name(int(i)) for i in ids]
        self.chain, others = keys[:length], keys[length:]
        self.store = {key: f"-> {nxt}" for key, nxt in itertools.pairwise(self.chain)}
        self.answer_value = str(int(rng.integers(1000, 10000)))
        self.store[self.chain[-1]] = self.answer_value
        for i, key in enumerate(others):
            pointer = rng.random() < 0.5 and i + 1 < len(others)
            self.store[key] = f"-> {others[i + 1]}" if pointer else str(int(rng.integers(1000, 10000)))
        if not self._fixed_max_turns:
            self.max_turns = length + self.turn_slack
        prompt = (
            f"A store of {len(self.store)} keys. Start key: {self.chain[0]}. A value '-> k' points to key k: "
            "follow the chain until you reach a number, then answer it."
        )
        return Task(id=f"longchain-n{length}-{self.chain[0]}-{self.answer_value}", prompt=prompt)

    @tool(tag=True)
    def lookup(self, key: str) -> str:
        """Read the value of a key.

        Args:
            key: a key, e.g. k0042.
        """
        key = key.strip().lower()
        if key not in self.store:
            return f"No key '{key}' in the store."
        return f"{key} = {self.store[key]}"

    @tool(tag=True)
    def answer(self, value: str) -> str:
        """Answer the number at the chain's end (ends the episode).

        Args:
            value: the number.
        """
        correct = value.strip() == self.answer_value
        self.add_reward("answer", 1.0 if correct else 0.0)
        self.end_episode(success=correct)
        return "Correct." if correct else "Wrong answer."
