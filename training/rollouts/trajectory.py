"""The records of a rollout: one pydantic model for a step, one for an episode.

Records built from outside data (a JSONL line, a user's dict) are validated as usual. The
rollout engine builds them from values it produced itself with :meth:`Record.trusted`,
which skips validation the way ``model_construct`` does, at a fraction of its cost: the
hot loop records every step of every episode.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field

from horizongym.envs.contract import TerminationReason


class Record(BaseModel):
    """Base of the trajectory records."""

    _defaults: ClassVar[dict[str, tuple[Any, Any]]]
    _field_names: ClassVar[set[str]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._defaults = {
            name: (field.default, field.default_factory)
            for name, field in cls.model_fields.items()
            if not field.is_required()
        }
        cls._field_names = set(cls.model_fields)

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """Build a record from values already of the declared types, without validating them.

        Missing fields take their defaults. For data this package produced itself; anything
        from outside goes through the normal constructor or ``model_validate``.
        """
        if len(values) < len(cls._field_names):
            for name, (default, factory) in cls._defaults.items():
                if name not in values:
                    values[name] = factory() if factory is not None else default
        record = cls.__new__(cls)
        object.__setattr__(record, "__dict__", values)
        # every field is set, so the shared set never changes (pydantic only ever adds to it)
        object.__setattr__(record, "__pydantic_fields_set__", cls._field_names)
        object.__setattr__(record, "__pydantic_extra__", None)
        object.__setattr__(record, "__pydantic_private__", None)
        return record


class Step(Record):
    """One turn: what the policy saw and did, and what the environment answered."""

    turn: int
    action: str
    tool_calls: tuple[dict[str, Any], ...] = ()
    observation: str = ""
    reward: float = 0.0
    reward_components: dict[str, float] = Field(default_factory=dict)
    terminated: bool = False
    truncated: bool = False
    error: str | None = None
    prompt_token_ids: list[int] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    policy_seconds: float = 0.0
    env_seconds: float = 0.0
    info: dict[str, Any] = Field(default_factory=dict)


class Episode(Record):
    """A whole episode, self-contained: enough to replay, re-score, or train on it."""

    env_id: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    seed: int
    sample: int = 0
    task_id: str | None = None
    policy: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    total_reward: float = 0.0
    success: bool | None = None
    terminated: bool = False
    truncated: bool = False
    termination_reason: TerminationReason | None = None
    termination_detail: str | None = None
    """Which limit, what command: the words about this episode's end (the reason stays a name)."""
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
