"""The tree advantage estimator against hand-computed trees."""

from __future__ import annotations

import random

import pytest

from horizongym.training.advantages import EpisodeCredit, check_options, estimate, grpo, tree
from horizongym.training.advantages.tree import owners

E = EpisodeCredit


def approx(rows: list[list[float]]) -> list[list[object]]:
    return [[pytest.approx(a, abs=1e-5) for a in row] for row in rows]


def test_trunk_with_two_branches_at_turn_2() -> None:
    # Trunk 0 (T 4, R 1); branches 1 (T 4, R 0) and 2 (T 3, R 0) share turn 1 and act on their own from turn 2.
    # GRPO fallback: R = [1, 0, 0], mean 1/3, std √(2/9) = 0.471405 -> [1.414214, -0.707107, -0.707107].
    # Turn 1: one action from the root (the trunk's) -> the trunk's fallback 1.414214, on every episode.
    # Turn 2: siblings {0, 1, 2} with v = [1, 0, 0] -> (v − 1/3) / 0.471405 = [1.414214, -0.707107, -0.707107].
    # Turns 3, 4: no siblings -> each episode's own GRPO value.
    group = [E(1.0, 4), E(0.0, 4, parent=0, fork_turn=1), E(0.0, 3, parent=0, fork_turn=1)]
    assert tree(group) == approx(
        [
            [1.414214, 1.414214, 1.414214, 1.414214],
            [1.414214, -0.707107, -0.707107, -0.707107],
            [1.414214, -0.707107, -0.707107],
        ]
    )
    # No std division: v − mean at the fork, R − mean on the fallback turns.
    assert tree(group, normalize_std=False) == approx(
        [[2 / 3] * 4, [2 / 3, -1 / 3, -1 / 3, -1 / 3], [2 / 3, -1 / 3, -1 / 3]]
    )


def test_two_level_tree() -> None:
    # 0: trunk (R 1); 1: forked from 0 after turn 1 (R 0); 2: forked from 1 after turn 2 (R 1);
    # 3: forked from 0 after turn 2 (R 1); all T = 4.
    # owners: 0 -> [0 0 0 0], 1 -> [0 1 1 1], 2 -> [0 1 2 2], 3 -> [0 0 3 3].
    # GRPO: R = [1, 0, 1, 1], mean .75, std .433013 -> [0.577350, -1.732051, 0.577350, 0.577350].
    # t 1: one action (0's) -> 0.577350 everywhere.
    # t 2, node 0: subtree of 0 = {0, 3} v = 1, subtree of 1 = {1, 2} v = 0.5 -> ±0.25 / 0.25 = ±0.999996.
    # t 3, node 0: {0: 1, 3: 1} equal -> 0; node 1: {1: 0, 2: 1} -> ∓0.999998.
    # t 4: every node has one action -> GRPO.
    group = [
        E(1.0, 4),
        E(0.0, 4, parent=0, fork_turn=1),
        E(1.0, 4, parent=1, fork_turn=2),
        E(1.0, 4, parent=0, fork_turn=2),
    ]
    assert owners(group) == [[-1, 0, 0, 0, 0], [-1, 0, 1, 1, 1], [-1, 0, 1, 2, 2], [-1, 0, 0, 3, 3]]
    assert tree(group) == approx(
        [
            [0.577350, 0.999996, 0.0, 0.577350],
            [0.577350, -0.999996, -0.999998, -1.732051],
            [0.577350, -0.999996, 0.999998, 0.577350],
            [0.577350, 0.999996, 0.0, 0.577350],
        ]
    )


def test_two_trunks_are_siblings_at_turn_1() -> None:
    # Trunks 0 (R 1) and 1 (R 0); 2 forked from 0 after turn 1 (R 1); 3 forked from 1 after turn 2 (R 1); T = 3.
    # GRPO: R = [1, 0, 1, 1] -> [0.577350, -1.732051, 0.577350, 0.577350].
    # t 1, root: subtree of 0 = {0, 2} v = 1, subtree of 1 = {1, 3} v = 0.5 -> ±0.999996.
    # t 2, node 0: {0: 1, 2: 1} -> 0; node 1: one action (1's, shared by 3) -> 1's GRPO -1.732051 on both.
    # t 3: nodes 0 and 2 alone -> GRPO 0.577350; node 1: {1: 0, 3: 1} -> ∓0.999998.
    group = [E(1.0, 3), E(0.0, 3), E(1.0, 3, parent=0, fork_turn=1), E(1.0, 3, parent=1, fork_turn=2)]
    assert tree(group) == approx(
        [
            [0.999996, 0.0, 0.577350],
            [-0.999996, -1.732051, -0.999998],
            [0.999996, 0.0, 0.577350],
            [-0.999996, -1.732051, 0.999998],
        ]
    )


