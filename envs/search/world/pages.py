"""The text of a world's pages: one encyclopedia paragraph per entity, in a few wordings.

Every fact a question asks about is stated on the page of its entity, by name; relations name
the other entity ("Born in Velmorholm in 1902, ..."), so a bridge question is answered by
following names from page to page. Which wording a page uses, and its extra sentence, are
attributes too (``variant``, ``extra``).
"""

from __future__ import annotations

import numpy as np

from horizongym.envs.search.world.entities import Entities
from horizongym.envs.search.world.layout import ORG, PERSON, PLACE, WORK
from horizongym.envs.search.world.vocabulary import (
    AWARDS,
    DIRECTIONS,
    FEATURES,
    GENRES,
    INDUSTRIES,
    OCCUPATIONS,
    ORDINALS,
    ORG_EXTRAS,
    ORG_KINDS,
    ORG_NOTES,
    PERSON_EXTRAS,
    PLACE_EXTRAS,
    PLOTS,
    ROLES,
    WORK_EXTRAS,
)

__all__ = ["pages", "surname", "with_article"]


def with_article(phrase: str) -> str:
    """``phrase`` with its indefinite article ("an 1889 film", "an economist", "a 1958 film")."""
    vowel_sound = phrase[0] in "aeiouAEIOU" or phrase.startswith(("18", "8", "11"))
    return f"{'an' if vowel_sound else 'a'} {phrase}"


def surname(full_name: str) -> str:
    """The last word of a person's name."""
    return full_name.rsplit(" ", 1)[-1]


def pages(entities: Entities, kind: int, ln: np.ndarray) -> list[str]:
    """The page texts of the entities ``ln`` of type ``kind``."""
    return (person_pages, place_pages, org_pages, work_pages)[kind](entities, ln)


def person_pages(entities: Entities, ln: np.ndarray) -> list[str]:
    """The pages of the people ``ln``, in one of 3 wordings each."""
    a = entities.person(ln)
    names = entities.names(PERSON, ln)
    bps = entities.names(PLACE, a["birthplace"])
    emps = entities.names(ORG, a["employer"])
    almas = entities.names(ORG, a["alma"])
    friends = entities.names(PERSON, a["friend"])
    dem, sur_of = entities.naming.demonyms, surname
    out = []
    for name, bp, emp, alma, friend, by, dy, c, occ, aw, ay, v, x in zip(
        names,
        bps,
        emps,
        almas,
        friends,
        a["birth"].tolist(),
        a["death"].tolist(),
        a["country"].tolist(),
        a["occupation"].tolist(),
        a["award"].tolist(),
        a["award_year"].tolist(),
        a["variant"].tolist(),
        a["extra"].tolist(),
        strict=True,
    ):
        sur, nat, job, award = sur_of(name), dem[c], OCCUPATIONS[occ], AWARDS[aw]
        extra = PERSON_EXTRAS[x].format(sur=sur, bp=bp, alma=alma)
        was = "was" if dy > 0 else "is"
        if v == 0:
            life = f"{by}–{dy}" if dy > 0 else f"born {by}"
            text = (
                f"{name} ({life}) {was} a {nat} {job}. Born in {bp} in {by}, {sur} studied at {alma} "
                f"and later worked for {emp} for many years. {sur} received the {award} in {ay} and kept up "
                f"a long correspondence with {friend}. {extra}"
            )
        elif v == 1:
            died = f" and died in {dy}" if dy > 0 else ""
            text = (
                f"{name} {was} {with_article(job)} who was born in {bp} in {by}{died}. A {nat} by birth, {sur} was "
                f"educated at {alma}. {sur} spent most of a long career working for {emp}. Among many "
                f"honours, {sur} was given the {award} in {ay}. {friend} was a close friend and colleague. {extra}"
            )
        else:
            died = f" {sur} died in {dy}." if dy > 0 else ""
            text = (
                f"{name} (born {by} in {bp}) {was} {with_article(job)} of {nat} nationality. After graduating from "
                f"{alma}, {sur} was employed by {emp}, and the work done there won {sur} the {award} in "
                f"{ay}. {sur} is often mentioned together with {friend}.{died} {extra}"
            )
        out.append(text)
    return out


def place_pages(entities: Entities, ln: np.ndarray) -> list[str]:
    """The pages of the places ``ln``, in one of 3 wordings each."""
    a = entities.place(ln)
    names = entities.names(PLACE, ln)
    twins = entities.names(PLACE, a["twin"])
    nears = entities.names(PLACE, a["near"])
    countries = entities.naming.countries
    out = []
    for name, twin, near, c, pop, fy, f1, f2, km, d, ty, v, x in zip(
        names,
        twins,
        nears,
        a["country"].tolist(),
        a["population"].tolist(),
        a["founded"].tolist(),
        a["feature1"].tolist(),
        a["feature2"].tolist(),
        a["km"].tolist(),
        a["direction"].tolist(),
        a["twin_year"].tolist(),
        a["variant"].tolist(),
        a["extra"].tolist(),
        strict=True,
    ):
        extra = PLACE_EXTRAS[x]
        country, where = countries[c], f"{km} kilometres {DIRECTIONS[d]} of {near}"
        if v == 0:
            text = (
                f"{name} is a city in {country} with a population of {pop:,}. It was founded in {fy} and "
                f"lies {where}. The city is known for its {FEATURES[f1]} and its {FEATURES[f2]}. "
                f"{extra} Since {ty}, {name} has been twinned with {twin}."
            )
        elif v == 1:
            text = (
                f"{name} is a town in {country}, {where}. Founded in {fy}, it had a population of {pop:,} "
                f"at the last census. Visitors come for the {FEATURES[f1]} and the {FEATURES[f2]}. "
                f"The town is twinned with {twin}. {extra}"
            )
        else:
            text = (
                f"Founded in {fy}, {name} is a city of {pop:,} people in {country}. It lies {where}, and "
                f"its {FEATURES[f1]} appear on many postcards, as does its {FEATURES[f2]}. In {ty} "
                f"{name} was twinned with {twin}. {extra}"
            )
        out.append(text)
    return out


