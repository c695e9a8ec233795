"""A synthetic company's mailboxes: the email environment's embedded default.

No model can know these answers: the company, its people, clients and code names are
invented, and every fact (who approved a deal, the amount, where the offsite is) is drawn
from the seed. The questions are exact: each names its source message ids and is asked of
an inbox that holds them.

How it is built:

* ``num_employees`` people (default ``0.7 * sqrt(num_emails)``, 8 to 3,000) with real first
  names and invented surnames, addresses ``first.last@<company>.com``; owner ids are the
  address's local part (``maria.velkov``). They form teams (the first member manages it);
  external clients have their own domains and contacts.
* The mail is a sequence of *stories*, each a thread of one to a few messages, started at
  evenly spaced times (with jitter) and emitted in date order through a small heap, so the
  stream never holds more than the threads in flight:

  ``deal``      a proposal ("Proposal: Tarvik deal with Korvath Logistics", cc'd teammates),
                the manager's approval ("RE:", quoting it) with the agreed amount, the signing
                city and date, and often a forward ("FW:") of the whole thread to legal/finance
  ``meeting``   an invitation (date, time, room), acceptances ("RE:"), and sometimes a
                reschedule that moves the meeting (the answer is the new date)
  ``offsite``   a manager invites the team to an offsite (venue and date)
  ``project``   a project kickoff names the lead and the budget; teammates reply
  ``chatter``   internal back-and-forth with replies and forwards (no questions)
  ``client``    messages from client contacts (no questions)
  ``newsletter`` external newsletters and internal announcements to subsets of employees

* Every story that carries facts has its own invented code name, used nowhere else, so a
  question that names it identifies one thread in any inbox; replies and forwards quote
  their parent under ``-----Original Message-----``.
* Inbox copies: ONE :class:`Email` record per (message, mailbox): the sender's copy
  (``folder="sent"``) and one per employee in to/cc/bcc (``folder="inbox"``), all with the
  SAME ``message_id`` and different ``owner``. A store keys emails by ``(owner, message_id)``.
  ``num_emails`` counts these records; the stream stops after exactly that many (the threads
  cut off at the end are never asked about).
* Bodies mix the story's sentences with filler sentences drawn from a Zipf-like vocabulary
  (about 30,000 words: common English and business words first, then an invented long
  tail; weight ``1/(rank+2.7)^1.07``), so keyword search has to cope with realistic word
  frequencies. Each story draws from its own seeded ``random.Random``; nothing touches a
  global RNG, and a second pass over ``Company.emails`` gives the same records.

Questions (``Company.questions``): ``deal_approver``, ``deal_amount``, ``deal_place``,
``deal_date``, ``proposal_cc``, ``meeting_date``, ``meeting_room``, ``offsite_place``,
``offsite_date``, ``project_lead``, ``project_budget``; one per fact, asked of an inbox that
holds the source (chosen by hash). ``meta`` holds ``key`` (the code name), ``thread`` (the
normalized subject), ``evidence`` (the exact text in the source body, where there is one),
``answer_list`` for cc questions, and ``split``; an environment must never show ``meta`` to
the agent.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from horizongym.envs.email.questions import date_aliases, normalize_subject
from horizongym.envs.email.types import Email, EmailQuestion

__all__ = ["DEFAULT_COMPANY_SIZE", "Company", "Employee", "default_company", "generate_company"]

DEFAULT_COMPANY_SIZE = 5000
MIN_EMAILS = 50

# ----------------------------------------------------------------------------------- pools

_FIRST = """Anna Ben Carla Daniel Elena Frank Grace Henry Irene Jack Julia Kevin Laura Marco Nina Oscar Paula Quinn
Rosa Sam Tara Victor Wendy Yusuf Zoe Adam Bianca Chris Diana Erik Fiona George Hannah Ivan Jasmine Karl Leah Miguel
Nora Omar Priya Rafael Sofia Tom Uma Vera William Xenia Yara Alan Beth Colin Dora Ethan Farah Gavin Helen Igor Jenna
Kyle Lina Mark Naomi Owen Petra Ravi Sara Theo Ursula Vince Alice Bruno Cecile David Emma Felix Gina Hugo Isla Jonas
Kate Liam Maya Nils Olga Peter Rita Simon Tina Umar Viola Walter Amir Brenda Caleb Dalia Elias Flora Greta Hector Ines
Joel Kira Lars Mila Noah Orla Pablo Ruth Stefan Talia Ada Boris Clara Dmitri Eva Finn Gloria Hans Ida Jorge""".split()
_ONSETS = "b d dr g k kr l m n r s st t th v vr z br sk h".split()
_VOWELS = "a e i o u ae ei".split()
_SUR_ENDS = "ski berg vich rin mont dahl sson quist holt vash zar ovic mann driel kov gaard ley ton".split()
_CODE_ENDS = "vik dra thos mir quen zel bryn vane kesh lund ora ix wyn dor rith".split()
_CO_ENDS = "ora ix ent ara ium eon ova is yn".split()
_TEAMS = """Sales Finance Legal Operations Engineering Marketing Procurement Research Logistics Risk Treasury Strategy
Compliance Support Analytics Facilities Trading Partnerships Security Design""".split()
_INDUSTRY = "Logistics Foods Energy Systems Partners Health Capital Media Robotics Mining Textiles Software".split()
_CITIES = """Denver Chicago Austin Boston Seattle Toronto London Rotterdam Lisbon Oslo Dublin Atlanta Phoenix Portland
Montreal Vienna Madrid Prague Helsinki Calgary Nashville Minneapolis Pittsburgh Richmond Tampa Omaha""".split()
_VENUE_KINDS = "Lodge Inn Resort Hall Conference Center Retreat House".split()
_ROOM_NAMES = "Atlas Birch Cedar Delta Ember Falcon Granite Harbor Iris Juniper Kestrel Lantern Maple".split()
_MEETING_KINDS = ("planning session", "design review", "budget review", "kickoff meeting", "status review", "workshop")
_PRODUCTS = "licensing supply agreement service contract pilot renewal expansion".split()
_COMMON = """the to and of a in for is on that we this with be you i will it at have are as please our by from
not can if your all or an would me they any us but so should need was know do get has there let what about more
thanks new one also which up time just out some been week like meeting today call team now see next make these
other their them when like work please back how may into report update only could review over information than
issue number first data business plan price market group management project deal question change customer
contract cost last process order support system date office current free company sales account services rate
value total year month quarter budget forecast risk volume payment issue draft attached send note schedule
changes discuss follow agreement client offer terms legal details final version numbers approve approval
request status team access product service option ready comments morning afternoon friday monday tomorrow""".split()
_TAIL_ONSET = "b c d f g h j k l m n p r s t v w bl cr fl gr pl pr sh sp tr".split()
_TAIL_VOWEL = "a e i o u ou ea".split()
_TAIL_END = "ment ing tion ly ness al ure ise ant er ate ive ous ism ist age".split()
_CHATTER = (
    "Quick question about the {w} {w2}",
    "{W} numbers for this week",
    "Follow-up on {w} and {w2}",
    "Notes from today",
    "Can you check the {w} file?",
    "{W} {w2} update",
    "Lunch on Friday?",
    "Draft {w} memo",
    "Help with {w} access",
)
_NEWSLETTERS = ("Weekly Digest", "Market Brief", "Industry Insider", "Tech Roundup", "Morning Report")
_ANNOUNCEMENTS = (
    "IT maintenance window",
    "Office closed for the holiday",
    "Benefits enrollment reminder",
    "New expense policy",
    "Parking garage update",
    "Quarterly town hall",
)

# How the stories are mixed (kind, weight).
_STORY_KINDS = (
    ("deal", 14),
    ("meeting", 18),
    ("offsite", 3),
    ("project", 8),
    ("chatter", 30),
    ("client", 10),
    ("newsletter", 12),
    ("announcement", 5),
)
_KIND_SEQ = tuple(itertools.chain.from_iterable([k] * w for k, w in _STORY_KINDS))
_SAMPLE_STORIES = 400  # stories simulated (headers only) to measure records per story
_HOUR = 3600


@dataclass(frozen=True, slots=True)
class Employee:
    """One employee: owner id (the address's local part), name, address, team, and whether a manager."""

    owner: str
    name: str
    address: str
    team: str
    manager: bool = False


@dataclass(slots=True)
class _Msg:
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
class _Fact:
    """A question a story can answer: kind, question text, answers, the source message and who may be asked."""

    kind: str
    question: str
    answers: tuple[str, ...]
    source: _Msg
    key: str
    meta: dict[str, Any] = field(default_factory=dict)


def _money(amount: int) -> tuple[str, ...]:
    text = f"${amount:,}"
    forms = [text, f"{amount:,}", str(amount), f"${amount}"]
    if amount % 1_000_000 == 0:
        forms.append(f"${amount // 1_000_000} million")
    elif amount % 100_000 == 0 and amount >= 1_000_000:
        forms.append(f"${amount / 1_000_000:.1f} million")
    return tuple(dict.fromkeys(forms))


class _Engine:
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
        name = self._word(rng, _CO_ENDS, used)
        self.name = name
        self.domain = name.lower() + ".com"
        self.tz = dt.timezone(dt.timedelta(hours=rng.choice((-8, -7, -6, -5, 0, 1))))
        self.t0 = int(dt.datetime(2024, 1, 8, 8, 0, tzinfo=self.tz).timestamp())

        surnames = [self._word(rng, _SUR_ENDS, used) for _ in range(max(30, n_emp // 3))]
        n_teams = max(2, min(len(_TEAMS), n_emp // 7))
        teams = rng.sample(_TEAMS, n_teams)
        employees: list[Employee] = []
        pairs: set[tuple[str, str]] = set()
        while len(employees) < n_emp:
            first, last = rng.choice(_FIRST), rng.choice(surnames)
            if (first, last) in pairs:
                continue
            pairs.add((first, last))
            i = len(employees)
            local = f"{first}.{last}".lower()
            employees.append(
                Employee(local, f"{first} {last}", f"{local}@{self.domain}", teams[i % n_teams], i < n_teams)
            )
        self.employees = employees
        self.by_address = {e.address: e for e in employees}
        self.teams = {t: [e for e in employees if e.team == t] for t in teams}
        self.managers = {t: members[0] for t, members in self.teams.items()}
        self.clients = []
        for _ in range(max(8, n_emp // 2)):
            stem = self._word(rng, _CO_ENDS, used)
            contact_first, contact_last = rng.choice(_FIRST), rng.choice(surnames)
            address = f"{contact_first[0]}{contact_last}@{stem}{rng.choice(_INDUSTRY)}.com".lower()
            self.clients.append((f"{stem} {rng.choice(_INDUSTRY)}", f"{contact_first} {contact_last}", address))
        self.newsletters = []
        for title in _NEWSLETTERS:
            vendor = self._word(rng, _CO_ENDS, used)
            share = min(0.25, 12 / n_emp)
            subscribers = tuple(e.address for e in employees if rng.random() < share) or (employees[0].address,)
            self.newsletters.append((f"{vendor} {title}", f"news@{vendor.lower()}.com", subscribers))

        # Code names: an affine permutation of the syllable space, so story i's name is unique without storage.
        self.code_space = len(_ONSETS) ** 2 * len(_VOWELS) ** 2 * len(_CODE_ENDS)
        self.code_perm = (self._coprime(rng, self.code_space), rng.randrange(self.code_space))
        self.vocab, self.cum_weights = self._vocabulary(rng)
        # Space stories so the stream spans span_days: measure the records per story on a sample first.
        self.spacing = 1.0
        sample = itertools.islice(self.stories(bodies=False), _SAMPLE_STORIES)
        copies = sum(len(self.copies(m)) for _, msgs, _ in sample for m in msgs)
        est_stories = max(1.0, num_emails / max(1.0, copies / _SAMPLE_STORIES))
        span_days = max(90.0, min(730.0, num_emails / n_emp / 12))
        self.spacing = span_days * 86400 / est_stories

    # ---- names and words

    @staticmethod
    def _word(rng: random.Random, ends: list[str], used: set[str]) -> str:
        while True:
            w = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_ONSETS) + rng.choice(ends)
            if w not in used:
                used.add(w)
                return w.capitalize()

    @staticmethod
    def _coprime(rng: random.Random, m: int) -> int:
        import math

        while True:
            a = rng.randrange(1, m)
            if math.gcd(a, m) == 1:
                return a

    def codename(self, index: int) -> str:
        a, b = self.code_perm
        p = (a * index + b) % self.code_space
        parts = []
        for pool in (_ONSETS, _VOWELS, _ONSETS, _VOWELS, _CODE_ENDS):
            p, r = divmod(p, len(pool))
            parts.append(pool[r])
        return "".join(parts).capitalize()

    def _vocabulary(self, rng: random.Random) -> tuple[list[str], list[float]]:
        words = list(dict.fromkeys(_COMMON))
        seen = set(words)
        target = 30_000
        while len(words) < target:
            w = rng.choice(_TAIL_ONSET) + rng.choice(_TAIL_VOWEL) + rng.choice(_TAIL_ONSET[:17]) + rng.choice(_TAIL_END)
            if rng.random() < 0.5:
                w = rng.choice(_TAIL_ONSET) + rng.choice(_TAIL_VOWEL) + w
            if w not in seen:
                seen.add(w)
                words.append(w)
        weights = itertools.accumulate(1.0 / (r + 2.7) ** 1.07 for r in range(len(words)))
        return words, list(weights)

    # ---- text

    def filler(self, rng: random.Random, sentences: int) -> str:
        out = []
        for _ in range(sentences):
            words = rng.choices(self.vocab, cum_weights=self.cum_weights, k=rng.randint(5, 16))
            out.append(words[0].capitalize() + " " + " ".join(words[1:]) + ("?" if rng.random() < 0.1 else "."))
        return " ".join(out)

    def when(self, t: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(t, self.tz)

    def iso(self, t: int) -> str:
        return self.when(t).isoformat()

    def long_date(self, t: int) -> str:
        d = self.when(t)
        return f"{d:%A}, {date_aliases(d.date())[1]}"

    def name_of(self, address: str) -> str:
        e = self.by_address.get(address)
        if e is not None:
            return e.name
        for _client, contact, addr in self.clients:
            if addr == address:
                return contact
        return address

    def copies(self, m: _Msg) -> list[tuple[str, str]]:
        """(owner, folder) of every inbox copy of a message: the sender's, then each employee recipient once."""
        by = self.by_address
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

    # ---- stories

    def stories(self, bodies: bool) -> Iterator[tuple[int, list[_Msg], list[_Fact]]]:
        hrng = random.Random()
        brng = random.Random()
        for i in itertools.count():
            hrng.seed(self.key * 1_000_003 + 2 * i)
            brng.seed(self.key * 1_000_003 + 2 * i + 1)
            start = self.t0 + int((i + hrng.random() * 0.9) * self.spacing)
            kind = _KIND_SEQ[hrng.randrange(len(_KIND_SEQ))]
            story = _Story(self, i, start, hrng, brng if bodies else None)
            getattr(story, kind)()
            yield start, story.msgs, story.facts


class _Story:
    """Builds one story's messages (and facts) from two RNGs: headers and, optionally, body filler."""

    def __init__(self, eng: _Engine, index: int, start: int, hrng: random.Random, brng: random.Random | None) -> None:
        self.eng, self.i, self.start, self.r, self.b = eng, index, start, hrng, brng
        self.msgs: list[_Msg] = []
        self.facts: list[_Fact] = []

    # helpers

    def person(self, team: str | None = None, exclude: tuple[str, ...] = ()) -> Employee:
        pool = self.eng.teams[team] if team else self.eng.employees
        for _ in range(20):
            e = pool[self.r.randrange(len(pool))]
            if e.address not in exclude:
                return e
        return next(e for e in self.eng.employees if e.address not in exclude)

    def others(self, team: str, n: int, exclude: tuple[str, ...]) -> tuple[str, ...]:
        pool = [e.address for e in self.eng.teams[team] if e.address not in exclude]
        if len(pool) < n:
            pool += [e.address for e in self.eng.employees if e.address not in exclude and e.address not in pool][:50]
        return tuple(self.r.sample(pool, min(n, len(pool))))

    def filler(self, lo: int, hi: int) -> str:
        return self.eng.filler(self.b, self.b.randint(lo, hi)) if self.b is not None else ""

    def send(
        self,
        t: int,
        sender: str,
        to: tuple[str, ...],
        cc: tuple[str, ...],
        subject: str,
        text: str,
        parent: _Msg | None = None,
        forward: bool = False,
    ) -> _Msg:
        order = len(self.msgs)
        mid = f"{self.i}.{order}.{(self.eng.key * 31 + self.i * 7919 + order) % 0xFFFFFFFF:08x}@mail.{self.eng.domain}"
        body = ""
        if self.b is not None:
            first = self.eng.name_of(to[0]).split()[0] if to else "all"
            sign = self.eng.name_of(sender).split()[0]
            body = f"{first},\n\n{text}\n\n{sign}"
            if parent is not None:
                head = "----- Forwarded message -----" if forward else "-----Original Message-----"
                body += (
                    f"\n\n{head}\nFrom: {self.eng.name_of(parent.sender)} <{parent.sender}>\n"
                    f"Sent: {self.eng.long_date(parent.date)} {self.eng.when(parent.date):%H:%M}\n"
                    f"To: {', '.join(parent.to)}\n"
                    + (f"Cc: {', '.join(parent.cc)}\n" if parent.cc else "")
                    + f"Subject: {parent.subject}\n\n{parent.body}"
                )
        msg = _Msg(t, mid, sender, to, cc, subject, body, self.i, order)
        self.msgs.append(msg)
        return msg

    def fact(self, kind: str, question: str, answers: tuple[str, ...], source: _Msg, key: str, **meta: Any) -> None:
        self.facts.append(_Fact(kind, question, answers, source, key, meta))

    def later(self, t: int, lo_h: float, hi_h: float) -> int:
        return t + int(self.r.uniform(lo_h, hi_h) * _HOUR)

    def day_after(self, t: int, lo_d: int, hi_d: int) -> int:
        """A working day lo_d..hi_d days after t, at a round time (9:00 to 16:30)."""
        d = self.eng.when(t) + dt.timedelta(days=self.r.randint(lo_d, hi_d))
        while d.weekday() >= 5:
            d += dt.timedelta(days=1)
        minutes = 9 * 60 + 30 * self.r.randrange(16)
        return int(d.replace(hour=minutes // 60, minute=minutes % 60, second=0).timestamp())

    # stories with facts

    def deal(self) -> None:
        r, eng = self.r, self.eng
        code = eng.codename(self.i)
        team = r.choice(list(eng.teams))
        boss = eng.managers[team]
        lead = self.person(team, exclude=(boss.address,))
        client, contact, _ = r.choice(eng.clients)
        cc = self.others(team, r.randint(1, 3), (boss.address, lead.address))
        asked = r.randrange(20, 400) * 5_000
        agreed = asked - r.randrange(1, min(30, asked // 10_000)) * 5_000 if r.random() < 0.6 else asked
        subject = f"Proposal: {code} deal with {client}"
        product = r.choice(_PRODUCTS)
        m1 = self.send(
            self.start,
            lead.address,
            (boss.address,),
            cc,
            subject,
            f"I'd like your approval for the {code} deal with {client} ({product}). They are asking for "
            f"${asked:,}. {self.filler(2, 6)}",
        )
        t2 = self.later(m1.date, 1, 30)
        city = r.choice(_CITIES)
        sign = self.day_after(t2, 5, 30)
        sign_date = date_aliases(eng.when(sign).date())[1]
        m2 = self.send(
            t2,
            boss.address,
            (lead.address,),
            cc,
            "RE: " + subject,
            f"Approved. We agreed on ${agreed:,} with {client} for {code}. {contact} will sign the contract with "
            f"us in {city} on {sign_date}. {self.filler(1, 4)}",
            m1,
        )
        if r.random() < 0.6:
            legal = self.person(r.choice(list(eng.teams)), exclude=(lead.address, boss.address))
            self.send(
                self.later(t2, 1, 48),
                lead.address,
                (legal.address,),
                (),
                "FW: " + subject,
                f"FYI, see below. Could you prepare the paperwork? {self.filler(0, 2)}",
                m2,
                forward=True,
            )
        thread = normalize_subject(subject)
        approver = (boss.name, boss.address)
        self.fact("deal_approver", f"Who approved the {code} deal with {client}?", approver, m2, code, thread=thread)
        self.fact(
            "deal_amount",
            f"What amount was agreed with {client} for the {code} deal?",
            _money(agreed),
            m2,
            code,
            thread=thread,
            evidence=f"${agreed:,}",
        )
        self.fact(
            "deal_place",
            f"In which city will the {code} contract with {client} be signed?",
            (city,),
            m2,
            code,
            thread=thread,
            evidence=city,
        )
        self.fact(
            "deal_date",
            f"On what date will the {code} contract with {client} be signed?",
            date_aliases(eng.when(sign).date()),
            m2,
            code,
            thread=thread,
            evidence=sign_date,
        )
        names = ", ".join(eng.name_of(a) for a in cc)
        self.fact(
            "proposal_cc",
            f"Who was copied on the proposal for the {code} deal?",
            (names, ", ".join(cc)),
            m1,
            code,
            thread=thread,
            answer_list=list(cc),
        )

    def meeting(self) -> None:
        r, eng = self.r, self.eng
        code = eng.codename(self.i)
        team = r.choice(list(eng.teams))
        host = self.person(team)
        to = self.others(team, r.randint(2, 6), (host.address,))
        what = f"{code} {r.choice(_MEETING_KINDS)}"
        room = f"{r.choice(_ROOM_NAMES)} Room ({r.randint(2, 30)}{r.choice('ABCD')})"
        t_meet = self.day_after(self.start, 2, 14)
        when_text = f"{eng.long_date(t_meet)} at {eng.when(t_meet):%H:%M}"
        subject = what
        m1 = self.send(
            self.start,
            host.address,
            to,
            (),
            subject,
            f"Let's meet on {when_text} in the {room} for the {what}. {self.filler(1, 4)}",
        )
        t = m1.date
        for who in r.sample(to, min(len(to), r.randint(0, 2))):
            t = self.later(t, 0.2, 3)
            self.send(t, who, (host.address,), (), "RE: " + subject, f"Works for me. {self.filler(0, 2)}", m1)
        source = m1
        if r.random() < 0.3:
            t_meet = self.day_after(t_meet, 1, 7)
            when_text = f"{eng.long_date(t_meet)} at {eng.when(t_meet):%H:%M}"
            t = self.later(t, 6, 30)
            source = self.send(
                t,
                host.address,
                to,
                (),
                "RE: " + subject,
                f"We need to move the {what} to {when_text}, same room. {self.filler(0, 2)}",
                m1,
            )
        thread = normalize_subject(subject)
        day_text = date_aliases(eng.when(t_meet).date())[1]
        self.fact(
            "meeting_date",
            f"On what date is the {what}?",
            date_aliases(eng.when(t_meet).date()),
            source,
            code,
            thread=thread,
            evidence=day_text,
            rescheduled=source is not m1,
        )
        self.fact(
            "meeting_room",
            f"Where is the {what} held?",
            (room, room.split(" (")[0]),
            m1,
            code,
            thread=thread,
            evidence=room,
        )

    def offsite(self) -> None:
        r, eng = self.r, self.eng
        code = eng.codename(self.i)
        team = r.choice(list(eng.teams))
        boss = eng.managers[team]
        to = tuple(e.address for e in eng.teams[team] if e is not boss) or (
            self.person(exclude=(boss.address,)).address,
        )
        city = r.choice(_CITIES)
        venue = f"{code} {r.choice(_VENUE_KINDS)}"
        t_off = self.day_after(self.start, 14, 60)
        day_text = date_aliases(eng.when(t_off).date())[1]
        subject = f"Save the date: {team} offsite at {code}"
        m1 = self.send(
            self.start,
            boss.address,
            to,
            (),
            subject,
            f"Our {team} offsite will be at the {venue} in {city} on {day_text}. {self.filler(1, 4)}",
        )
        thread = normalize_subject(subject)
        self.fact(
            "offsite_place",
            f"Where is the {team} team's offsite at {code} taking place?",
            (f"{venue}, {city}", venue, city),
            m1,
            code,
            thread=thread,
            evidence=f"{venue} in {city}",
        )
        self.fact(
            "offsite_date",
            f"On what date is the {team} team's offsite at {code}?",
            date_aliases(eng.when(t_off).date()),
            m1,
            code,
            thread=thread,
            evidence=day_text,
        )

    def project(self) -> None:
        r, eng = self.r, self.eng
        code = eng.codename(self.i)
        team = r.choice(list(eng.teams))
        boss = eng.managers[team]
        lead = self.person(team, exclude=(boss.address,))
        to = self.others(team, r.randint(2, 5), (boss.address,))
        if lead.address not in to:
            to = (lead.address, *to)
        budget = r.randrange(10, 300) * 1_000
        subject = f"Kickoff: Project {code}"
        m1 = self.send(
            self.start,
            boss.address,
            to,
            (),
            subject,
            f"We are starting Project {code}. {lead.name} will lead it, with a budget of ${budget:,}. "
            f"{self.filler(2, 5)}",
        )
        t = m1.date
        for who in r.sample(to, min(len(to), r.randint(0, 2))):
            t = self.later(t, 0.5, 20)
            self.send(t, who, (boss.address,), (), "RE: " + subject, self.filler(1, 3), m1)
        thread = normalize_subject(subject)
        self.fact(
            "project_lead",
            f"Who leads Project {code}?",
            (lead.name, lead.address),
            m1,
            code,
            thread=thread,
            evidence=lead.name,
        )
        self.fact(
            "project_budget",
            f"What is the budget of Project {code}?",
            _money(budget),
            m1,
            code,
            thread=thread,
            evidence=f"${budget:,}",
        )

    # stories without facts

    def chatter(self) -> None:
        r = self.r
        a = self.person()
        to = self.others(a.team, r.randint(1, 3), (a.address,))
        cc = self.others(a.team, 1, (a.address, *to)) if r.random() < 0.3 else ()
        w, w2 = (self.eng.vocab[r.randrange(40, 400)] for _ in range(2))
        subject = r.choice(_CHATTER).format(w=w, w2=w2, W=w.capitalize())
        msg = self.send(self.start, a.address, to, cc, subject, self.filler(1, 6))
        t = msg.date
        for _ in range(r.randint(0, 3)):
            t = self.later(t, 0.1, 26)
            if r.random() < 0.2:
                fwd_to = self.person(exclude=(msg.sender,)).address
                msg = self.send(t, msg.to[0], (fwd_to,), (), "FW: " + subject, f"FYI. {self.filler(0, 2)}", msg, True)
            else:
                msg = self.send(t, msg.to[0], (msg.sender,), msg.cc, "RE: " + subject, self.filler(1, 4), msg)

    def client(self) -> None:
        r = self.r
        client, _contact, address = r.choice(self.eng.clients)
        lead = self.person()
        subject = f"{client} order {r.randint(1000, 99999)}"
        m = self.send(self.start, address, (lead.address,), (), subject, self.filler(1, 5))
        if r.random() < 0.5:
            self.send(self.later(m.date, 1, 30), lead.address, (address,), (), "RE: " + subject, self.filler(1, 3), m)

    def newsletter(self) -> None:
        title, sender, subscribers = self.r.choice(self.eng.newsletters)
        text = self.filler(6, 14) + "\n\nTo unsubscribe from this newsletter, click here."
        self.send(self.start, sender, subscribers, (), f"{title} - issue {self.i}", text)

    def announcement(self) -> None:
        r = self.r
        n = len(self.eng.employees)
        to = tuple(e.address for e in r.sample(self.eng.employees, max(3, min(n, r.randint(3, 40)))))
        self.send(self.start, f"announcements@{self.eng.domain}", to, (), r.choice(_ANNOUNCEMENTS), self.filler(2, 6))


# ------------------------------------------------------------------------------------ company


class CompanyEmails:
    """The company's :class:`Email` records as a re-iterable stream (each ``iter`` replays the seed)."""

    def __init__(self, company: Company, bodies: bool = True) -> None:
        self._company = company
        self._bodies = bodies

    def __len__(self) -> int:
        return self._company.num_emails

    def __iter__(self) -> Iterator[Email]:
        return self._company._records(self._bodies)


class Company:
    """A generated company: employees, teams, its mail (``emails``) and exact questions (``questions``)."""

    def __init__(self, num_emails: int, seed: int = 0, num_employees: int | None = None) -> None:
        self._eng = _Engine(num_emails, seed, num_employees)
        self.num_emails = num_emails
        self.seed = seed
        self.name = self._eng.name
        self.domain = self._eng.domain
        self.employees: tuple[Employee, ...] = tuple(self._eng.employees)
        self.teams: dict[str, tuple[str, ...]] = {t: tuple(e.owner for e in m) for t, m in self._eng.teams.items()}

    def __repr__(self) -> str:
        return (
            f"Company({self.name!r}, num_emails={self.num_emails}, employees={len(self.employees)}, seed={self.seed})"
        )

    @property
    def emails(self) -> CompanyEmails:
        """Every inbox copy, in date order; iterate again to regenerate (nothing is kept in memory)."""
        return CompanyEmails(self)

    @property
    def owners(self) -> tuple[str, ...]:
        return tuple(e.owner for e in self.employees)

    def _messages(self, bodies: bool) -> Iterator[tuple[_Msg, list[_Fact] | None, int]]:
        """Messages in date order with, for the last message of each story, that story's facts and size."""
        heap: list[tuple[int, int, int, _Msg]] = []
        pending: dict[int, tuple[int, list[_Fact]]] = {}
        for start, msgs, facts in self._eng.stories(bodies):
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

    def _copies(self, m: _Msg) -> list[tuple[str, str]]:
        return self._eng.copies(m)

    def _records(self, bodies: bool) -> Iterator[Email]:
        left = self.num_emails
        eng = self._eng
        for m, _, _ in self._messages(bodies):
            date = eng.iso(m.date)
            for owner, folder in self._copies(m):
                if left == 0:
                    return
                left -= 1
                yield Email(m.message_id, date, m.sender, m.to, m.cc, (), m.subject, m.body, owner, folder)

    @functools.cached_property
    def questions(self) -> list[EmailQuestion]:
        """One question per fact of each story whose messages all made it into the stream."""
        eng = self._eng
        left = self.num_emails
        out: list[EmailQuestion] = []
        test_teams = self._test_owners()
        for m, facts, _ in self._messages(bodies=False):
            copies = self._copies(m)
            if len(copies) > left:
                break
            left -= len(copies)
            if not facts:
                continue
            for n, f in enumerate(facts):
                holders = sorted(owner for owner, _ in self._copies(f.source))
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
                            "split": "test" if owner in test_teams else "train",
                            **f.meta,
                        },
                    )
                )
            if left == 0:
                break
        return out

    def _test_owners(self) -> set[str]:
        rng = random.Random(f"split-{self.seed}")
        owners = sorted(self.owners)
        return set(rng.sample(owners, max(1, round(0.2 * len(owners)))))


def generate_company(num_emails: int, seed: int = 0, *, num_employees: int | None = None) -> Company:
    """A company whose mail holds exactly ``num_emails`` inbox records (see the module docstring)."""
    return Company(num_emails, seed, num_employees)


@functools.cache
def default_company() -> Company:
    """The embedded default: 5,000 inbox records, seed 0."""
    return generate_company(DEFAULT_COMPANY_SIZE, 0)
