"""One story being built: its messages (headers, and bodies when asked for) and the facts it states.

A story draws everything about its headers (who writes to whom, when, the facts) from one RNG
and its body filler from another, so the header-only pass that measures the stream and
finds the questions draws exactly what the full pass draws. Replies and forwards quote their
parent under ``-----Original Message-----`` / ``----- Forwarded message -----``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from horizongym.envs.email.company.people import Employee

if TYPE_CHECKING:
    from horizongym.envs.email.company.engine import Engine

__all__ = ["HOUR", "Fact", "Message", "Story"]

HOUR = 3600


@dataclass(slots=True)
class Message:
    """One message while a story is built (bodies are empty in the header-only pass)."""

    date: int  # unix seconds
    message_id: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str
    story: int
    order: int


@dataclass(slots=True)
class Fact:
    """A question a story can answer: kind, question text, answers, the source message and who may be asked."""

    kind: str
    question: str
    answers: tuple[str, ...]
    source: Message
    key: str
    meta: dict[str, Any] = field(default_factory=dict)


class Story:
    """Builds one story's messages (and facts) from two RNGs: headers and, optionally, body filler."""

    def __init__(self, eng: Engine, index: int, start: int, hrng: random.Random, brng: random.Random | None) -> None:
        self.eng, self.i, self.start, self.r, self.b = eng, index, start, hrng, brng
        self.msgs: list[Message] = []
        self.facts: list[Fact] = []

    def person(self, team: str | None = None, exclude: tuple[str, ...] = ()) -> Employee:
        """A random employee (of ``team`` if given) whose address is not in ``exclude``."""
        pool = self.eng.people.teams[team] if team else self.eng.people.employees
        for _ in range(20):
            e = pool[self.r.randrange(len(pool))]
            if e.address not in exclude:
                return e
        return next(e for e in self.eng.people.employees if e.address not in exclude)

    def others(self, team: str, n: int, exclude: tuple[str, ...]) -> tuple[str, ...]:
        """Up to ``n`` addresses of ``team`` (topped up from other teams) not in ``exclude``."""
        pool = [e.address for e in self.eng.people.teams[team] if e.address not in exclude]
        if len(pool) < n:
            pool += [
                e.address for e in self.eng.people.employees if e.address not in exclude and e.address not in pool
            ][:50]
        return tuple(self.r.sample(pool, min(n, len(pool))))

    def filler(self, lo: int, hi: int) -> str:
        """``lo`` to ``hi`` filler sentences from the body RNG; empty in the header-only pass."""
        return self.eng.vocabulary.filler(self.b, self.b.randint(lo, hi)) if self.b is not None else ""

    def send(
        self,
        t: int,
        sender: str,
        to: tuple[str, ...],
        cc: tuple[str, ...],
        subject: str,
        text: str,
        parent: Message | None = None,
        forward: bool = False,
    ) -> Message:
        """Add a message at ``t``; its body (when bodies are made) greets, signs and quotes ``parent``."""
        order = len(self.msgs)
        mid = f"{self.i}.{order}.{(self.eng.key * 31 + self.i * 7919 + order) % 0xFFFFFFFF:08x}@mail.{self.eng.domain}"
        body = ""
        if self.b is not None:
            first = self.eng.people.name_of(to[0]).split()[0] if to else "all"
            sign = self.eng.people.name_of(sender).split()[0]
            body = f"{first},\n\n{text}\n\n{sign}"
            if parent is not None:
                head = "----- Forwarded message -----" if forward else "-----Original Message-----"
                body += (
                    f"\n\n{head}\nFrom: {self.eng.people.name_of(parent.sender)} <{parent.sender}>\n"
                    f"Sent: {self.eng.long_date(parent.date)} {self.eng.when(parent.date):%H:%M}\n"
                    f"To: {', '.join(parent.to)}\n"
                    + (f"Cc: {', '.join(parent.cc)}\n" if parent.cc else "")
                    + f"Subject: {parent.subject}\n\n{parent.body}"
                )
        msg = Message(t, mid, sender, to, cc, subject, body, self.i, order)
        self.msgs.append(msg)
        return msg

    def fact(self, kind: str, question: str, answers: tuple[str, ...], source: Message, key: str, **meta: Any) -> None:
        """Record a fact: a question, its answers, the message that states it, the code name, ``meta``."""
        self.facts.append(Fact(kind, question, answers, source, key, meta))

    def later(self, t: int, lo_h: float, hi_h: float) -> int:
        """A time ``lo_h`` to ``hi_h`` hours after ``t``."""
        return t + int(self.r.uniform(lo_h, hi_h) * HOUR)

    def day_after(self, t: int, lo_d: int, hi_d: int) -> int:
        """A working day lo_d..hi_d days after t, at a round time (9:00 to 16:30)."""
        d = self.eng.when(t) + dt.timedelta(days=self.r.randint(lo_d, hi_d))
        while d.weekday() >= 5:
            d += dt.timedelta(days=1)
        minutes = 9 * 60 + 30 * self.r.randrange(16)
        return int(d.replace(hour=minutes // 60, minute=minutes % 60, second=0).timestamp())
