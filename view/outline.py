"""An episode's outline: the figures of one stored line that the episode table, its filters and the
summary read, parsed without its messages, observations and actions.

pydantic skips the fields a model does not declare while it parses JSON (``extra="ignore"``), so an
outline costs a fraction of a whole :class:`~horizongym.training.rollouts.trajectory.Episode`
(measured by ``tests/test_view_api.py`` on 10,000 episodes). The outline has the properties
:func:`~horizongym.training.rollouts.summary.summarize` and
:class:`~horizongym.training.rollouts.tree.TreeStats` read, so the summary is the one ``show`` prints.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from horizongym.envs.contract import OUTCOME_OF_REASON, TerminationReason
from horizongym.failures import POLICY_OUTCOMES, Outcome

ROW_KEYS = (
    "n",
    "env_id",
    "policy",
    "seed",
    "sample",
    "branch",
    "parent_branch",
    "fork_turn",
    "task_id",
    "success",
    "total_reward",
    "turns",
    "outcome",
    "termination_reason",
    "error",
    "seconds",
    "tokens",
)
"""The keys of an episode-table ROW, in the order the API lists them."""


def _count(ids: list[int] | None) -> int:
    return len(ids) if ids is not None else 0


class StepOutline(BaseModel):
    """What an outline keeps of a step: its error, and how many tokens the policy generated in it
    (the count of its ``token_ids``; a trained run stores thousands of ids per episode)."""

    model_config = ConfigDict(extra="ignore")

    error: str | None = None
    generated: Annotated[int, BeforeValidator(_count)] = Field(default=0, validation_alias="token_ids")


class EpisodeOutline(BaseModel):
    """The outline of one stored episode (see the module docstring)."""

    model_config = ConfigDict(extra="ignore")

    env_id: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    seed: int
    sample: int = 0
    task_id: str | None = None
    policy: str = ""
    steps: list[StepOutline] = Field(default_factory=list)
    total_reward: float = 0.0
    success: bool | None = None
    termination_reason: TerminationReason | None = None
    termination_detail: str | None = None
    error: str | None = None
    outcome: Outcome | None = None
    seconds: float = 0.0
    branch: int = 0
    parent_branch: int | None = None
    fork_turn: int = 0

    @model_validator(mode="after")
    def _derive_outcome(self) -> EpisodeOutline:
        if self.outcome is None and self.termination_reason is not None:
            self.outcome = OUTCOME_OF_REASON[self.termination_reason]
        return self

    @property
    def trainable(self) -> bool:
        return self.outcome in POLICY_OUTCOMES

    @property
    def num_turns(self) -> int:
        return len(self.steps)

    @property
    def num_generated_tokens(self) -> int:
        return sum(step.generated for step in self.steps)

    @property
    def num_step_errors(self) -> int:
        return sum(1 for step in self.steps if step.error)

    @property
    def identity(self) -> tuple[str, str, str, int, int, int]:
        """What makes two lines the same episode (the store's rule): env id, env kwargs, policy, seed,
        sample and branch."""
        kwargs = json.dumps(self.env_kwargs, sort_keys=True, default=str)
        return (self.env_id, kwargs, self.policy, self.seed, self.sample, self.branch)

    def row(self, n: int) -> dict[str, Any]:
        """The episode table's ROW of this episode, number ``n`` in its file."""
        return {
            "n": n,
            "env_id": self.env_id,
            "policy": self.policy,
            "seed": self.seed,
            "sample": self.sample,
            "branch": self.branch,
            "parent_branch": self.parent_branch,
            "fork_turn": self.fork_turn,
            "task_id": self.task_id,
            "success": self.success,
            "total_reward": self.total_reward,
            "turns": self.num_turns,
            "outcome": self.outcome,
            "termination_reason": self.termination_reason,
            "error": self.error.splitlines()[0] if self.error and self.error.strip() else None,
            "seconds": self.seconds,
            "tokens": self.num_generated_tokens,
        }
