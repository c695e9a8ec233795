"""A generated company: its mail as a re-iterable stream of inbox copies, and its exact questions.

The stories' messages are emitted in date order through a small heap (only the threads in
flight are held); each message becomes one :class:`Email` per mailbox that holds it, until
``num_emails`` records. A question is asked for each fact of a story whose messages all made
it into the stream, of an inbox that holds the source (chosen by hash); a fifth of the inboxes
(drawn from the seed) are the test split.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import random
from collections.abc import Iterator

from horizongym.envs.email.company.engine import Engine
from horizongym.envs.email.company.people import Employee
from horizongym.envs.email.company.story import Fact, Message
from horizongym.envs.email.types import Email, EmailQuestion

__all__ = ["DEFAULT_COMPANY_SIZE", "Company", "CompanyEmails", "default_company", "generate_company"]

DEFAULT_COMPANY_SIZE = 5000


def _messages(eng: Engine, bodies: bool) -> Iterator[tuple[Message, list[Fact] | None, int]]:
    """Messages in date order with, for the last message of each story, that story's facts and size."""
    heap: list[tuple[int, int, int, Message]] = []
    pending: dict[int, tuple[int, list[Fact]]] = {}
    for start, msgs, facts in eng.stories(bodies):
        while heap and heap[0][0] < start:
            _, _, _, m = heapq.heappop(heap)
            left, fs = pending[m.story]
            pending[m.story] = (left - 1, fs)
            yield m, (fs if left == 1 else None), left - 1
            if left == 1:
                del pending[m.story]
        pending[msgs[0].story] = (len(msgs), facts)
        for m in msgs:
            heapq.heappush(heap, (m.date, m.story, m.order, m))


class CompanyEmails:
    """The company's :class:`Email` records as a re-iterable stream (each ``iter`` replays the seed)."""

    def __init__(self, eng: Engine, num_emails: int, bodies: bool = True) -> None:
        self._eng = eng
        self._num_emails = num_emails
        self._bodies = bodies

    def __len__(self) -> int:
        return self._num_emails

    def __iter__(self) -> Iterator[Email]:
        left = self._num_emails
        eng = self._eng
        for m, _, _ in _messages(eng, self._bodies):
            date = eng.iso(m.date)
            for owner, folder in eng.copies(m):
                if left == 0:
                    return
                left -= 1
                yield Email(m.message_id, date, m.sender, m.to, m.cc, (), m.subject, m.body, owner, folder)


class Company:
    """A generated company: employees, teams, its mail (``emails``) and exact questions (``questions``)."""

    def __init__(self, num_emails: int, seed: int = 0, num_employees: int | None = None) -> None:
        self._eng = Engine(num_emails, seed, num_employees)
        self.num_emails = num_emails
        self.seed = seed
        self.name = self._eng.name
        self.domain = self._eng.domain
        self.employees: tuple[Employee, ...] = tuple(self._eng.people.employees)
        self.teams: dict[str, tuple[str, ...]] = {
            t: tuple(e.owner for e in m) for t, m in self._eng.people.teams.items()
        }

    def __repr__(self) -> str:
        return (
            f"Company({self.name!r}, num_emails={self.num_emails}, employees={len(self.employees)}, seed={self.seed})"
        )

    @property
    def emails(self) -> CompanyEmails:
        """Every inbox copy, in date order; iterate again to regenerate (nothing is kept in memory)."""
        return CompanyEmails(self._eng, self.num_emails)

    @property
    def owners(self) -> tuple[str, ...]:
        """The owner ids of every employee's inbox."""
        return tuple(e.owner for e in self.employees)

    @functools.cached_property
    def questions(self) -> list[EmailQuestion]:
        """One question per fact of each story whose messages all made it into the stream."""
        eng = self._eng
        left = self.num_emails
        out: list[EmailQuestion] = []
        test_owners = self._test_owners()
        for m, facts, _ in _messages(eng, bodies=False):
            copies = eng.copies(m)
            if len(copies) > left:
                break
            left -= len(copies)
            if not facts:
                continue
            for n, f in enumerate(facts):
                holders = sorted(owner for owner, _ in eng.copies(f.source))
                if not holders:
                    continue
                owner = holders[(eng.key + f.source.story * 31 + n) % len(holders)]
                query = eng.when(m.date).date() + dt.timedelta(days=1 + (f.source.story + n) % 5)
                out.append(
                    EmailQuestion(
                        id=f"company-{self.seed}-{f.source.story}-{f.kind}",
                        question=f.question,
                        answers=f.answers,
                        message_ids=(f.source.message_id,),
                        owner=owner,
                        query_date=query.isoformat(),
                        kind=f.kind,
                        meta={
                            "key": f.key,
                            "source_date": eng.iso(f.source.date),
                            "split": "test" if owner in test_owners else "train",
                            **f.meta,
                        },
                    )
                )
            if left == 0:
                break
        return out

    def _test_owners(self) -> set[str]:
        """The inboxes whose questions are the test split: a fifth of them, drawn from the seed."""
        rng = random.Random(f"split-{self.seed}")
        owners = sorted(self.owners)
        return set(rng.sample(owners, max(1, round(0.2 * len(owners)))))


def generate_company(num_emails: int, seed: int = 0, *, num_employees: int | None = None) -> Company:
    """A company whose mail holds exactly ``num_emails`` inbox records (see ``horizongym.envs.email.company``)."""
    return Company(num_emails, seed, num_employees)


@functools.cache
def default_company() -> Company:
    """The embedded default: 5,000 inbox records, seed 0."""
    return generate_company(DEFAULT_COMPANY_SIZE, 0)
