"""The chain env: follow a chain of keys through a key-value store, answer the number at its end.

Each task is a store drawn with the env's RNG: the chain's keys point one to the next
(``start = -> next``), its last key holds the answer (a four-digit number), and distractor keys
hold other numbers and pointer runs, so guessing does not pay. The agent calls ``lookup(key)``
for one value per call and ``answer(value)`` to end the episode; a chain of ``n`` keys takes
``n`` lookups and one answer.

:class:`ChainEnv` owns the store, its drawing and the tools; a subclass says where keys come
from (:attr:`ChainEnv.key_space`, :meth:`ChainEnv.key_name`), how long the chain and how large
the store are (:meth:`ChainEnv.draw_size`), and what the task says (:meth:`ChainEnv.describe`).
``KeyChain-v0`` (:mod:`horizongym.envs.keychain`: words, a small store) and ``LongChain-v0``
(:mod:`horizongym.envs.longchain`: generated names, chains of thousands) are the two configurations.

Reward components: ``answer`` (1 for the right number, 0 otherwise) and ``format`` (the base
class's penalty for a malformed call). Both are reward events (``answer`` with the fact
``correct``), so stored episodes can be rescored; the reward setting is ``format_penalty``.

Forking (:mod:`horizongym.envs.snapshot`): an episode's state is its :class:`ChainTask` (the
store, the chain, the answer), drawn at reset and never changed after, and its turn limit
(LongChain-v0 sets one per task). A snapshot refers to the :class:`ChainTask` instead of copying
it, so in one process a snapshot of a chain of thousands of keys costs what one of a short chain
does (a pickled snapshot carries the task once).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from horizongym.envs.base import Task, TextEnv
from horizongym.tools import tool


@dataclass(frozen=True)
class ChainTask:
    """One drawn task: the store (key -> value), the chain's keys in order, and the number at its end.

    Nothing changes it once drawn (the tools only read it), so every copy of an episode shares it:
    ``copy.deepcopy`` returns it as it is (a snapshot and its restores hold the same one), and
    pickling copies it once, into the other process.
    """

    store: Mapping[str, str] = field(default_factory=dict)
    chain: tuple[str, ...] = ()
    answer: str = ""

    def __deepcopy__(self, memo: dict[int, Any]) -> ChainTask:
        return self


class ChainEnv(TextEnv):
    """Follow a chain of keys through a key-value store and answer the number at its end."""

    blocking = False
    reward_settings: ClassVar[frozenset[str] | None] = frozenset({"format_penalty"})
    episode_attributes: ClassVar[tuple[str, ...]] = ("chain_task", "max_turns")
    """The drawn task (shared, not copied: :class:`ChainTask`) and the turn limit, which LongChain-v0 sets per task."""
    key_space: ClassVar[int] = 0
    """How many distinct keys exist: keys are ``key_name(i)`` for ``i < key_space``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chain_task = ChainTask()

    @property
    def store(self) -> Mapping[str, str]:
        """The running task's key-value store (read only)."""
        return self.chain_task.store

    @property
    def chain(self) -> tuple[str, ...]:
        """The running task's chain: its keys from the start key to the one that holds the answer."""
        return self.chain_task.chain

    @property
    def answer_value(self) -> str:
        """The number at the end of the running task's chain."""
        return self.chain_task.answer

    # ----- subclass API -------------------------------------------------------------------
    def key_name(self, index: int) -> str:
        """The name of key number ``index`` (``0 <= index < key_space``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement key_name()")

    def draw_size(self, options: dict[str, Any]) -> tuple[int, int]:
        """The next task's (keys on the chain, keys in the store), drawn with ``self.np_random`` or from ``options``."""
        raise NotImplementedError(f"{type(self).__name__} must implement draw_size()")

    def describe(self) -> Task:
        """The task's id and prompt, from :attr:`chain`, :attr:`store` and :attr:`answer_value`."""
        raise NotImplementedError(f"{type(self).__name__} must implement describe()")

    # ----- the task ---------------------------------------------------------------------------
    def new_task(self, options: dict[str, Any]) -> Task:
        rng = self.np_random
        chain_keys, store_keys = self.draw_size(options)
        keys = [self.key_name(int(i)) for i in rng.choice(self.key_space, size=store_keys, replace=False)]
        chain, others = keys[:chain_keys], keys[chain_keys:]
        store = {key: f"-> {nxt}" for key, nxt in itertools.pairwise(chain)}
        answer = str(int(rng.integers(1000, 10000)))
        store[chain[-1]] = answer
        for i, key in enumerate(others):
            pointer = i + 1 < len(others) and rng.random() < 0.5
            store[key] = f"-> {others[i + 1]}" if pointer else str(int(rng.integers(1000, 10000)))
        self.chain_task = ChainTask(store=store, chain=tuple(chain), answer=answer)
        return self.describe()

    # ----- tools ------------------------------------------------------------------------------
    @tool(tag=True)
    def lookup(self, key: str) -> str:
        """Read the value stored under a key.

        Args:
            key: the key to read, e.g. the start key.
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
        self.score("answer", correct=correct)
        self.end_episode(success=correct)
        return "Correct." if correct else "Wrong answer."

    def event_rewards(self, event: Mapping[str, Any]) -> dict[str, float]:
        """``answer``: 1 if ``correct``, else 0; ``format``: the base class's penalty."""
        if event["event"] == "answer":
            return {"answer": 1.0 if event["correct"] else 0.0}
        return super().event_rewards(event)
