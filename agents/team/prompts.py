"""What a team member reads: its role prompt, the env conversation, and an inbox of teammates' messages.

In round ``r`` (of ``T``) member ``NAME`` is called with

1. ``{"role": "system", "content": ROLE}``, where ROLE is its role prompt, followed after a blank
   line by the env conversation's leading system message when there is one;
2. the env conversation without that system message, unchanged;
3. ``{"role": "user", "content": INBOX}``::

       [team round R of T] You are NAME.
       <message from="NAME_I" round="R_I">TEXT_I</message>
       ...
       Reply with your own answer to the task (the action you would take).

   R and R_I count from 1 in the text (``round="1"`` is the team's first round); the
   :class:`~horizongym.agents.team.messages.InboxMessage` rounds count from 0, as
   :class:`~horizongym.agents.team.graph.TeamGraph` does. The lines list the temporal sources'
   round ``r − 1`` messages, then the spatial sources' round ``r`` messages. TEXT is kept as it is
   (``<`` and ``>`` included): :func:`parse_inbox` reads the lines back with a non-greedy regex.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from horizongym.agents.base import Message
from horizongym.agents.team.messages import InboxMessage

INBOX_FOOTER = "Reply with your own answer to the task (the action you would take)."
DECISION_HEADER = "[team decision] Your teammates' final messages:"
DECISION_FOOTER = "Reply with the team's final action for the task (one action, in the task's format)."
_MESSAGE = re.compile(r'<message from="([^"]*)" round="(\d+)">(.*?)</message>', re.DOTALL)


def message_line(message: InboxMessage) -> str:
    """One inbox line: ``<message from="NAME" round="R">TEXT</message>`` (R counts from 1)."""
    return f'<message from="{message.sender}" round="{message.round + 1}">{message.text}</message>'


def render_inbox(name: str, round_: int, rounds: int, inbox: Sequence[InboxMessage]) -> str:
    """The last user message of member ``name``'s call in round ``round_`` (from 0) of ``rounds``."""
    lines = [f"[team round {round_ + 1} of {rounds}] You are {name}."]
    lines.extend(message_line(m) for m in inbox)
    lines.append(INBOX_FOOTER)
    return "\n".join(lines)


def render_decision_inbox(inbox: Sequence[InboxMessage]) -> str:
    """The last user message of the "final refer" decision call: the last round's messages."""
    return "\n".join([DECISION_HEADER, *(message_line(m) for m in inbox), DECISION_FOOTER])


def parse_inbox(text: str) -> list[InboxMessage]:
    """The ``<message>`` lines of an inbox, in order (rounds back to counting from 0)."""
    return [InboxMessage(sender, int(round_) - 1, body) for sender, round_, body in _MESSAGE.findall(text)]


def split_conversation(conversation: Sequence[Message]) -> tuple[str | None, list[Message]]:
    """The env conversation's leading system text (None when it has none) and its other messages."""
    if conversation and conversation[0].get("role") == "system":
        content = conversation[0].get("content")
        return (content if isinstance(content, str) else ""), list(conversation[1:])
    return None, list(conversation)


def with_role(prompt: str, conversation: Sequence[Message]) -> list[Message]:
    """The role prompt as the system message (the env's system text after a blank line), then the conversation."""
    env_system, rest = split_conversation(conversation)
    parts = [p for p in (prompt, env_system) if p]
    return [{"role": "system", "content": "\n\n".join(parts)}, *rest]


def member_messages(
    name: str, prompt: str, conversation: Sequence[Message], round_: int, rounds: int, inbox: Sequence[InboxMessage]
) -> list[Message]:
    """Everything member ``name`` reads in round ``round_`` (module docstring)."""
    return [*with_role(prompt, conversation), {"role": "user", "content": render_inbox(name, round_, rounds, inbox)}]


def last_user_text(conversation: Sequence[Message]) -> str:
    """The text of the conversation's last user message (the task as an auditor sees it)."""
    for message in reversed(conversation):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""
