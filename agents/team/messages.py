"""What team members say to each other, and the firewall hook that may screen it (AgentDropoutV2).

A :class:`TeamMessage` is one member's message in one round, with the tokens its call cost.
An :class:`InboxMessage` is a message as another member reads it. A :class:`MessageFirewall`
(AgentDropoutV2, arXiv 2602.23258) screens each draft before anyone reads it: it may ask the
member to rewrite it (``rewrite(feedback)``) and may hide it; :class:`Screened` says what it did
and what the auditing cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class TeamMessage:
    """Member ``agent``'s message of round ``round`` and the tokens of the call that wrote it."""

    agent: str
    round: int
    text: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """A message as it appears in a reader's inbox: who wrote it, in which round, and its text."""

    sender: str
    round: int
    text: str


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What an auditor sees next to a draft: the task (the last user message) and the writer's inbox."""

    task: str
    inbox: list[InboxMessage]


@dataclass(frozen=True, slots=True)
class Screened:
    """A firewall's verdict: the message kept (perhaps rewritten), whether it is hidden, the audits, their cost."""

    message: TeamMessage
    hidden: bool
    audits: list[dict[str, Any]] = field(default_factory=list)
    auditor_prompt_tokens: int = 0
    auditor_completion_tokens: int = 0


class MessageFirewall(Protocol):
    """Screens each member's draft before later members and the decision node read it."""

    async def screen(
        self, draft: TeamMessage, context: AuditContext, rewrite: Callable[[str], Awaitable[TeamMessage]]
    ) -> Screened: ...