def org_pages(entities: Entities, ln: np.ndarray) -> list[str]:
    """The pages of the organisations ``ln``, in one of 3 wordings each."""
    a = entities.org(ln)
    names = entities.names(ORG, ln)
    founders = entities.names(PERSON, a["founder"])
    hqs = entities.names(PLACE, a["hq"])
    offices = entities.names(PLACE, a["office"])
    out = []
    for name, founder, hq, office, kind, fy, oy, staff, ind, note, v, x in zip(
        names,
        founders,
        hqs,
        offices,
        a["kind"].tolist(),
        a["founded"].tolist(),
        a["office_year"].tolist(),
        a["staff"].tolist(),
        a["industry"].tolist(),
        a["note"].tolist(),
        a["variant"].tolist(),
        a["extra"].tolist(),
        strict=True,
    ):
        what = with_article(ORG_KINDS[kind] if kind != 3 else f"{INDUSTRIES[ind]} company")
        remark = f"{ORG_NOTES[kind][note]} {ORG_EXTRAS[x]}"
        if v == 0:
            text = (
                f"{name} is {what} founded in {fy} by {founder}. It is headquartered in {hq} and "
                f"employs about {staff:,} people. In {oy} it opened a second office in {office}. {remark}"
            )
        elif v == 1:
            text = (
                f"Founded by {founder} in {fy}, {name} is {what} with its headquarters in {hq}. "
                f"{remark} A branch in {office} followed in {oy}, and today about {staff:,} people "
                f"work for {name}."
            )
        else:
            text = (
                f"{name} is {what} based in {hq}. It was established in {fy} by {founder}, who led it "
                f"for many years. The firm has about {staff:,} staff and, since {oy}, an office in {office}. "
                f"{remark}"
            )
        out.append(text)
    return out


def work_pages(entities: Entities, ln: np.ndarray) -> list[str]:
    """The pages of the works ``ln``, in one of 2 wordings each."""
    a = entities.work(ln)
    titles = entities.names(WORK, ln)
    creators = entities.names(PERSON, a["creator"])
    pubs = entities.names(ORG, a["publisher"])
    settings = entities.names(PLACE, a["setting"])
    out = []
    for title, creator, pub, setting, kind, year, g, role, plot, aw, ordn, v, x in zip(
        titles,
        creators,
        pubs,
        settings,
        a["kind"].tolist(),
        a["year"].tolist(),
        a["genre"].tolist(),
        a["role"].tolist(),
        a["plot"].tolist(),
        a["award"].tolist(),
        a["ordinal"].tolist(),
        a["variant"].tolist(),
        a["extra"].tolist(),
        strict=True,
    ):
        extra = WORK_EXTRAS[x]
        genre, story = GENRES[kind][g], f"a {ROLES[role]} who {PLOTS[plot]}"
        award = AWARDS[aw]
        if kind == 0:
            if v == 0:
                text = (
                    f"{title} is {with_article(str(year))} {genre} novel by {creator}, published by {pub}. "
                    f"Set in {setting}, it follows {story}. The novel won the {award} the following year and has been "
                    f"translated into several languages. {extra}"
                )
            else:
                text = (
                    f"{title} is {with_article(genre)} novel written by {creator}. {pub} first published it in {year}. "
                    f"The book follows {story}, and much of it takes place in {setting}. Critics praised "
                    f"its patient style, and it was later shortlisted for the {award}. {extra}"
                )
        elif kind == 1:
            if v == 0:
                text = (
                    f"{title} is {with_article(str(year))} {genre} film directed by {creator} and produced by {pub}. "
                    f"The film follows {story} and was shot on location in {setting}. It received the {award} for "
                    f"its photography. {extra}"
                )
            else:
                text = (
                    f"{title} is {with_article(genre)} film released in {year}. It was directed by {creator}, produced "
                    f"by {pub}, and filmed mostly in {setting}. The story follows {story}. The film was "
                    f"nominated for the {award}. {extra}"
                )
        else:
            if v == 0:
                text = (
                    f"{title} is the {ORDINALS[ordn]} studio album by {creator}, released in {year} on "
                    f"{pub}. The {genre} record was made in a converted church in {setting}. Its songs tell "
                    f"of {story}, and the album won the {award}. {extra}"
                )
            else:
                text = (
                    f"{title} is {with_article(genre)} album by {creator}. It was released in {year} by {pub} and "
                    f"recorded in {setting} over one winter. Its songs follow {story}. It was "
                    f"{creator}'s {ORDINALS[ordn]} studio album and was shortlisted for the {award}. {extra}"
                )
        out.append(text)
    return out
