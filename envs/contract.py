"""The env ↔ engine contract in code: the keys of a step's ``info`` and why an episode ends.

Every environment fills ``info`` with the keys named here and nothing else carries their
meaning: the rollout engine reads them by these names, records them, and refuses what breaks
the contract (an unknown termination reason becomes an ``env_error`` episode, never a record
that cannot be read back). :class:`StepInfo` is the typed view of one step's ``info``.

Termination reasons (DESIGN.md, "terminated = the task ended; truncated = a limit was hit;
never both for one reason"):

* ``terminated``: the task ended (answer given, patch submitted);
* ``max_turns``, ``time_limit``, ``context_limit``: the episode's turn limit, its wall-clock
  limit, the policy's context window;
* ``command_timeout``, ``memory_limit``, ``process_limit``, ``file_size_limit``,
  ``sandbox_died``: a containment limit stopped a tool's command (see :data:`SANDBOX_LIMITS`);
* ``env_error``, ``policy_error``: the env or the policy raised;
* ``infra_error``: what runs the episode failed (see :mod:`horizongym.failures`).

Each reason has one :data:`~horizongym.failures.Outcome` (:data:`OUTCOME_OF_REASON`): whose doing
the end was. ``sandbox_died`` is an infrastructure failure: a container cannot kill its own init
process, and running out of memory is ``memory_limit``.

The words about one case (which command, what limit) go to ``termination_detail``, so the
reason itself always stays one of the names above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict, cast, get_args

from horizongym.failures import Outcome

if TYPE_CHECKING:  # the type only: importing the sandboxes package is the envs' that run commands
    from horizongym.sandboxes.base import LimitName

TOOLS: Final = "tools"
TASK_ID: Final = "task_id"
TURN: Final = "turn"
REWARD_COMPONENTS: Final = "reward_components"
TOOL_CALLS: Final = "tool_calls"
TOOL_RESULTS: Final = "tool_results"
REWARD_EVENTS: Final = "reward_events"
"""What the step's rewards were paid for, with the facts that priced them (``TextEnv.score``)."""
ERROR: Final = "error"
SUCCESS: Final = "success"
TERMINATION_REASON: Final = "termination_reason"
TERMINATION_DETAIL: Final = "termination_detail"
RETRYABLE: Final = "retryable"
"""On an end whose outcome is ``infra_error``: whether another try on a fresh env may succeed (default True)."""
FRESH_CONTEXT: Final = "fresh_context"
"""True: the policy's next context starts afresh from this observation (Markovian agents)."""
REDACT_PREVIOUS_OBSERVATION: Final = "redact_previous_observation"
"""A text that replaces the previous observation in the policy's context (the record keeps it)."""

TerminationReason = Literal[
    "terminated",
    "max_turns",
    "time_limit",
    "context_limit",
    "command_timeout",
    "memory_limit",
    "process_limit",
    "file_size_limit",
    "sandbox_died",
    "env_error",
    "infra_error",
    "policy_error",
]
TERMINATION_REASONS: Final[frozenset[str]] = frozenset(get_args(TerminationReason))

OUTCOME_OF_REASON: Final[dict[TerminationReason, Outcome]] = {
    "terminated": "completed",
    "max_turns": "truncated",
    "time_limit": "truncated",
    "context_limit": "truncated",
    "command_timeout": "truncated",
    "memory_limit": "truncated",
    "process_limit": "truncated",
    "file_size_limit": "truncated",
    "sandbox_died": "infra_error",
    "env_error": "env_error",
    "infra_error": "infra_error",
    "policy_error": "policy_error",
}
"""The outcome of an episode that ended for each reason."""

SANDBOX_LIMITS: Final[dict[LimitName, TerminationReason]] = {
    "timeout": "command_timeout",
    "memory": "memory_limit",
    "pids": "process_limit",
    "file_size": "file_size_limit",
    "sandbox_died": "sandbox_died",
}
"""The termination reason of each sandbox containment limit."""


class StepInfo(TypedDict, total=False):
    """The typed view of one step's ``info`` (``reset`` returns the first three keys)."""

    tools: list[dict[str, Any]]
    """OpenAI function schemas of the tools offered."""
    task_id: str | None
    turn: int
    reward_components: dict[str, float]
    """Named parts of the reward; they sum to the step's reward."""
    tool_calls: list[dict[str, Any]]
    """The calls parsed from the action: ``name``, ``arguments``, ``id``."""
    tool_results: list[dict[str, Any]]
    """One per call run: ``name``, ``id``, ``content``, ``error`` (its kind, or None)."""
    reward_events: list[dict[str, Any]]
    """The step's reward events, ``{"event": name, **facts}`` each (see ``TextEnv.score``)."""
    error: str
    """What was wrong with the action (malformed or failing calls), when something was."""
    success: bool | None
    """On the last step: whether the task was solved (None: the env cannot tell)."""
    termination_reason: TerminationReason
    """On the last step: why the episode ended."""
    termination_detail: str
    """On the last step, when there is more to say: which limit, what command, what failed."""
    retryable: bool
    """On a last step whose reason is an infrastructure failure: whether another try may succeed."""
    fresh_context: bool
    redact_previous_observation: str


class UnknownTerminationReason(ValueError):
    """An env reported a termination reason outside :data:`TerminationReason`."""


def termination_reason(value: object) -> TerminationReason:
    """``value`` as a :data:`TerminationReason`; :class:`UnknownTerminationReason` if it is not one."""
    if isinstance(value, str) and value in TERMINATION_REASONS:
        return cast(TerminationReason, value)
    raise UnknownTerminationReason(
        f"termination_reason {value!r} is not one of {sorted(TERMINATION_REASONS)}; "
        f"put the words about this case in info[{TERMINATION_DETAIL!r}]"
    )
