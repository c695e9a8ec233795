"""The records of a rollout: one pydantic model for a step, one for an episode.

Fields the engine fills from data it already holds as JSON-ready dicts (chat messages,
tool calls, reward components, extra info) skip validation: they are kept as given, which
keeps recording cheap in the rollout engine's hot loop.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SkipValidation

TerminationReason = Literal["terminated", "max_turns", "time_limit", "context_limit", "env_error", "policy_error"]


class Step(BaseModel):
    """One turn: what the policy saw and did, and what the environment answered."""

    turn: int
    action: str
    tool_calls: SkipValidation[list[dict[str, Any]]] = Field(default_factory=list)
    observation: str = ""
    reward: float = 0.0
    reward_components: SkipValidation[dict[str, float]] = Field(default_factory=dict)
    terminated: bool = False
    truncated: bool = False
    error: str | None = None
    prompt_token_ids: list[int] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    policy_seconds: float = 0.0
    env_seconds: float = 0.0
    info: SkipValidation[dict[str, Any]] = Field(default_factory=dict)


class Episode(BaseModel):
    """A whole episode, self-contained: enough to replay, re-score, or train on it."""

    env_id: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    seed: int
    sample: int = 0
    task_id: str | None = None
    policy: str = ""
    messages: SkipValidation[list[dict[str, Any]]] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    total_reward: float = 0.0
    success: bool | None = None
    terminated: bool = False
    truncated: bool = False
    termination_reason: TerminationReason | None = None
    error: str | None = None
    started_at: float = 0.0
    seconds: float = 0.0

    @property
    def key(self) -> tuple[int, int]:
        """The (task seed, sample index) pair that identifies this episode within a run."""
        return (self.seed, self.sample)

    @property
    def num_turns(self) -> int:
        return len(self.steps)

    @property
    def num_generated_tokens(self) -> int:
        return sum(len(s.token_ids or ()) for s in self.steps)
