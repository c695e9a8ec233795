"""An env's ``np_random`` after ``reset(seed=s)`` is Gymnasium's ``seeding.np_random(s)``, draw for draw."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from gymnasium import error
from gymnasium.utils import seeding

from horizongym.envs.base import Task, TextEnv
from horizongym.envs.seeding import SeedSequence, np_random

BIG_SEEDS = [2**32 - 1, 2**32, 2**32 + 12345, 2**63 + 1, 2**64 - 1, 2**64, 2**64 + 987654321, 2**128 + 5, 3**200]


def sampled_seeds() -> list[int]:
    rng = random.Random(7)
    return [0, 1, 2, 10**6, *(rng.randrange(10**6) for _ in range(300)), *BIG_SEEDS]


def draws(generator: np.random.Generator) -> list[Any]:
    """Many draws of several kinds, so that any difference in the stream shows."""
    return [
        generator.integers(0, 2**63, 64).tolist(),
        generator.integers(1, 51, 16).tolist(),
        generator.random(16).tolist(),
        generator.standard_normal(8).tolist(),
        generator.permutation(20).tolist(),
        generator.bit_generator.random_raw(32).tolist(),
    ]


def test_the_generator_and_seed_are_gymnasiums() -> None:
    for seed in sampled_seeds():
        ours, our_seed = np_random(seed)
        theirs, their_seed = seeding.np_random(seed)
        assert our_seed == their_seed == seed
        assert ours.bit_generator.state == theirs.bit_generator.state, seed
        assert draws(ours) == draws(theirs), seed


@pytest.mark.parametrize("seed", [0, 41, *BIG_SEEDS])
def test_the_state_words_are_numpys_and_other_requests_go_to_numpy(seed: int) -> None:
    ours, theirs = SeedSequence(seed), np.random.SeedSequence(seed)
    assert ours.generate_state(4, np.uint64).tolist() == theirs.generate_state(4, np.uint64).tolist()
    for n_words, dtype in ((4, np.uint32), (8, np.uint64), (3, np.uint64)):
        assert ours.generate_state(n_words, dtype).tolist() == theirs.generate_state(n_words, dtype).tolist()
    assert SeedSequence(seed, pool_size=8).generate_state(4, np.uint64).tolist() == (
        np.random.SeedSequence(seed, pool_size=8).generate_state(4, np.uint64).tolist()
    )


def test_spawned_generators_are_gymnasiums() -> None:
    ours, theirs = np_random(123)[0].spawn(3), seeding.np_random(123)[0].spawn(3)
    assert [draws(g) for g in ours] == [draws(g) for g in theirs]
    our_child, their_child = ours[0].bit_generator.seed_seq, theirs[0].bit_generator.seed_seq
    assert isinstance(our_child, np.random.SeedSequence) and isinstance(their_child, np.random.SeedSequence)
    assert our_child.spawn_key == their_child.spawn_key == (0,)


def test_seeds_that_are_not_non_negative_ints_get_gymnasiums_answer() -> None:
    with pytest.raises(error.Error, match="greater or equal to zero"):
        np_random(-1)
    with pytest.raises(error.Error, match="must be a python integer"):
        np_random(1.5)  # type: ignore[arg-type]
    generator, seed = np_random(None)
    assert isinstance(generator, np.random.Generator) and isinstance(seed, int)


class DrawingEnv(TextEnv):
    """Draws its task with ``np_random``."""

    tool_instructions = False

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id=str(self.np_random.integers(10**9)), prompt="")

    def on_text(self, text: str) -> str:
        return text


def test_reset_seeds_np_random_as_gymnasium_does() -> None:
    env = DrawingEnv()
    for seed in (0, 5, 999_999, 2**40, 2**70):
        env.reset(seed=seed)
        assert env.np_random_seed == seed
        expected = seeding.np_random(seed)[0]
        expected.integers(10**9)  # the task's draw
        assert draws(env.np_random) == draws(expected)
    state = env.np_random.bit_generator.state
    env.reset()  # no seed: the generator goes on
    assert env.np_random_seed == 2**70 and env.np_random.bit_generator.state != state
