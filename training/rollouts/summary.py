"""Summaries of stored episodes: the table ``horizongym show`` prints.

Reward, success, turns and tokens are the policy's figures: they count only the episodes whose
outcome the policy earned (completed or truncated). Episodes that failed otherwise (infrastructure,
env or policy errors) are counted by outcome, never averaged in as zero rewards.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Summarized(Protocol):
    """What a summary reads of an episode: an :class:`~horizongym.training.rollouts.trajectory.Episode`,
    or an outline of one that holds these figures without its messages and steps."""

    @property
    def env_id(self) -> str: ...
    @property
    def policy(self) -> str: ...
    @property
    def total_reward(self) -> float: ...
    @property
    def success(self) -> bool | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def termination_reason(self) -> str | None: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def trainable(self) -> bool: ...
    @property
    def num_turns(self) -> int: ...
    @property
    def num_generated_tokens(self) -> int: ...
    @property
    def num_step_errors(self) -> int: ...


@dataclass(frozen=True)
class Summary:
    """Aggregate figures over a set of episodes of one environment and policy."""

    env_id: str
    policy: str
    episodes: int
    success_rate: float | None
    mean_reward: float
    std_reward: float
    mean_turns: float
    mean_tokens: float
    step_errors: int
    episode_errors: int
    reasons: dict[str, int]
    outcomes: dict[str, int]


def summarize(episodes: Sequence[Summarized]) -> list[Summary]:
    """One :class:`Summary` per (env id, policy), in first-seen order."""
    groups: dict[tuple[str, str], list[Summarized]] = {}
    for episode in episodes:
        groups.setdefault((episode.env_id, episode.policy), []).append(episode)
    summaries = []
    for (env_id, policy), group in groups.items():
        earned = [e for e in group if e.trainable]
        rewards = [e.total_reward for e in earned] or [0.0]
        judged = [e.success for e in earned if e.success is not None]
        summaries.append(
            Summary(
                env_id=env_id,
                policy=policy,
                episodes=len(group),
                success_rate=sum(judged) / len(judged) if judged else None,
                mean_reward=statistics.fmean(rewards),
                std_reward=statistics.pstdev(rewards),
                mean_turns=statistics.fmean([e.num_turns for e in earned] or [0]),
                mean_tokens=statistics.fmean([e.num_generated_tokens for e in earned] or [0]),
                step_errors=sum(e.num_step_errors for e in group),
                episode_errors=sum(1 for e in group if e.error),
                reasons=dict(Counter(e.termination_reason or "?" for e in group)),
                outcomes=dict(Counter(e.outcome or "?" for e in group)),
            )
        )
    return summaries


def format_table(summaries: list[Summary]) -> str:
    """A plain-text table, one row per summary."""
    header = [
        "env",
        "policy",
        "episodes",
        "success",
        "reward",
        "turns",
        "tokens",
        "step errors",
        "ep errors",
        "outcome",
        "ended by",
    ]
    rows = [header]
    for s in summaries:
        rows.append(
            [
                s.env_id,
                s.policy if len(s.policy) <= 40 else s.policy[:37] + "...",
                str(s.episodes),
                "-" if s.success_rate is None else f"{s.success_rate:.1%}",
                f"{s.mean_reward:.3f} ± {s.std_reward:.3f}",
                f"{s.mean_turns:.2f}",
                f"{s.mean_tokens:.1f}",
                str(s.step_errors),
                str(s.episode_errors),
                ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items())),
                ", ".join(f"{k} {v}" for k, v in sorted(s.reasons.items())),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
