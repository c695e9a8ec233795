"""Tree advantages: a turn's credit is its subtree's return against the sibling branches at that fork.

A group may hold a tree: an episode forked from another (``parent``, its index in the group) shares
the turns 1..k = ``fork_turn`` with its parent and acts on its own from turn k + 1 on. Every
episode of the group starts from the same task state, so the trunks are siblings at turn 1.

    owner(i, t) = i if t > fork_turn_i, else owner(parent_i, t);   owner(i, 0) = ROOT for every i
    return_j(t) = γ^(T_j − t) · R_j                                   (γ = 1: the outcome)

For an own turn t of episode i (t > fork_turn_i), the siblings at that fork are the distinct
actions taken at t from the same node:

    S     = { owner(j, t) : T_j ≥ t and owner(j, t − 1) = owner(i, t − 1) }
    v_o   = mean { return_j(t) : owner(j, t) = o }                    (the subtree that took o's action)
    A_i,t = (v_i − mean_{o∈S} v_o) / (std_{o∈S} v_o + ε)             if |S| ≥ 2 (population std, ε = 1e-6)

with ``normalize_std=False`` only the mean is subtracted. An episode that ended before turn t
(T_j < t) is not in any later sibling set. A turn without siblings (|S| = 1) takes the fallback
estimator's value for (i, t), computed over the whole group: ``"grpo"`` (default) or ``"eapo"``
(with the same γ, so the tree composes with EAPO's discount). A shared turn t ≤ fork_turn_i gets
its owner's value, A_i,t = A_owner(i,t),t, so the [episode][turn] shape is that of every other
estimator; a trainer that trains each distinct turn once reads only the own turns.

Without any fork the sibling set at turn 1 is the G trunks (A = GRPO's value there) and every
later turn has no sibling, so with γ = 1 and the GRPO fallback the estimator equals GRPO.

Sources: Hou et al. 2025, "TreeRL: LLM Reinforcement Learning with On-Policy Tree Search",
arXiv:2506.11902; Ji et al. 2025, "Tree Search for LLM Agent Reinforcement Learning" (Tree-GRPO),
arXiv:2509.21240. Both estimate a step's value from the returns of the subtrees below it and
credit a node relative to its siblings. Differences: TreeRL adds a global term (the node's value
against the root's) to the local sibling term and spreads a node's advantage over its tokens;
Tree-GRPO sums an intra-tree (sibling) and an inter-tree (group) normalised advantage for every
leaf path. Here each turn gets exactly one term: the sibling-relative value where the turn has
siblings, and the group estimator only where it has none, normalised per fork (not per tree or
group); and returns may be discounted per turn as in EAPO.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from horizongym.training.advantages.base import DEFAULT_EPS, Advantages, EpisodeCredit, check_group, normalize
from horizongym.training.advantages.eapo import eapo
from horizongym.training.advantages.grpo import grpo

ROOT = -1
"""owner(i, 0) for every episode: the task's start state, shared by the whole group."""

FALLBACKS = ("grpo", "eapo")


def check_tree(group: Sequence[EpisodeCredit]) -> None:
    """Raise ValueError unless every ``parent`` is another episode of the group, the parent links have
    no cycle and each parent has a turn after the fork (at least fork_turn + 1 turns)."""
    for index, episode in enumerate(group):
        parent = episode.parent
        if parent is None:
            continue
        if isinstance(parent, bool) or not isinstance(parent, int) or not 0 <= parent < len(group):
            raise ValueError(f"episode {index}: parent {parent!r} is not an index into the group (0..{len(group) - 1})")
        if group[parent].num_turns < episode.fork_turn + 1:
            raise ValueError(
                f"episode {index} forks after turn {episode.fork_turn} of episode {parent}, "
                f"which has only {group[parent].num_turns} turns; a parent needs at least fork_turn + 1 turns"
            )
    for index in range(len(group)):
        seen = {index}
        node = group[index].parent
        while node is not None:
            if node in seen:
                raise ValueError(f"episode {index}: the parent links form a cycle through episode {node}")
            seen.add(node)
            node = group[node].parent


def owners(group: Sequence[EpisodeCredit]) -> list[list[int]]:
    """owner(i, t) for t = 0..T_i as rows [i][t]: the episode whose own action turn t of episode i is."""
    table: dict[int, list[int]] = {}

    def row(index: int) -> list[int]:
        if index not in table:
            episode = group[index]
            inherited = row(episode.parent)[: episode.fork_turn + 1] if episode.parent is not None else [ROOT]
            table[index] = inherited + [index] * (episode.num_turns - episode.fork_turn)
        return table[index]

    return [row(index) for index in range(len(group))]


def tree(
    group: Sequence[EpisodeCredit],
    *,
    gamma: float = 1.0,
    fallback: str = "grpo",
    normalize_std: bool = True,
    eps: float = DEFAULT_EPS,
) -> Advantages:
    """Per-turn tree advantages: subtree value against the sibling branches at each fork, else the fallback."""
    check_group(group)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
    if fallback == "eapo" and not normalize_std:
        raise ValueError("normalize_std=False has no EAPO counterpart; use fallback='grpo' or normalize_std=True")
    check_tree(group)
    owner = owners(group)
    if fallback == "grpo":
        backup = grpo(group, normalize_std=normalize_std, eps=eps)
    else:
        backup = eapo(group, gamma=gamma, eps=eps)

    horizon = max(episode.num_turns for episode in group)
    value: list[dict[int, float]] = [{} for _ in range(horizon + 1)]
    """value[t][o]: the advantage of owner o's own action at turn t."""
    for t in range(1, horizon + 1):
        # node (owner at t − 1) -> action owner at t -> returns at t of the episodes below it
        forks: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for j, episode in enumerate(group):
            if episode.num_turns >= t:
                forks[owner[j][t - 1]][owner[j][t]].append(gamma ** (episode.num_turns - t) * episode.reward)
        for branches in forks.values():
            names = sorted(branches)
            if len(names) < 2:
                value[t][names[0]] = backup[names[0]][t - 1]
                continue
            means = [sum(branches[o]) / len(branches[o]) for o in names]
            for o, a in zip(names, normalize(means, eps=eps, scale=normalize_std), strict=True):
                value[t][o] = a
    return [[value[t][owner[i][t]] for t in range(1, episode.num_turns + 1)] for i, episode in enumerate(group)]