def test_no_tree_equals_grpo() -> None:
    rng = random.Random(0)
    for _ in range(20):
        group = [E(rng.choice([0.0, 0.5, 1.0, 2.0]), rng.randint(1, 6)) for _ in range(rng.randint(1, 7))]
        assert tree(group) == approx(grpo(group))
        assert tree(group, normalize_std=False) == approx(grpo(group, normalize_std=False))
        assert estimate("tree", group) == tree(group)


def test_gamma_below_1_credits_the_shorter_branch() -> None:
    # Trunk 0 (T 3, R 1) and 1 forked after turn 1 (T 2, R 1); γ = 0.5.
    # t 2, node 0: return_0(2) = 0.5^(3−2) = 0.5, return_1(2) = 0.5^0 = 1 -> ∓0.25 / (0.25 + ε) = ∓0.999996.
    # GRPO fallback: equal outcomes -> 0 on turns 1 and 3.
    group = [E(1.0, 3), E(1.0, 2, parent=0, fork_turn=1)]
    assert tree(group, gamma=0.5) == approx([[0.0, -0.999996, 0.0], [0.0, 0.999996]])
    # EAPO fallback with the same γ: rounds' rewards [0.25, 0.5, 1] and [0.5, 1], mean 0.65, std 0.3
    # -> [-1.333333, -0.5, 1.166667] and [-0.5, 1.166667]; turn 1 is the trunk's (-1.333333), turn 3 the trunk's own.
    assert tree(group, gamma=0.5, fallback="eapo") == approx([[-1.333333, -0.999996, 1.166667], [-1.333333, 0.999996]])


def test_ended_episode_is_not_a_later_sibling() -> None:
    # 0: trunk (T 4, R 1); 1: forked from 0 after turn 1, ends at turn 2 (R 0); 2: forked from 0 after turn 1
    # (T 4, R 0); 3: forked from 2 after turn 2 (T 4, R 1). GRPO: R = [1, 0, 0, 1] -> ±0.999998.
    # t 2, node 0: v = {0: 1, 1: 0, 2: mean(0, 1) = 0.5}, mean 0.5, std 0.408248 -> [1.224742, -1.224742, 0].
    # t 3: 1 has ended; node 2: {2: 0, 3: 1} -> ∓0.999998 (two siblings, not three); node 0 alone -> GRPO.
    group = [
        E(1.0, 4),
        E(0.0, 2, parent=0, fork_turn=1),
        E(0.0, 4, parent=0, fork_turn=1),
        E(1.0, 4, parent=2, fork_turn=2),
    ]
    assert tree(group) == approx(
        [
            [0.999998, 1.224742, 0.999998, 0.999998],
            [0.999998, -1.224742],
            [0.999998, 0.0, -0.999998, -0.999998],
            [0.999998, 0.0, 0.999998, 0.999998],
        ]
    )


def test_shared_turns_take_their_owners_value() -> None:
    rng = random.Random(1)
    for _ in range(30):
        group: list[EpisodeCredit] = []
        for index in range(rng.randint(1, 8)):
            parents = [p for p in range(index) if group[p].num_turns >= 2]
            if parents and rng.random() < 0.7:
                parent = rng.choice(parents)
                fork = rng.randint(1, group[parent].num_turns - 1)
                group.append(E(rng.random(), rng.randint(fork + 1, fork + 4), parent=parent, fork_turn=fork))
            else:
                group.append(E(rng.random(), rng.randint(1, 5)))
        advantages = tree(group, gamma=rng.choice([1.0, 0.9]))
        owner = owners(group)
        assert [len(row) for row in advantages] == [ep.num_turns for ep in group]
        for i, episode in enumerate(group):
            for t in range(1, episode.fork_turn + 1):
                assert advantages[i][t - 1] == advantages[owner[i][t]][t - 1]


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ([E(1.0, 2), E(0.0, 2, parent=2, fork_turn=1)], "parent 2 is not an index into the group"),
        ([E(1.0, 2), E(0.0, 2, parent=-1, fork_turn=1)], "parent -1 is not an index"),
        ([E(1.0, 2, parent=0, fork_turn=1)], "cycle"),
        ([E(1.0, 3, parent=1, fork_turn=1), E(0.0, 3, parent=0, fork_turn=1)], "cycle"),
        ([E(1.0, 2), E(0.0, 4, parent=0, fork_turn=2)], "has only 2 turns; a parent needs at least fork_turn \\+ 1"),
    ],
)
def test_invalid_trees_are_rejected(group: list[EpisodeCredit], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tree(group)


def test_options_are_checked() -> None:
    check_options("tree", {})
    check_options("tree", {"gamma": 0.9, "fallback": "eapo"})
    with pytest.raises(ValueError, match="fallback must be one of grpo, eapo"):
        check_options("tree", {"fallback": "hcapo"})
    with pytest.raises(ValueError, match="gamma must be in"):
        check_options("tree", {"gamma": 1.5})
    with pytest.raises(ValueError, match="no EAPO counterpart"):
        check_options("tree", {"fallback": "eapo", "normalize_std": False})
    with pytest.raises(ValueError, match="do not suit the tree estimator"):
        check_options("tree", {"branches": 4})
