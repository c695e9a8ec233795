"""The records a team turn passes between its members, the firewall and its auditor.

A member's round-``r`` message is a :class:`TeamMessage`; what it read before writing it is its
inbox (:class:`InboxMessage` lines); a firewall screens a draft in an :class:`AuditContext` and
answers with a :class:`Screened` message (kept or hidden, with its audit records and what the
audits cost in tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """One ``<message from="SENDER" round="R">TEXT</message>`` line of a member's inbox."""

    sender: str
    round: int
    text: str


@dataclass(frozen=True, slots=True)
class TeamMessage:
    """A member's message of one round and the tokens its call cost."""

    agent: str
    round: int
    text: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What an auditor sees beside the draft: the task (the env conversation's last user message
    text) and the inbox the member read."""

    task: str
    inbox: list[InboxMessage] = field(default_factory=list)


@dataclass(slots=True)
class Screened:
    """A firewall's answer for one draft: the message it ends with (the last rewrite), whether it
    is hidden from later agents and the decision node, one record per audit, and the auditor's cost."""

    message: TeamMessage
    hidden: bool
    audits: list[dict[str, Any]]
    auditor_prompt_tokens: int
    auditor_completion_tokens: int
