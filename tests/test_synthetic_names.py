"""The shared name machinery: seeded draws, unique words, permutations of name spaces."""

from __future__ import annotations

import ast
import importlib
import random
from pathlib import Path

import numpy as np
import pytest

from horizongym.cache import source_files
from horizongym.envs.synthetic_names import (
    AffinePermutation,
    digits,
    fresh_word,
    numpy_draw,
    random_draw,
    spell,
    syllables,
)

POOLS = (["b", "d", "k"], ["a", "ei"], ["l", "r"], ["in", "os", "ar"])


def test_draws_are_the_rngs_own_draws() -> None:
    a, b = random.Random(7), random.Random(7)
    assert [syllables(random_draw(a), POOLS) for _ in range(50)] == [
        "".join(b.choice(pool) for pool in POOLS) for _ in range(50)
    ]
    g, h = np.random.default_rng(3), np.random.default_rng(3)
    draw = numpy_draw(g)
    assert [draw(17) for _ in range(50)] == [int(h.integers(17)) for _ in range(50)]


def test_fresh_word_never_repeats_and_skips_forbidden_words() -> None:
    draw = random_draw(random.Random(1))
    used: set[str] = set()
    words = [fresh_word(lambda: syllables(draw, POOLS), used, {"balin"}) for _ in range(30)]
    assert len(set(words)) == 30 and "balin" not in words and set(words) == used


def test_fresh_word_says_when_the_pools_are_exhausted() -> None:
    draw = random_draw(random.Random(1))
    used: set[str] = set()
    for _ in range(36):  # 3 * 2 * 2 * 3 words in all
        fresh_word(lambda: syllables(draw, POOLS), used)
    with pytest.raises(ValueError, match="exhausted"):
        fresh_word(lambda: syllables(draw, POOLS), used, max_tries=500)


@pytest.mark.parametrize("size", [1, 2, 36, 1000, 97 * 89])
def test_affine_permutation_is_a_bijection_for_ints_and_arrays(size: int) -> None:
    perm = AffinePermutation.drawn(random_draw(random.Random(size)), size)
    images = perm(np.arange(size, dtype=np.int64))
    assert sorted(images.tolist()) == list(range(size))
    assert [perm(i) for i in range(min(size, 50))] == images[:50].tolist()


def test_spell_enumerates_the_product_of_the_pools() -> None:
    words = [spell(i, POOLS) for i in range(36)]
    assert len(set(words)) == 36 and words[0] == "balin" and words[1] == "dalin"
    assert digits(np.array([0, 1, 35]), [3, 2, 2, 3])[3].tolist() == [0, 0, 2]


@pytest.mark.parametrize("package", ["horizongym.envs.search.world", "horizongym.envs.email.company"])
def test_generator_cache_keys_cover_every_module_the_data_comes_from(package: str) -> None:
    """``SOURCE_MODULES`` (what the cache keys hash) holds the whole package and every module it imports."""
    source_modules = importlib.import_module(package).SOURCE_MODULES
    hashed = {path for _, path in source_files(*source_modules)}
    folder = Path(importlib.import_module(package).__file__ or "").parent
    for path in folder.glob("*.py"):
        assert path in hashed
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("horizongym."):
                imported = Path(importlib.import_module(node.module or "").__file__ or "")
                assert imported in hashed, f"{path.name} imports {node.module}, missing from SOURCE_MODULES"
