"""The data of the email environment: emails, inboxes, search hits and questions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Email:
    """One email as stored. ``owner`` is the inbox it belongs to (a mailbox owner id such as
    ``allen-p``); ``date`` is ISO 8601 with its UTC offset, or "" when unknown."""

    message_id: str
    date: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    body: str
    owner: str
    folder: str = ""


@dataclass(frozen=True, slots=True)
class Inbox:
    """A mailbox: its owner id, the owner's address, and how many emails it holds."""

    owner: str
    address: str
    emails: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    """What ``search_emails`` returns per email: enough to decide whether to read it."""

    message_id: str
    date: str
    sender: str
    subject: str
    snippet: str


@dataclass(frozen=True, slots=True)
class EmailQuestion:
    """A question about one inbox, with its answer and the emails that prove it.

    ``answers`` holds every accepted form (the first is canonical); ``query_date`` is the
    as-of date (ISO 8601): the agent is told "today" is that date. ``how_realistic`` comes
    from the ART·E format when present.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    message_ids: tuple[str, ...]
    owner: str
    query_date: str
    kind: str = ""
    how_realistic: float | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
