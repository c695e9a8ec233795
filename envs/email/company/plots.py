"""What a company's mail is about: the kinds of story, each a thread of one to a few messages.

``deal``, ``meeting``, ``offsite`` and ``project`` stories state facts that questions ask about,
under a code name used nowhere else; ``chatter``, ``client``, ``newsletter`` and
``announcement`` stories are the noise around them. :data:`STORY_KINDS` weighs how often each
kind is told.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from horizongym.envs.email.company.story import Story
from horizongym.envs.email.company.vocabulary import (
    ANNOUNCEMENTS,
    CHATTER,
    CITIES,
    MEETING_KINDS,
    PRODUCTS,
    ROOM_NAMES,
    VENUE_KINDS,
)
from horizongym.envs.email.questions import date_aliases, normalize_subject

__all__ = ["KIND_SEQUENCE", "PLOTS", "STORY_KINDS", "money"]


def money(amount: int) -> tuple[str, ...]:
    """The accepted forms of an amount of dollars ("$1,200,000", "1200000", "$1.2 million", ...)."""
    text = f"${amount:,}"
    forms = [text, f"{amount:,}", str(amount), f"${amount}"]
    if amount % 1_000_000 == 0:
        forms.append(f"${amount // 1_000_000} million")
    elif amount % 100_000 == 0 and amount >= 1_000_000:
        forms.append(f"${amount / 1_000_000:.1f} million")
    return tuple(dict.fromkeys(forms))


def deal(story: Story) -> None:
    """A deal: a proposal to the manager (cc teammates), the approval with amount, city and date, often a forward."""
    r, eng = story.r, story.eng
    code = eng.codes.codename(story.i)
    team = r.choice(list(eng.people.teams))
    boss = eng.people.managers[team]
    lead = story.person(team, exclude=(boss.address,))
    firm, contact, _ = r.choice(eng.people.clients)
    cc = story.others(team, r.randint(1, 3), (boss.address, lead.address))
    asked = r.randrange(20, 400) * 5_000
    agreed = asked - r.randrange(1, min(30, asked // 10_000)) * 5_000 if r.random() < 0.6 else asked
    subject = f"Proposal: {code} deal with {firm}"
    product = r.choice(PRODUCTS)
    m1 = story.send(
        story.start,
        lead.address,
        (boss.address,),
        cc,
        subject,
        f"I'd like your approval for the {code} deal with {firm} ({product}). They are asking for "
        f"${asked:,}. {story.filler(2, 6)}",
    )
    t2 = story.later(m1.date, 1, 30)
    city = r.choice(CITIES)
    sign = story.day_after(t2, 5, 30)
    sign_date = date_aliases(eng.when(sign).date())[1]
    m2 = story.send(
        t2,
        boss.address,
        (lead.address,),
        cc,
        "RE: " + subject,
        f"Approved. We agreed on ${agreed:,} with {firm} for {code}. {contact} will sign the contract with "
        f"us in {city} on {sign_date}. {story.filler(1, 4)}",
        m1,
    )
    if r.random() < 0.6:
        legal = story.person(r.choice(list(eng.people.teams)), exclude=(lead.address, boss.address))
        story.send(
            story.later(t2, 1, 48),
            lead.address,
            (legal.address,),
            (),
            "FW: " + subject,
            f"FYI, see below. Could you prepare the paperwork? {story.filler(0, 2)}",
            m2,
            forward=True,
        )
    thread = normalize_subject(subject)
    approver = (boss.name, boss.address)
    story.fact("deal_approver", f"Who approved the {code} deal with {firm}?", approver, m2, code, thread=thread)
    story.fact(
        "deal_amount",
        f"What amount was agreed with {firm} for the {code} deal?",
        money(agreed),
        m2,
        code,
        thread=thread,
        evidence=f"${agreed:,}",
    )
    story.fact(
        "deal_place",
        f"In which city will the {code} contract with {firm} be signed?",
        (city,),
        m2,
        code,
        thread=thread,
        evidence=city,
    )
    story.fact(
        "deal_date",
        f"On what date will the {code} contract with {firm} be signed?",
        date_aliases(eng.when(sign).date()),
        m2,
        code,
        thread=thread,
        evidence=sign_date,
    )
    names = ", ".join(eng.people.name_of(a) for a in cc)
    story.fact(
        "proposal_cc",
        f"Who was copied on the proposal for the {code} deal?",
        (names, ", ".join(cc)),
        m1,
        code,
        thread=thread,
        answer_list=list(cc),
    )


def meeting(story: Story) -> None:
    """A meeting: an invitation (date, time, room), acceptances, and sometimes a reschedule to a new date."""
    r, eng = story.r, story.eng
    code = eng.codes.codename(story.i)
    team = r.choice(list(eng.people.teams))
    host = story.person(team)
    to = story.others(team, r.randint(2, 6), (host.address,))
    what = f"{code} {r.choice(MEETING_KINDS)}"
    room = f"{r.choice(ROOM_NAMES)} Room ({r.randint(2, 30)}{r.choice('ABCD')})"
    t_meet = story.day_after(story.start, 2, 14)
    when_text = f"{eng.long_date(t_meet)} at {eng.when(t_meet):%H:%M}"
    subject = what
    m1 = story.send(
        story.start,
        host.address,
        to,
        (),
        subject,
        f"Let's meet on {when_text} in the {room} for the {what}. {story.filler(1, 4)}",
    )
    t = m1.date
    for who in r.sample(to, min(len(to), r.randint(0, 2))):
        t = story.later(t, 0.2, 3)
        story.send(t, who, (host.address,), (), "RE: " + subject, f"Works for me. {story.filler(0, 2)}", m1)
    source = m1
    if r.random() < 0.3:
        t_meet = story.day_after(t_meet, 1, 7)
        when_text = f"{eng.long_date(t_meet)} at {eng.when(t_meet):%H:%M}"
        t = story.later(t, 6, 30)
        source = story.send(
            t,
            host.address,
            to,
            (),
            "RE: " + subject,
            f"We need to move the {what} to {when_text}, same room. {story.filler(0, 2)}",
            m1,
        )
    thread = normalize_subject(subject)
    day_text = date_aliases(eng.when(t_meet).date())[1]
    story.fact(
        "meeting_date",
        f"On what date is the {what}?",
        date_aliases(eng.when(t_meet).date()),
        source,
        code,
        thread=thread,
        evidence=day_text,
        rescheduled=source is not m1,
    )
    story.fact(
        "meeting_room",
        f"Where is the {what} held?",
        (room, room.split(" (")[0]),
        m1,
        code,
        thread=thread,
        evidence=room,
    )


def offsite(story: Story) -> None:
    """A team offsite: the manager invites the team to a venue on a date."""
    r, eng = story.r, story.eng
    code = eng.codes.codename(story.i)
    team = r.choice(list(eng.people.teams))
    boss = eng.people.managers[team]
    to = tuple(e.address for e in eng.people.teams[team] if e is not boss) or (
        story.person(exclude=(boss.address,)).address,
    )
    city = r.choice(CITIES)
    venue = f"{code} {r.choice(VENUE_KINDS)}"
    t_off = story.day_after(story.start, 14, 60)
    day_text = date_aliases(eng.when(t_off).date())[1]
    subject = f"Save the date: {team} offsite at {code}"
    m1 = story.send(
        story.start,
        boss.address,
        to,
        (),
        subject,
        f"Our {team} offsite will be at the {venue} in {city} on {day_text}. {story.filler(1, 4)}",
    )
    thread = normalize_subject(subject)
    story.fact(
        "offsite_place",
        f"Where is the {team} team's offsite at {code} taking place?",
        (f"{venue}, {city}", venue, city),
        m1,
        code,
        thread=thread,
        evidence=f"{venue} in {city}",
    )
    story.fact(
        "offsite_date",
        f"On what date is the {team} team's offsite at {code}?",
        date_aliases(eng.when(t_off).date()),
        m1,
        code,
        thread=thread,
        evidence=day_text,
    )


def project(story: Story) -> None:
    """A project kickoff naming the lead and the budget; some teammates reply."""
    r, eng = story.r, story.eng
    code = eng.codes.codename(story.i)
    team = r.choice(list(eng.people.teams))
    boss = eng.people.managers[team]
    lead = story.person(team, exclude=(boss.address,))
    to = story.others(team, r.randint(2, 5), (boss.address,))
    if lead.address not in to:
        to = (lead.address, *to)
    budget = r.randrange(10, 300) * 1_000
    subject = f"Kickoff: Project {code}"
    m1 = story.send(
        story.start,
        boss.address,
        to,
        (),
        subject,
        f"We are starting Project {code}. {lead.name} will lead it, with a budget of ${budget:,}. {story.filler(2, 5)}",
    )
    t = m1.date
    for who in r.sample(to, min(len(to), r.randint(0, 2))):
        t = story.later(t, 0.5, 20)
        story.send(t, who, (boss.address,), (), "RE: " + subject, story.filler(1, 3), m1)
    thread = normalize_subject(subject)
    story.fact(
        "project_lead",
        f"Who leads Project {code}?",
        (lead.name, lead.address),
        m1,
        code,
        thread=thread,
        evidence=lead.name,
    )
    story.fact(
        "project_budget",
        f"What is the budget of Project {code}?",
        money(budget),
        m1,
        code,
        thread=thread,
        evidence=f"${budget:,}",
    )


def chatter(story: Story) -> None:
    """Internal back-and-forth with replies and forwards (no facts)."""
    r = story.r
    a = story.person()
    to = story.others(a.team, r.randint(1, 3), (a.address,))
    cc = story.others(a.team, 1, (a.address, *to)) if r.random() < 0.3 else ()
    w, w2 = (story.eng.vocabulary.words[r.randrange(40, 400)] for _ in range(2))
    subject = r.choice(CHATTER).format(w=w, w2=w2, W=w.capitalize())
    msg = story.send(story.start, a.address, to, cc, subject, story.filler(1, 6))
    t = msg.date
    for _ in range(r.randint(0, 3)):
        t = story.later(t, 0.1, 26)
        if r.random() < 0.2:
            fwd_to = story.person(exclude=(msg.sender,)).address
            msg = story.send(t, msg.to[0], (fwd_to,), (), "FW: " + subject, f"FYI. {story.filler(0, 2)}", msg, True)
        else:
            msg = story.send(t, msg.to[0], (msg.sender,), msg.cc, "RE: " + subject, story.filler(1, 4), msg)


def client(story: Story) -> None:
    """A client contact writes to an employee, who sometimes answers (no facts)."""
    r = story.r
    firm, _contact, address = r.choice(story.eng.people.clients)
    lead = story.person()
    subject = f"{firm} order {r.randint(1000, 99999)}"
    m = story.send(story.start, address, (lead.address,), (), subject, story.filler(1, 5))
    if r.random() < 0.5:
        story.send(story.later(m.date, 1, 30), lead.address, (address,), (), "RE: " + subject, story.filler(1, 3), m)


def newsletter(story: Story) -> None:
    """An external newsletter to its subscribers (no facts)."""
    title, sender, subscribers = story.r.choice(story.eng.people.newsletters)
    text = story.filler(6, 14) + "\n\nTo unsubscribe from this newsletter, click here."
    story.send(story.start, sender, subscribers, (), f"{title} - issue {story.i}", text)


def announcement(story: Story) -> None:
    """An internal announcement to a random set of employees (no facts)."""
    r = story.r
    n = len(story.eng.people.employees)
    to = tuple(e.address for e in r.sample(story.eng.people.employees, max(3, min(n, r.randint(3, 40)))))
    story.send(story.start, f"announcements@{story.eng.domain}", to, (), r.choice(ANNOUNCEMENTS), story.filler(2, 6))


PLOTS: dict[str, Callable[[Story], None]] = {
    "deal": deal,
    "meeting": meeting,
    "offsite": offsite,
    "project": project,
    "chatter": chatter,
    "client": client,
    "newsletter": newsletter,
    "announcement": announcement,
}
"""Each kind of story and the function that tells it."""

# How the stories are mixed (kind, weight); KIND_SEQUENCE repeats each kind weight times.
STORY_KINDS = (
    ("deal", 14),
    ("meeting", 18),
    ("offsite", 3),
    ("project", 8),
    ("chatter", 30),
    ("client", 10),
    ("newsletter", 12),
    ("announcement", 5),
)
KIND_SEQUENCE = tuple(itertools.chain.from_iterable([k] * w for k, w in STORY_KINDS))
