"""The advantage each stored turn was credited with (``Step.advantage``), for a run's episode file.

The trainer estimates one advantage per turn for the episodes it learns from (``advantages[e][t]``,
the estimators' layout). A branch's turns 1..``shared[e]`` are its parent's and are trained once, as
the parent's: they are stored with the value of the turn's owner (the parent's, or further up the
tree when the parent's own turn is shared too). Every turn of an episode not learned from (an
infrastructure, env or policy failure, or a group dropped as a whole) is stored with ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence

from horizongym.training.rollouts.trajectory import Episode

_Key = tuple[int, int, int]
"""An episode of a step: its task seed, sample and branch."""


def credited(
    played: Sequence[Episode],
    trained: Sequence[Episode],
    advantages: Sequence[Sequence[float]],
    shared: Sequence[int],
) -> list[Episode]:
    """Copies of ``played`` (in order) whose steps carry the advantage they were credited with.

    ``trained`` are the episodes learned from, ``advantages`` their per-turn rows and ``shared`` their
    leading turns owned by their parent (``trainer.shared_turns``); each is a subset of ``played``.
    """
    rows: dict[_Key, tuple[Episode, Sequence[float], int]] = {
        (e.seed, e.sample, e.branch): (e, row, owned_by_parent)
        for e, row, owned_by_parent in zip(trained, advantages, shared, strict=True)
    }

    def value(key: _Key, turn: int) -> float | None:
        entry = rows.get(key)
        if entry is None:
            return None
        episode, row, owned_by_parent = entry
        if turn < owned_by_parent:
            return value((episode.seed, episode.sample, episode.parent_branch or 0), turn)
        return float(row[turn])

    out = []
    for episode in played:
        key = (episode.seed, episode.sample, episode.branch)
        steps = [step.model_copy(update={"advantage": value(key, index)}) for index, step in enumerate(episode.steps)]
        out.append(episode.model_copy(update={"steps": steps}))
    return out
