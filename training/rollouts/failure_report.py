"""What to tell a person about the episodes of a run that failed: how many, how, and the first one's error.

An episode failed when its outcome is not the policy's doing (:data:`~horizongym.failures.POLICY_OUTCOMES`):
``env_error``, ``infra_error`` or ``policy_error``. :func:`failure_report` is the few lines a command
prints after its summary table; :func:`all_failed_line` is the one line of a run none of whose
episodes the policy finished, with what to check for the first failure's kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Final

from horizongym.envs.registration import is_env_url
from horizongym.training.rollouts.trajectory import Episode

WHAT_TO_CHECK: Final[dict[str, str]] = {
    "env_error": "the env raised: check its settings ({settings}) or its code; 'horizongym play' steps through it",
    "infra_error": "what runs the episodes failed (a sandbox, an evaluator, a server): 'horizongym sandbox doctor' "
    "checks docker sandboxes",
    "policy_error": "the policy could not act: check --policy (is its server up, does it serve that model?)",
}
"""The fix to name for each failed outcome (``{settings}``: how the env's settings were given)."""

SERVED_ENV_INFRA_FIX: Final = (
    "is 'horizongym serve-env' running at {url}, with --max-sessions at least the rollout's --concurrency?"
)
"""The fix to name for an ``infra_error`` of a served env (the episode's env id is the server's URL)."""


def failed_episodes(episodes: Iterable[Episode]) -> list[Episode]:
    """The episodes whose outcome is not the policy's doing, in order."""
    return [episode for episode in episodes if not episode.trainable]


def failure_counts(failed: Iterable[Episode]) -> str:
    """``env_error 3, infra_error 1``: the failed episodes by outcome, the most frequent first."""
    return ", ".join(f"{outcome} {count}" for outcome, count in Counter(e.outcome for e in failed).most_common())


def failure_report(failed: Sequence[Episode], total: int) -> str:
    """How many of ``total`` episodes failed, and the first failure: its error as recorded (the one-line
    form, then the innermost calls of its traceback), and how many tries it took."""
    first = failed[0]
    lines = [
        f"{len(failed)} of {total} episodes failed ({failure_counts(failed)}); "
        f"the first, seed {first.seed} sample {first.sample} ({first.outcome}):"
    ]
    detail = first.error or first.termination_detail or first.termination_reason or "(no error recorded)"
    lines += [f"  {line}" for line in detail.splitlines()]
    if first.attempts:
        lines.append(
            f"  (tried {len(first.attempts) + 1} times; the earlier tries ended in "
            f"{', '.join(sorted({a.termination_reason for a in first.attempts}))})"
        )
    return "\n".join(lines)


def all_failed_line(failed: Sequence[Episode], settings: str) -> str:
    """One line for a run whose every episode failed: how many, how, the first error, what to check."""
    first = failed[0]
    error = (first.error or first.termination_detail or str(first.termination_reason)).splitlines()[0]
    if first.outcome == "infra_error" and is_env_url(first.env_id):
        fix = SERVED_ENV_INFRA_FIX.format(url=first.env_id)
    else:
        fix = WHAT_TO_CHECK.get(str(first.outcome), "see the first failure above").format(settings=settings)
    return f"all {len(failed)} episodes failed ({failure_counts(failed)}); the first: {error}; {fix}"
