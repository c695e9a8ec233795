"""Invented names from syllable pools: the machinery every synthetic-data generator shares.

The fictional world of ``envs.search.world``, the company of ``envs.email.company`` and the
benchmark archive of ``envs.email.synthetic_archive`` all make up words no model has seen.
Each keeps its own pools (onsets, vowels, endings) and its own seeded RNG; what they share
is here, parameterised by a :data:`Draw` so that a ``numpy.random.Generator`` and a
``random.Random`` consume exactly the draws they always did:

* :func:`syllables` — one entry from each pool, in order, concatenated (``"v" "ae" "lm" "ir"``);
* :func:`fresh_word` — redraw until a word is neither used nor forbidden (a real English word);
* :class:`AffinePermutation` — ``i ↦ (a·i + b) mod m`` with ``gcd(a, m) = 1``, a bijection of
  ``[0, m)``: the ``i``-th entity gets a name no other entity has, without storing any;
* :func:`digits` / :func:`spell` — a number in a mixed-radix space, one digit per pool, so a
  permuted index becomes one name of the product of the pools.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

__all__ = ["AffinePermutation", "Draw", "digits", "fresh_word", "numpy_draw", "random_draw", "spell", "syllables"]

Draw = Callable[[int], int]
"""``draw(n)``: an integer in ``[0, n)`` from a seeded RNG (see :func:`numpy_draw`, :func:`random_draw`)."""

Index = TypeVar("Index", int, np.ndarray)


def numpy_draw(rng: np.random.Generator) -> Draw:
    """Draws from a numpy generator: ``draw(n) == int(rng.integers(n))``."""
    return lambda n: int(rng.integers(n))


def random_draw(rng: random.Random) -> Draw:
    """Draws from a ``random.Random``: ``draw(n) == rng.randrange(n)`` (the draw ``rng.choice`` makes)."""
    return rng.randrange


def syllables(draw: Draw, pools: Sequence[Sequence[str]]) -> str:
    """One entry of each pool, drawn in order and concatenated."""
    return "".join(pool[draw(len(pool))] for pool in pools)


def fresh_word(
    make: Callable[[], str],
    used: set[str],
    forbidden: AbstractSet[str] = frozenset(),
    *,
    max_tries: int = 10_000,
) -> str:
    """The first word ``make()`` returns that is in neither ``used`` nor ``forbidden``; added to ``used``.

    Raises ``ValueError`` after ``max_tries`` rejected words: the pools are too small for the
    number of names asked for (make fewer names, or give the generator larger pools).
    """
    for _ in range(max_tries):
        word = make()
        if word not in used and word not in forbidden:
            used.add(word)
            return word
    raise ValueError(
        f"no new word after {max_tries} tries ({len(used)} in use): the syllable pools are exhausted; "
        "ask for fewer names or use larger pools"
    )


def coprime(draw: Draw, modulus: int) -> int:
    """A number in ``[1, max(2, modulus))`` coprime to ``modulus``, drawn until one is."""
    while True:
        candidate = 1 + draw(max(1, modulus - 1))
        if math.gcd(candidate, modulus) == 1:
            return candidate


@dataclass(frozen=True, slots=True)
class AffinePermutation:
    """``i ↦ (scale·i + shift) mod size`` with ``gcd(scale, size) = 1``: a bijection of ``[0, size)``.

    Applied to an ``int`` or elementwise to a numpy integer array.
    """

    size: int
    scale: int
    shift: int

    @classmethod
    def drawn(cls, draw: Draw, size: int) -> AffinePermutation:
        """A random permutation of ``[0, size)``: the scale is drawn first, then the shift."""
        scale = coprime(draw, size)
        return cls(size, scale, draw(size))

    def __call__(self, index: Index) -> Index:
        return (self.scale * index + self.shift) % self.size


def digits(value: Index, radices: Sequence[int]) -> list[Index]:
    """The mixed-radix digits of ``value``, least significant first (``value < prod(radices)``)."""
    out: list[Index] = []
    for radix in radices:
        value, digit = divmod(value, radix)
        out.append(digit)
    return out


def spell(index: int, pools: Sequence[Sequence[str]]) -> str:
    """Word ``index`` of the product of ``pools`` (first pool = least significant digit), concatenated."""
    return "".join(pool[d] for pool, d in zip(pools, digits(index, [len(p) for p in pools]), strict=True))
