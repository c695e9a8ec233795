"""An env's ``np_random`` for ``reset(seed=s)``: Gymnasium's generator, built in two thirds of the time.

Gymnasium seeds ``np_random`` with :func:`gymnasium.utils.seeding.np_random`:
``Generator(PCG64(SeedSequence(s)))``, and ``reset(seed=s)`` does so for every episode (about
16 µs). PCG64 seeds itself from ``seed_seq.generate_state(4, np.uint64)``, which in numpy costs
about 8 µs for eight 32-bit hashes, mostly Python-level overhead around them.
:class:`SeedSequence` is numpy's SeedSequence with that one call computed here, from the same
pool with the same arithmetic, so the generator, its ``bit_generator.seed_seq`` (a SeedSequence
of the same entropy) and every draw are those of Gymnasium's; tests compare them.

The hash, from numpy's ``SeedSequence.generate_state`` (numpy/random/bit_generator.pyx, after
Melissa O'Neill's ``seed_seq_fe``): output word ``i`` takes pool word ``i mod pool_size``,
``value ^= h; h *= MULT_B; value *= h; value ^= value >> 16`` (all modulo 2**32, ``h`` starting
at INIT_B), and pairs of words, little end first, make each 64-bit word.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding

_MASK32 = 0xFFFFFFFF
_INIT_B = 0x8B51F9DD
_MULT_B = 0x58F38DED


def _hash_constants(count: int) -> list[tuple[int, int]]:
    """The (xor, multiplier) pair of each of the first ``count`` output words: ``h`` before and after its update."""
    pairs, h = [], _INIT_B
    for _ in range(count):
        after = h * _MULT_B & _MASK32
        pairs.append((h, after))
        h = after
    return pairs


(_X0, _M0), (_X1, _M1), (_X2, _M2), (_X3, _M3), (_X4, _M4), (_X5, _M5), (_X6, _M6), (_X7, _M7) = _hash_constants(8)
_uint64 = np.uint64


class SeedSequence(np.random.SeedSequence):
    """numpy's SeedSequence, whose ``generate_state(4, np.uint64)`` (what PCG64 asks) is computed directly."""

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray[Any, Any]:
        if n_words != 4 or dtype is not _uint64 or self.pool_size != 4:
            return super().generate_state(n_words, dtype)
        p0, p1, p2, p3 = self.pool.tolist()
        # the eight hashes unrolled, each with its constants (a loop costs twice as much)
        v0 = (p0 ^ _X0) * _M0 & _MASK32
        v1 = (p1 ^ _X1) * _M1 & _MASK32
        v2 = (p2 ^ _X2) * _M2 & _MASK32
        v3 = (p3 ^ _X3) * _M3 & _MASK32
        v4 = (p0 ^ _X4) * _M4 & _MASK32
        v5 = (p1 ^ _X5) * _M5 & _MASK32
        v6 = (p2 ^ _X6) * _M6 & _MASK32
        v7 = (p3 ^ _X7) * _M7 & _MASK32
        words = [
            (v0 ^ v0 >> 16) | (v1 ^ v1 >> 16) << 32,
            (v2 ^ v2 >> 16) | (v3 ^ v3 >> 16) << 32,
            (v4 ^ v4 >> 16) | (v5 ^ v5 >> 16) << 32,
            (v6 ^ v6 >> 16) | (v7 ^ v7 >> 16) << 32,
        ]
        return np.array(words, dtype=_uint64)


def np_random(seed: int | None) -> tuple[np.random.Generator, int]:
    """``(generator, seed)`` equal to :func:`gymnasium.utils.seeding.np_random` (``seed``)'s, draw for draw.

    A seed that is not a non-negative ``int`` (``None`` included) goes to Gymnasium's function,
    which draws a random seed or raises its usual error.
    """
    if type(seed) is not int or seed < 0:
        return seeding.np_random(seed)
    return np.random.Generator(np.random.PCG64(SeedSequence(seed))), seed
