"""The records of a rollout: one pydantic model for a step, one for an episode.

Records built from outside data (a JSONL line, a user's dict) are validated as usual. The
rollout engine builds them from values it produced itself with :meth:`Record.trusted`,
which skips validation the way ``model_construct`` does, at a fraction of its cost: the
hot loop records every step of every episode.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, Field, model_validator

from horizongym.envs.contract import OUTCOME_OF_REASON, TerminationReason
from horizongym.failures import POLICY_OUTCOMES, Outcome

# pydantic's BaseModel keeps a record's state in four slots; ``trusted`` fills them through
# their descriptors, looked up once here (it runs for every step of every episode).
_new_object = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class _FrozenEmptyDict(dict[str, Any]):
    """An empty dict that refuses every change (a TypeError says so)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("this empty dict is shared by many records and cannot change; copy it with dict(...) first")

    __setitem__ = __delitem__ = __ior__ = update = setdefault = pop = popitem = clear = _refuse


EMPTY_DICT: dict[str, Any] = _FrozenEmptyDict()
"""The ``info`` and empty ``reward_components`` of the steps the engine records, shared rather
than a new dict per step: fewer objects for the garbage collector to count and scan."""


class _FrozenEmptyList(list[Any]):
    """An empty list that refuses every change (a TypeError says so)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("this empty list is shared by many records and cannot change; copy it with list(...) first")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = append = extend = insert = pop = remove = clear = _refuse
    sort = reverse = _refuse


EMPTY_LIST: list[Any] = _FrozenEmptyList()
"""The ``attempts`` of the episodes the engine records that needed no retry (nearly all), shared
rather than a new list per episode, for the same reason as :data:`EMPTY_DICT`."""

# What ``trusted`` needs to know of each record class, kept apart from the classes: pydantic's
# metaclass makes every class attribute lookup slow (its ``__getattr__`` hook sends each one
# through a Python-level call, about 0.4 µs). Two plain dicts rather than one of named tuples:
# unpacking a named tuple takes the interpreter's slow path (about 0.1 µs a record).
_FIELD_NAMES: dict[type[Record], set[str]] = {}
_DEFAULTS: dict[type[Record], dict[str, tuple[Any, Any]]] = {}
"""Each optional field's (default, default factory)."""


class Record(BaseModel):
    """Base of the trajectory records."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        defaults = {
            name: (field.default, field.default_factory)
            for name, field in cls.model_fields.items()
            if not field.is_required()
        }
        _FIELD_NAMES[cls] = set(cls.model_fields)
        _DEFAULTS[cls] = defaults

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Self:
        """Build a record from ``values`` (field name to value), already of the declared types,
        without validating them.

        ``values`` becomes the record's ``__dict__`` (it is not copied; missing fields are added
        to it with their defaults). A dict rather than keywords: passing 16 keywords costs three
        times as much as a dict display. For data this package produced itself; anything from
        outside goes through the normal constructor or ``model_validate``.
        """
        field_names = _FIELD_NAMES[cls]
        if len(values) < len(field_names):
            for name, (default, factory) in _DEFAULTS[cls].items():
                if name not in values:
                    values[name] = factory() if factory is not None else default
        record = _new_object(cls)
        _set_dict(record, values)
        # every field is set, so the shared set never changes (pydantic only ever adds to it)
        _set_fields_set(record, field_names)
        _set_extra(record, None)
        _set_private(record, None)
        return record


class Step(Record):
    """One turn: what the policy saw and did, and what the environment answered."""

    turn: int
    action: str
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_results: tuple[dict[str, Any], ...] = ()
    """One per call run: ``name``, ``id``, ``content``, ``error`` (what the tool answered)."""
    observation: str = ""
    reward: float = 0.0
    reward_components: dict[str, float] = Field(default_factory=dict)
    reward_events: tuple[dict[str, Any], ...] = ()
    """What the rewards were paid for, with their facts (``TextEnv.score``): what a rescore reprices."""
    terminated: bool = False
    truncated: bool = False
    error: str | None = None
    prompt_token_ids: list[int] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    policy_version: int | None = None
    """The version of the policy's weights that generated this turn (the LoRA adapter served); None when unknown."""
    policy_seconds: float = 0.0
    env_seconds: float = 0.0
    info: dict[str, Any] = Field(default_factory=dict)
    policy_trace: dict[str, Any] | None = None
    """What a composite policy did to produce this turn's action (:attr:`Action.trace`); None for a single model."""
    advantage: float | None = None
    """The per-turn advantage the trainer credited this turn with (a branch's shared turns: their owner's);
    None when no trainer credited it (a rollout, or an episode the trainer did not learn from)."""


class FailedAttempt(BaseModel):
    """An earlier try at an episode that failed for infrastructure reasons and was run again."""

    termination_reason: TerminationReason
    detail: str | None = None
    error: str | None = None
    turns: int = 0
    started_at: float = 0.0
    seconds: float = 0.0


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
    outcome: Outcome | None = None
    """Whose doing the end was (:mod:`horizongym.failures`); derived from the reason when a record lacks it."""
    retryable: bool = False
    """For an ``infra_error``: whether another try on a fresh env may succeed."""
    attempts: list[FailedAttempt] = Field(default_factory=list)
    """The failed tries before this one (infrastructure failures the engine retried), oldest first."""
    unfinished_action: str | None = None
    """The action whose step raised or ran past the time limit (it is in no step: the step never
    returned), so a replay can run it again."""
    rng_state: dict[str, Any] | None = None
    """The env's random generator state when the episode ended (Gymnasium's
    ``np_random.bit_generator.state``; None when the env has no generator): a replay that ends
    in the same state drew the same random numbers."""
    started_at: float = 0.0
    seconds: float = 0.0
    branch: int = 0
    """Which branch of its tree (the episodes of one seed and sample) this is: 0 for the trunk (every
    episode of a run without ``--tree``), 1, 2... for the episodes forked from it, in the order forked."""
    parent_branch: int | None = None
    """The branch this one was forked from; None for a trunk."""
    fork_turn: int = 0
    """The turns this episode shares with its parent: its steps 1..fork_turn are the parent's (0 for a trunk)."""

    @model_validator(mode="after")
    def _derive_outcome(self) -> Self:
        if self.outcome is None and self.termination_reason is not None:
            self.outcome = OUTCOME_OF_REASON[self.termination_reason]
        return self

    @property
    def trainable(self) -> bool:
        """Whether the policy earned this episode's reward (completed or truncated): what a trainer learns from."""
        return self.outcome in POLICY_OUTCOMES

    @property
    def key(self) -> tuple[int, int]:
        """The (task seed, sample index) pair that identifies this episode within a run."""
        return (self.seed, self.sample)

    @property
    def num_turns(self) -> int:
        return len(self.steps)

    @property
    def policy_versions(self) -> list[int]:
        """The policy versions this episode's turns were generated with, oldest first, each once."""
        return sorted({s.policy_version for s in self.steps if s.policy_version is not None})

    @property
    def num_generated_tokens(self) -> int:
        return sum(len(s.token_ids or ()) for s in self.steps)

    @property
    def num_step_errors(self) -> int:
        """Turns whose action the env answered with an error."""
        return sum(1 for s in self.steps if s.error)
