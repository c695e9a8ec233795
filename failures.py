"""What went wrong in an episode, typed: the outcome of every episode and the infrastructure failures.

An episode's **outcome** says whose doing its end was, so that training learns only from what
the policy did:

* ``completed``: the task ended (answer given, patch submitted): the reward is the policy's;
* ``truncated``: the policy ran into a limit (turns, time, context, a sandbox's containment
  limit): the reward is still the policy's;
* ``env_error``: the env's own code raised or broke its contract: a bug to fix, not retried;
* ``infra_error``: what runs the episode failed: a dead container, a crashed evaluator, a lost
  model server. Not the policy's doing; usually worth another try on a fresh env;
* ``policy_error``: the policy could not produce an action (a reply it could not parse...).

A component that fails for reasons outside the policy and the env's logic raises an
:class:`InfrastructureError` (its subclasses live next to the components: sandboxes, the kernel
evaluator, HTTP policies) with a ``retryable`` flag; the rollout engine records such an episode
as ``infra_error``, retries a retryable one on a fresh env, and the trainer never trains on it.

This module sits below everything (it imports nothing of horizongym).
"""

from __future__ import annotations

from typing import Final, Literal, cast, get_args

Outcome = Literal["completed", "truncated", "env_error", "infra_error", "policy_error"]
OUTCOMES: Final[frozenset[str]] = frozenset(get_args(Outcome))

POLICY_OUTCOMES: Final[frozenset[Outcome]] = frozenset({"completed", "truncated"})
"""Outcomes whose reward the policy earned: the only episodes a trainer learns from."""


class InfrastructureError(RuntimeError):
    """A failure of what runs the episode (engine, container, evaluator, server), not of the policy.

    ``retryable``: whether the same episode may succeed on a fresh env (a killed container, a
    dropped connection); False for what another try cannot fix (an image that does not build).
    """

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


def is_infrastructure_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is an :class:`InfrastructureError`."""
    return infrastructure_cause(exc) is not None


def infrastructure_cause(exc: BaseException) -> InfrastructureError | None:
    """The :class:`InfrastructureError` in ``exc``'s chain of causes, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, InfrastructureError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def outcome(value: object) -> Outcome:
    """``value`` as an :data:`Outcome`; a ValueError naming the allowed ones otherwise."""
    if isinstance(value, str) and value in OUTCOMES:
        return cast(Outcome, value)
    raise ValueError(f"outcome {value!r} is not one of {sorted(OUTCOMES)}")
