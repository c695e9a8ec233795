"""LongChain-v0: follow a chain of generated keys, up to thousands of links long.

A :class:`~horizongym.envs.chain.ChainEnv` whose keys are generated names (``k0042``), so a
chain can hold up to :data:`MAX_LENGTH` keys. Each lookup reveals the next key
(``k0042 = -> k7315``); the last key of the chain holds a number (``k7315 = 5821``), which the
agent must answer. A chain of length ``n`` takes ``n`` lookups and one answer, ``n + 1`` turns;
the turn limit is ``n + turn_slack`` unless ``max_turns`` is given. ``distractors`` keys off the
chain hold other numbers and pointers, so guessing does not pay. Tasks are deterministic per seed.

Reward components: ``answer`` (1 for the right number, 0 otherwise) and ``format`` (the base
class's penalty for a malformed call).
"""

from __future__ import annotations

from typing import Any

from horizongym.envs.base import Task
from horizongym.envs.chain import ChainEnv

MAX_LENGTH = 4096
"""The longest chain a task may have."""

KEY_SPACE = 10_000
"""Keys are drawn from ``k0000`` .. ``k9999``."""


def key_name(index: int) -> str:
    """The name of key number ``index``: ``42`` → ``k0042``."""
    return f"k{index:04d}"


class LongChainEnv(ChainEnv):
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
    key_space = KEY_SPACE

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
        if not self._fixed_max_turns:
            self.max_turns = (length if length is not None else max_length) + turn_slack

    @staticmethod
    def _check_length(length: int) -> None:
        if not 1 <= length <= MAX_LENGTH:
            raise ValueError(f"a chain's length must be between 1 and {MAX_LENGTH}, got {length}")

    def key_name(self, index: int) -> str:
        return key_name(index)

    def draw_size(self, options: dict[str, Any]) -> tuple[int, int]:
        if "length" in options:
            length = int(options["length"])
        elif self.length is not None:
            length = self.length
        else:
            length = int(self.np_random.integers(self.min_length, self.max_length + 1))
        self._check_length(length)
        if not self._fixed_max_turns:
            self.max_turns = length + self.turn_slack
        return length, length + self.distractors

    def describe(self) -> Task:
        prompt = (
            f"A store of {len(self.store)} keys. Start key: {self.chain[0]}. A value '-> k' points to key k: "
            "follow the chain until you reach a number, then answer it."
        )
        return Task(id=f"longchain-n{len(self.chain)}-{self.chain[0]}-{self.answer_value}", prompt=prompt)
