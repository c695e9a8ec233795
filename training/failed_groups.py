"""Keep infrastructure failures out of training: re-roll or drop every task group that holds one.

A group-relative estimator (GRPO, EAPO) compares the episodes of one task: a zero reward the
policy did not earn (a killed container, a lost server) lowers the group's baseline and so
raises every other member's advantage. The rollout engine already retries a retryable failure
on a fresh env; a group that still holds an ``infra_error`` episode is, by ``mode``:

* ``reroll``: played again whole (same task seed), up to ``max_rerolls`` times, then dropped;
* ``drop``: left out of the step whole.

Episodes that failed otherwise (``env_error``, ``policy_error``) are not the policy's doing
either: the trainer leaves them out of their group's statistics and of the loss
(:attr:`~horizongym.training.rollouts.trajectory.Episode.trainable`), counted per step. The
same cut as NeMo Gym's failure semantics, SkyRL's skipping of failed rollouts and prime-rl's
masking of failed groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from horizongym.training.rollouts.trajectory import Episode

InfraFailureMode = Literal["reroll", "drop"]


@dataclass
class SettledGroups:
    """The episodes of a step after infrastructure failures were settled, and what it took."""

    kept: list[Episode]
    """The groups free of infrastructure failures, sorted by key: what the step trains on."""
    dropped: list[Episode] = field(default_factory=list)
    """The episodes of groups that still held an infrastructure failure."""
    infra_episodes: int = 0
    """Episodes that ended in ``infra_error``, over every try."""
    groups_rerolled: int = 0
    groups_dropped: int = 0

    def merged(self, other: SettledGroups) -> SettledGroups:
        """This step's groups and ``other``'s (groups of other task seeds), as one."""
        return SettledGroups(
            kept=sorted([*self.kept, *other.kept], key=lambda e: e.key),
            dropped=[*self.dropped, *other.dropped],
            infra_episodes=self.infra_episodes + other.infra_episodes,
            groups_rerolled=self.groups_rerolled + other.groups_rerolled,
            groups_dropped=self.groups_dropped + other.groups_dropped,
        )

    def counts(self) -> dict[str, int]:
        """The figures a training step logs."""
        return {
            "infra_episodes": self.infra_episodes,
            "groups_rerolled": self.groups_rerolled,
            "groups_dropped": self.groups_dropped,
        }


def settle_infra_failures(
    episodes: Sequence[Episode],
    rerun: Callable[[list[int]], list[Episode]],
    *,
    mode: InfraFailureMode = "reroll",
    max_rerolls: int = 2,
) -> SettledGroups:
    """Re-roll (``rerun(task_seeds)`` plays those groups again) or drop the groups with an infra failure."""
    groups: dict[int, list[Episode]] = {}
    for episode in episodes:
        groups.setdefault(episode.seed, []).append(episode)
    settled = SettledGroups(kept=[])
    settled.infra_episodes = _infra_count(episodes)
    failed = sorted(seed for seed, members in groups.items() if _has_infra_failure(members))
    rerolls = max_rerolls if mode == "reroll" else 0
    for _ in range(rerolls):
        if not failed:
            break
        settled.groups_rerolled += len(failed)
        replayed = rerun(failed)
        settled.infra_episodes += _infra_count(replayed)
        for seed in failed:
            groups[seed] = []
        for episode in replayed:
            groups[episode.seed].append(episode)
        failed = [seed for seed in failed if _has_infra_failure(groups[seed])]
    for seed in failed:
        settled.dropped.extend(groups.pop(seed))
    settled.groups_dropped = len(failed)
    settled.kept = sorted((e for members in groups.values() for e in members), key=lambda e: e.key)
    return settled


def _has_infra_failure(members: Sequence[Episode]) -> bool:
    return any(e.outcome == "infra_error" for e in members)


def _infra_count(episodes: Sequence[Episode]) -> int:
    return sum(e.outcome == "infra_error" for e in episodes)
