"""What a company's mail is replayed from: its seed-drawn people, names and words, and its story clock.

The :class:`Engine` draws, from ``random.Random("horizongym-company-<seed>")`` and in this
order: the story key, the company's name, its time zone, the people (``people.Directory``),
the code names and the vocabulary. Story ``i`` starts at ``t0 + (i + 0.9·u)·spacing`` (``u``
uniform) and is told from two RNGs seeded from ``(key, i)``; ``spacing`` is set so the stream
spans 90 to 730 days, from the records per story measured on a header-only sample.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator

from horizongym.envs.email.company.people import Directory
from horizongym.envs.email.company.plots import KIND_SEQUENCE, PLOTS
from horizongym.envs.email.company.story import Fact, Message, Story
from horizongym.envs.email.company.text import CodeNames, Vocabulary, invent_word
from horizongym.envs.email.company.vocabulary import CO_ENDS
from horizongym.envs.email.questions import date_aliases

__all__ = ["MIN_EMAILS", "Engine"]

MIN_EMAILS = 50
_SAMPLE_STORIES = 400  # stories simulated (headers only) to measure records per story


class Engine:
    """Everything needed to replay a company's stories from its seed."""

    def __init__(self, num_emails: int, seed: int, num_employees: int | None) -> None:
        if num_emails < MIN_EMAILS:
            raise ValueError(f"num_emails must be at least {MIN_EMAILS}, got {num_emails}")
        n_emp = num_employees if num_employees is not None else max(8, min(3000, round(0.7 * num_emails**0.5)))
        if n_emp < 6:
            raise ValueError(f"num_employees must be at least 6, got {n_emp}")
        self.num_emails = num_emails
        self.seed = seed
        rng = random.Random(f"horizongym-company-{seed}")
        self.key = rng.getrandbits(62)
        used: set[str] = set()
        self.name = invent_word(rng, CO_ENDS, used)
        self.domain = self.name.lower() + ".com"
        self.tz = dt.timezone(dt.timedelta(hours=rng.choice((-8, -7, -6, -5, 0, 1))))
        self.t0 = int(dt.datetime(2024, 1, 8, 8, 0, tzinfo=self.tz).timestamp())
        self.people = Directory(rng, n_emp, self.domain, used)
        self.codes = CodeNames(rng)
        self.vocabulary = Vocabulary(rng)
        # Space stories so the stream spans span_days: measure the records per story on a sample first.
        self.spacing = 1.0
        sample = itertools.islice(self.stories(bodies=False), _SAMPLE_STORIES)
        copies = sum(len(self.copies(m)) for _, msgs, _ in sample for m in msgs)
        est_stories = max(1.0, num_emails / max(1.0, copies / _SAMPLE_STORIES))
        span_days = max(90.0, min(730.0, num_emails / n_emp / 12))
        self.spacing = span_days * 86400 / est_stories

    # ---- dates

    def when(self, t: int) -> dt.datetime:
        """Unix time ``t`` in the company's time zone."""
        return dt.datetime.fromtimestamp(t, self.tz)

    def iso(self, t: int) -> str:
        """Unix time ``t`` as an ISO 8601 string with the company's offset."""
        return self.when(t).isoformat()

    def long_date(self, t: int) -> str:
        """The day of ``t`` written out ("Monday, March 4, 2024")."""
        d = self.when(t)
        return f"{d:%A}, {date_aliases(d.date())[1]}"

    # ---- mailboxes and stories

    def copies(self, m: Message) -> list[tuple[str, str]]:
        """(owner, folder) of every inbox copy of a message: the sender's, then each employee recipient once."""
        by = self.people.by_address
        out = []
        seen = set()
        if m.sender in by:
            out.append((by[m.sender].owner, "sent"))
            seen.add(m.sender)
        for a in (*m.to, *m.cc):
            if a in by and a not in seen:
                seen.add(a)
                out.append((by[a].owner, "inbox"))
        return out

    def stories(self, bodies: bool) -> Iterator[tuple[int, list[Message], list[Fact]]]:
        """Every story in order, endlessly: ``(start time, messages, facts)``; bodies empty unless ``bodies``."""
        hrng = random.Random()
        brng = random.Random()
        for i in itertools.count():
            hrng.seed(self.key * 1_000_003 + 2 * i)
            brng.seed(self.key * 1_000_003 + 2 * i + 1)
            start = self.t0 + int((i + hrng.random() * 0.9) * self.spacing)
            kind = KIND_SEQUENCE[hrng.randrange(len(KIND_SEQUENCE))]
            story = Story(self, i, start, hrng, brng if bodies else None)
            PLOTS[kind](story)
            yield start, story.msgs, story.facts
