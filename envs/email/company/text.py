"""The company's invented words and text: names, story code names, and Zipf-distributed filler.

* :func:`invent_word` — an unused onset-vowel-onset-ending word (company, surname, client, vendor).
* :class:`CodeNames` — story ``i``'s code name is word ``perm(i)`` of the space
  ``ONSETS × VOWELS × ONSETS × VOWELS × CODE_ENDS``, ``perm`` an affine permutation: unique
  per story without storing any.
* :class:`Vocabulary` — about 30,000 words, common English and business words first, then an
  invented long tail; filler sentences draw words with weight ``1/(rank + 2.7)^1.07``
  (a Zipf–Mandelbrot law), so keyword search meets realistic word frequencies.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from horizongym.envs.email.company.vocabulary import CODE_ENDS, COMMON, ONSETS, TAIL_END, TAIL_ONSET, TAIL_VOWEL, VOWELS
from horizongym.envs.synthetic_names import AffinePermutation, fresh_word, random_draw, spell, syllables

__all__ = ["CodeNames", "Vocabulary", "invent_word"]

_CODE_POOLS = (ONSETS, VOWELS, ONSETS, VOWELS, CODE_ENDS)
_VOCABULARY_SIZE = 30_000


def invent_word(rng: random.Random, endings: Sequence[str], used: set[str]) -> str:
    """A capitalised word ``onset + vowel + onset + ending`` not in ``used`` (lower case; the word is added)."""
    draw = random_draw(rng)
    return fresh_word(lambda: syllables(draw, (ONSETS, VOWELS, ONSETS, endings)), used).capitalize()


class CodeNames:
    """Unique code names for stories: ``codename(i)`` differs for every ``i`` below the space's size."""

    def __init__(self, rng: random.Random) -> None:
        size = 1
        for pool in _CODE_POOLS:
            size *= len(pool)
        self.perm = AffinePermutation.drawn(random_draw(rng), size)

    def codename(self, index: int) -> str:
        """The code name of story ``index`` ("Drakeivik")."""
        return spell(self.perm(index), _CODE_POOLS).capitalize()


class Vocabulary:
    """The filler vocabulary, drawn from ``rng``, and its cumulative Zipf–Mandelbrot weights."""

    def __init__(self, rng: random.Random) -> None:
        draw = random_draw(rng)

        def tail_word() -> str:
            word = syllables(draw, (TAIL_ONSET, TAIL_VOWEL, TAIL_ONSET[:17], TAIL_END))
            return syllables(draw, (TAIL_ONSET, TAIL_VOWEL)) + word if rng.random() < 0.5 else word

        self.words = list(dict.fromkeys(COMMON))
        seen = set(self.words)
        while len(self.words) < _VOCABULARY_SIZE:
            self.words.append(fresh_word(tail_word, seen))
        self.cum_weights = list(itertools.accumulate(1.0 / (r + 2.7) ** 1.07 for r in range(len(self.words))))

    def filler(self, rng: random.Random, sentences: int) -> str:
        """``sentences`` sentences of 5 to 16 words drawn by weight (one in ten a question)."""
        out = []
        for _ in range(sentences):
            words = rng.choices(self.words, cum_weights=self.cum_weights, k=rng.randint(5, 16))
            out.append(words[0].capitalize() + " " + " ".join(words[1:]) + ("?" if rng.random() < 0.1 else "."))
        return " ".join(out)
