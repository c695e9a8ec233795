"""A fictional encyclopedia and multi-hop questions about it (the FictionalHot idea).

No model can know these answers from pre-training: every person, place, organisation and
work is invented, with names built from syllables. The world is what a ReSeek-style search
environment searches by default.

How it is built:

* ``num_documents`` entities, one encyclopedia paragraph (one :class:`Document`) each:
  40% people, 15% places, 20% organisations (publishers, film studios, record labels,
  companies, universities) and 25% works (novels, films, albums), interleaved.
* Name parts are shared on purpose: a few hundred first names and about a thousand surnames
  make every person's name; organisations and works are named after surnames and places
  ("Velmorholm Press", "The Lantern of Kastrin"); places share syllable roots. Names are
  unique per entity, but most of the corpus consists of distractors that share name parts
  and attribute values (birth years, birthplaces, founders) with the entities a question is
  about, so finding the right page takes reading, not one lucky query.
* Every attribute of entity ``i`` is a counter-based hash of ``(seed, i)``, so any entity
  can be rendered on its own and the corpus streams in chunks: one million documents never
  sit in memory together, and a second pass regenerates the same text. The name pools and
  the task sampling use seeded ``numpy.random.Generator`` / ``random.Random``; nothing
  touches a global RNG.
* Relations (a work's author and publisher, an organisation's founder and headquarters, a
  person's birthplace and employer, a town's twin town) are written into the pages by
  name, so a bridge question can be answered by following names from page to page.

Questions (:class:`QATask`): ``single`` (one page), ``bridge`` chains of 2 to 4 pages
("In which city was the founder of the studio that produced the film "X" born?"), and
``comparison`` of two pages ("Who was born first, A or B?"). The answer always appears in
the last gold page (for a comparison, both compared values appear in their pages).
``meta`` holds the hop chain (``chain``: entity names, one per gold page), the relation
path, and ``split`` (train/test, see :meth:`World.split`); an environment must never show
``meta`` to the agent.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from horizongym.envs.search.types import Document, QATask

__all__ = ["DEFAULT_WORLD_SIZE", "MAX_DOCUMENTS", "MIN_DOCUMENTS", "World", "default_world", "generate_world"]

MIN_DOCUMENTS = 200
MAX_DOCUMENTS = 2_000_000
DEFAULT_WORLD_SIZE = 5000

# ----------------------------------------------------------------------------------- pools

_ONSETS = "b d dr g k kr l m n r s st t th v vr z br sk".split()
_VOWELS_1 = "a e i o u ae ei y".split()
_VOWELS_2 = "a e i o ae ei ou y".split()
_FIRST_ENDS = "lin ric wen mir dan ssa ren vel nor thas zia kel dris mae".split()
_SUR_ENDS = "ski berg vich rin mont dahl sson quist holt vash zar ovic mann driel kov gaard".split()
_PLACE_ENDS = "holm vik grad stead thal mere wick dale burg haven mouth crest moor varre kesh lund brig sk".split()
_COUNTRY_ENDS = {"nia": "nian", "ria": "rian", "via": "vian", "stan": "stani", "desh": "deshi"}

# Every dictionary word (151k English words, 3-10 letters) that the syllable scheme above can
# produce. Generated names are checked against it, so no name is a real word.
_REAL_WORDS = frozenset(
    """bedravel bedrivel begonia bemask berewick besiren betask bizonia bolivia boronia brasenia brazilin bromelin
    brunonia butyric butyrin dagassa dagestan damask dataria develin digynia dimeric dimoric dinaric dineric
    dorask dosinia drynaria gadaria gazania gemaric generic gigeria gitalin gobelin gomavel gonomere kabistan
    kevalin krameria kromeski lanolin latania latherin lathyric lavinia liberia linaria linolin listeria lobaria
    lobelin lodowick logania lunaria magiric malaria malarin manavel megamere megaric melania melissa memoria
    mesomere metamere mikania molinia moneric motoric mudiria nevadan norelin ravelin relevel remask robinia
    roderic rodomont rudistan samaria satiric satyric savarin serolin setaria siberic sibiric siderin sirenia
    sisterin sonoric suberic suberin sudoric synovia taborin talaria talaric tamarin tariric tataric teskeria
    tethelin tethydan thalessa theileria titania toledan torenia tovaria tuberin tutania valeria valeric valerin
    valonia vanessa vateria velaric vesania vibrissa vidonia vigonia zamorin zanonia zenithal zizania zonaria""".split()
)

_OCCUPATIONS = (
    "novelist painter composer chemist architect botanist physician sculptor historian cartographer "
    "mathematician engineer economist photographer astronomer linguist diplomat poet violinist geologist "
    "playwright pianist philosopher archaeologist"
).split()
_AWARDS = (
    "Order of the Silver Heron",
    "Marrow Prize",
    "Golden Quill",
    "Lanternmark Medal",
    "Ashcombe Award",
    "Crown of Reeds",
    "Valdane Fellowship",
)
_FEATURES = (
    "glass workshops",
    "river harbour",
    "clock tower",
    "salt marshes",
    "lantern festival",
    "observatory",
    "textile mills",
    "stone bridges",
    "botanical garden",
    "winter market",
    "cathedral of red brick",
    "printing houses",
    "tram network",
    "lighthouse",
)
_DIRECTIONS = ("north", "south", "east", "west", "north-east", "north-west", "south-east", "south-west")
_NOUNS = (
    "Lantern Winter Harbour Orchard Silence Mirror Tide Ember Compass Meridian Garden Lighthouse Archive "
    "Masquerade Citadel Voyage Furnace Requiem Quarry Tapestry Ledger Cartographer Widow Heron Glacier Bell "
    "Aviary Ferryman Labyrinth Sparrow Orchestra Verdict Eclipse Monsoon Carousel Threshold Almanac Pilgrim "
    "Sanatorium Observatory"
).split()
_ORG_KINDS = ("publishing house", "film studio", "record label", "company", "university")
_ORG_SUFFIXES = (
    ("Press", "Books", "House", "Editions"),
    ("Pictures", "Films", "Studios", "Cinema"),
    ("Records", "Sound", "Music", "Recordings"),
    ("Holdings", "Industries", "Works", "Trading"),
    ("University", "Institute", "College", "Academy"),
)
_INDUSTRIES = ("shipbuilding", "textile", "mining", "railway", "porcelain", "brewing", "optics", "insurance")
_ORG_NOTES = (
    ("Its catalogue is known for translated poetry and long family sagas.", "It publishes around forty titles a year."),
    ("Its early silent films were restored in the 1990s.", "The studio runs two sound stages and a film archive."),
    ("The label began by recording brass bands and folk choirs.", "It is known for its hand-printed record sleeves."),
    ("The company began as a small family workshop.", "Its annual report lists offices in several countries."),
    ("The university is organised in six faculties.", "Its library holds a large collection of maps."),
)
_WORK_KINDS = ("novel", "film", "album")
_GENRES = (
    ("mystery", "historical", "science fiction", "romance", "adventure", "satirical", "gothic"),
    ("drama", "comedy", "thriller", "western", "war", "musical", "documentary"),
    ("jazz", "folk", "rock", "electronic", "chamber pop", "blues", "ambient"),
)
_ROLES = (
    "young clerk",
    "retired sailor",
    "village doctor",
    "travelling musician",
    "disgraced judge",
    "lighthouse keeper",
)
_PLOTS = (
    "returns home after twenty years",
    "inherits a failing theatre",
    "searches for a missing brother",
    "is caught up in a long winter strike",
    "tries to map a flooded valley",
    "keeps a secret from an entire town",
)
_ORDINALS = ("debut", "second", "third", "fourth", "fifth", "sixth")
_PERSON_EXTRAS = (
    "A street in {bp} now carries the name {sur}.",
    "{sur} kept detailed diaries that historians still consult.",
    "{sur} rarely gave interviews and avoided public life.",
    "A portrait of {sur} hangs in the main hall of {alma}.",
    "Two full-length biographies of {sur} have been written.",
    "{sur} spoke four languages and travelled widely.",
)
_PLACE_EXTRAS = (
    "Its economy rests on farming, small workshops and trade along the river.",
    "The old town has kept its medieval street plan.",
    "A weekly market has been held in the main square for centuries.",
    "The local newspaper has been printed there since the nineteenth century.",
    "Most residents work in services, schools and the port.",
)
_ORG_EXTRAS = (
    "Its archive is open to researchers by appointment.",
    "The founding family still holds a share of the firm.",
    "It has changed owners twice but kept its original name.",
    "Its first building still stands and now houses a small museum.",
)
_WORK_EXTRAS = (
    "Early reviews were mixed, but its reputation has grown steadily.",
    "A restored edition appeared several decades later.",
    "Its title was chosen only weeks before the release.",
    "It is often named among the finest works of its decade.",
)

# Entity types: person, place, organisation, work. One block of 20 documents holds
# 8 people, 3 places, 4 organisations and 5 works, interleaved.
PERSON, PLACE, ORG, WORK = 0, 1, 2, 3
_TYPE_NAMES = ("person", "place", "organisation", "work")
_PATTERN = "PWOPLWPOPWLPOWPWPOLP"
_BLOCK = len(_PATTERN)
_TYPE_OF_SLOT = np.array(["PLOW".index(c) for c in _PATTERN], dtype=np.int64)
_RANK_OF_SLOT = np.array([_PATTERN[:i].count(c) for i, c in enumerate(_PATTERN)], dtype=np.int64)
_PER_BLOCK = np.array([_PATTERN.count(c) for c in "PLOW"], dtype=np.int64)
_SLOTS_OF_TYPE = [np.array([i for i, c in enumerate(_PATTERN) if c == t], dtype=np.int64) for t in "PLOW"]

_MASK64 = (1 << 64) - 1


def _hash(key: int, stream: int, idx: np.ndarray) -> np.ndarray:
    """SplitMix64 of (key, stream, idx): independent-looking uint64s, one per index."""
    offset = np.uint64((key * 0x632BE59BD9B4E019 + stream * 0xD1B54A32D192ED03 + 0x2545F4914F6CDD1D) & _MASK64)
    with np.errstate(over="ignore"):
        x = idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + offset
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _below(key: int, stream: int, idx: np.ndarray, n: int | np.ndarray) -> np.ndarray:
    """Integers in ``[0, n)`` (``n`` may be an array), one per index."""
    return (_hash(key, stream, idx) % np.asarray(n, dtype=np.uint64)).astype(np.int64)


def _other(key: int, stream: int, idx: np.ndarray, n: int) -> np.ndarray:
    """Indices in ``[0, n)`` that differ from ``idx`` (``n >= 2``)."""
    return (idx + 1 + _below(key, stream, idx, n - 1)) % n


def _coprime(rng: np.random.Generator, m: int) -> int:
    while True:
        a = int(rng.integers(1, max(2, m)))
        if math.gcd(a, m) == 1:
            return a


def _root(rng: np.random.Generator) -> str:
    o, v1, v2 = _ONSETS, _VOWELS_1, _VOWELS_2
    return o[rng.integers(len(o))] + v1[rng.integers(len(v1))] + o[rng.integers(len(o))] + v2[rng.integers(len(v2))]


def _words(rng: np.random.Generator, n: int, endings: Sequence[str], used: set[str], roots: list[str]) -> list[str]:
    """``n`` new capitalised names: a root (often a shared one) plus an ending; none is a real word."""
    out: list[str] = []
    seen_roots = set(roots)
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"cannot make {n} distinct names from the syllable pools")
        root = roots[int(rng.integers(len(roots)))] if roots and rng.random() < 0.7 else _root(rng)
        word = root + endings[int(rng.integers(len(endings)))]
        if word in used or word in _REAL_WORDS:
            continue
        used.add(word)
        if root not in seen_roots:
            seen_roots.add(root)
            roots.append(root)
        out.append(word.capitalize())
    return out


# --------------------------------------------------------------------------------- the world


@dataclass(frozen=True, slots=True)
class _Entity:
    """One entity as the task builder sees it: its page, its values as written, its links."""

    kind: int
    local: int
    name: str
    doc_id: str
    subkind: int  # org kind (0-4) or work kind (0-2); 0 otherwise
    values: dict[str, str]
    links: dict[str, tuple[int, int]]


class _Generator:
    """Everything needed to render any document of a world from its index."""

    def __init__(self, num_documents: int, seed: int) -> None:
        if not MIN_DOCUMENTS <= num_documents <= MAX_DOCUMENTS:
            raise ValueError(f"num_documents must be in [{MIN_DOCUMENTS}, {MAX_DOCUMENTS}], got {num_documents}")
        self.n = num_documents
        self.seed = seed
        self.key = int.from_bytes(hashlib.sha256(f"horizongym-world-{seed}".encode()).digest()[:8], "little")
        full, rem = divmod(num_documents, _BLOCK)
        self.count = [int(full * _PER_BLOCK[t]) + _PATTERN[:rem].count("PLOW"[t]) for t in range(4)]
        n_person, n_place, n_org, _ = self.count
        self.org_kind_count = [(n_org - k + 4) // 5 for k in range(5)]

        rng = np.random.default_rng([seed, 0x5EA2C4])
        used: set[str] = set()
        roots: list[str] = []
        n_first = max(30, min(700, int(math.sqrt(n_person) * 0.8)))
        n_sur = max(40, math.ceil(1.3 * n_person / n_first))
        self.first = _words(rng, n_first, _FIRST_ENDS, used, roots)
        self.sur = _words(rng, n_sur, _SUR_ENDS, used, roots)
        self.places = _words(rng, n_place, _PLACE_ENDS, used, roots)
        n_country = max(8, min(60, n_place // 40))
        self.countries = _words(rng, n_country, tuple(_COUNTRY_ENDS), used, roots)
        self.demonyms = []
        for c in self.countries:
            ending = next(e for e in _COUNTRY_ENDS if c.endswith(e))
            self.demonyms.append(c[: -len(ending)] + _COUNTRY_ENDS[ending])
        self.stems = self.sur + self.places
        # Names come from affine permutations of a mixed-radix space: unique by construction.
        self.person_space = n_first * n_sur
        self.person_perm = (_coprime(rng, self.person_space), int(rng.integers(self.person_space)))
        self.org_space = len(self.stems) * 4
        self.org_perm = (_coprime(rng, self.org_space), int(rng.integers(self.org_space)))
        self.work_space = len(self.stems) * len(_NOUNS) * 3
        self.work_perm = (_coprime(rng, self.work_space), int(rng.integers(self.work_space)))

    # ---- layout: global document index <-> (type, local index)

    def doc_id(self, e: int) -> str:
        return f"fh{e:07d}"

    def global_index(self, kind: int, local: np.ndarray) -> np.ndarray:
        per = int(_PER_BLOCK[kind])
        return (local // per) * _BLOCK + _SLOTS_OF_TYPE[kind][local % per]

    def split_index(self, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slot = e % _BLOCK
        return _TYPE_OF_SLOT[slot], (e // _BLOCK) * _PER_BLOCK[_TYPE_OF_SLOT[slot]] + _RANK_OF_SLOT[slot]

    # ---- names

    def names(self, kind: int, local: np.ndarray) -> list[str]:
        if kind == PERSON:
            a, b = self.person_perm
            p = (a * local + b) % self.person_space
            first, sur = self.first, self.sur
            nf = len(first)
            return [f"{first[i]} {sur[j]}" for i, j in zip((p % nf).tolist(), (p // nf).tolist(), strict=True)]
        if kind == PLACE:
            places = self.places
            return [places[i] for i in local.tolist()]
        if kind == ORG:
            a, b = self.org_perm
            p = (a * (local // 5) + b) % self.org_space
            stems = self.stems
            return [
                f"{stems[s]} {_ORG_SUFFIXES[k][x]}"
                for s, x, k in zip((p // 4).tolist(), (p % 4).tolist(), (local % 5).tolist(), strict=True)
            ]
        a, b = self.work_perm
        p = (a * local + b) % self.work_space
        stems, nn = self.stems, len(_NOUNS)
        out = []
        for pattern, rest in zip((p % 3).tolist(), (p // 3).tolist(), strict=True):
            noun, stem = _NOUNS[rest % nn], stems[rest // nn]
            out.append(
                f"The {noun} of {stem}" if pattern == 0 else f"{stem} {noun}" if pattern == 1 else f"{noun} in {stem}"
            )
        return out

    # ---- attributes (numpy arrays, one entry per local index)

    def person_attrs(self, ln: np.ndarray) -> dict[str, np.ndarray]:
        k = self.key
        n_person, n_place, n_org, _ = self.count
        birth = 1780 + _below(k, 1, ln, 206)
        death = np.where(birth < 1935, np.minimum(birth + 40 + _below(k, 2, ln, 56), 2023), -1)
        birthplace = _below(k, 3, ln, n_place)
        uni_n = self.org_kind_count[4]
        return {
            "birth": birth,
            "death": death,
            "birthplace": birthplace,
            "country": _below(k, 101, birthplace, len(self.countries)),  # the birthplace's country
            "occupation": _below(k, 4, ln, len(_OCCUPATIONS)),
            "employer": _below(k, 5, ln, n_org),
            "alma": 5 * _below(k, 6, ln, uni_n) + 4,
            "friend": _other(k, 7, ln, n_person),
            "award": _below(k, 8, ln, len(_AWARDS)),
            "award_year": np.minimum(birth + 28 + _below(k, 9, ln, 30), 2023),
            "variant": _below(k, 10, ln, 3),
            "extra": _below(k, 11, ln, len(_PERSON_EXTRAS)),
        }

    def place_attrs(self, ln: np.ndarray) -> dict[str, np.ndarray]:
        k = self.key
        n_place = self.count[PLACE]
        u = (_hash(k, 102, ln) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        population = np.exp(math.log(900) + u * (math.log(3_000_000) - math.log(900))).astype(np.int64)
        f1 = _below(k, 105, ln, len(_FEATURES))
        return {
            "country": _below(k, 101, ln, len(self.countries)),
            "population": population,
            "founded": 850 + _below(k, 103, ln, 1050),
            "twin": _other(k, 104, ln, n_place),
            "feature1": f1,
            "feature2": (f1 + 1 + _below(k, 106, ln, len(_FEATURES) - 1)) % len(_FEATURES),
            "near": _other(k, 107, ln, n_place),
            "km": 5 + _below(k, 108, ln, 140),
            "direction": _below(k, 109, ln, len(_DIRECTIONS)),
            "twin_year": 1950 + _below(k, 110, ln, 70),
            "variant": _below(k, 111, ln, 3),
            "extra": _below(k, 112, ln, len(_PLACE_EXTRAS)),
        }

    def org_attrs(self, ln: np.ndarray) -> dict[str, np.ndarray]:
        k = self.key
        n_person, n_place, _, _ = self.count
        founder = _below(k, 201, ln, n_person)
        founder_birth = 1780 + _below(k, 1, founder, 206)
        founded = np.minimum(founder_birth + 22 + _below(k, 202, ln, 40), 2023)
        return {
            "kind": ln % 5,
            "founder": founder,
            "founded": founded,
            "hq": _below(k, 203, ln, n_place),
            "office": _other(k, 204, ln, n_place),
            "office_year": np.minimum(founded + 3 + _below(k, 205, ln, 40), 2023),
            "staff": 20 + _below(k, 206, ln, 9000),
            "industry": _below(k, 207, ln, len(_INDUSTRIES)),
            "note": _below(k, 208, ln, 2),
            "variant": _below(k, 209, ln, 3),
            "extra": _below(k, 210, ln, len(_ORG_EXTRAS)),
        }

    def work_attrs(self, ln: np.ndarray) -> dict[str, np.ndarray]:
        k = self.key
        n_person, n_place, _, _ = self.count
        kind = ln % 3
        creator = _below(k, 301, ln, n_person)
        creator_birth = 1780 + _below(k, 1, creator, 206)
        per_kind = np.array(self.org_kind_count[:3], dtype=np.int64)[kind]
        return {
            "kind": kind,
            "creator": creator,
            "year": np.minimum(creator_birth + 20 + _below(k, 302, ln, 45), 2024),
            "publisher": 5 * _below(k, 303, ln, per_kind) + kind,
            "genre": _below(k, 304, ln, 7),
            "setting": _below(k, 305, ln, n_place),
            "role": _below(k, 306, ln, len(_ROLES)),
            "plot": _below(k, 307, ln, len(_PLOTS)),
            "award": _below(k, 308, ln, len(_AWARDS)),
            "ordinal": _below(k, 309, ln, len(_ORDINALS)),
            "variant": _below(k, 310, ln, 2),
            "extra": _below(k, 311, ln, len(_WORK_EXTRAS)),
        }

    # ---- rendering: (type, local indices) -> document texts

    def render(self, kind: int, ln: np.ndarray) -> list[str]:
        return (self._render_person, self._render_place, self._render_org, self._render_work)[kind](ln)

    def _render_person(self, ln: np.ndarray) -> list[str]:
        a = self.person_attrs(ln)
        names = self.names(PERSON, ln)
        bps = self.names(PLACE, a["birthplace"])
        emps = self.names(ORG, a["employer"])
        almas = self.names(ORG, a["alma"])
        friends = self.names(PERSON, a["friend"])
        dem, sur_of = self.demonyms, _surname
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
            sur, nat, job, award = sur_of(name), dem[c], _OCCUPATIONS[occ], _AWARDS[aw]
            extra = _PERSON_EXTRAS[x].format(sur=sur, bp=bp, alma=alma)
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
                    f"{name} {was} {_a(job)} who was born in {bp} in {by}{died}. A {nat} by birth, {sur} was "
                    f"educated at {alma}. {sur} spent most of a long career working for {emp}. Among many "
                    f"honours, {sur} was given the {award} in {ay}. {friend} was a close friend and colleague. {extra}"
                )
            else:
                died = f" {sur} died in {dy}." if dy > 0 else ""
                text = (
                    f"{name} (born {by} in {bp}) {was} {_a(job)} of {nat} nationality. After graduating from "
                    f"{alma}, {sur} was employed by {emp}, and the work done there won {sur} the {award} in "
                    f"{ay}. {sur} is often mentioned together with {friend}.{died} {extra}"
                )
            out.append(text)
        return out

    def _render_place(self, ln: np.ndarray) -> list[str]:
        a = self.place_attrs(ln)
        names = self.names(PLACE, ln)
        twins = self.names(PLACE, a["twin"])
        nears = self.names(PLACE, a["near"])
        countries = self.countries
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
            extra = _PLACE_EXTRAS[x]
            country, where = countries[c], f"{km} kilometres {_DIRECTIONS[d]} of {near}"
            if v == 0:
                text = (
                    f"{name} is a city in {country} with a population of {pop:,}. It was founded in {fy} and "
                    f"lies {where}. The city is known for its {_FEATURES[f1]} and its {_FEATURES[f2]}. "
                    f"{extra} Since {ty}, {name} has been twinned with {twin}."
                )
            elif v == 1:
                text = (
                    f"{name} is a town in {country}, {where}. Founded in {fy}, it had a population of {pop:,} "
                    f"at the last census. Visitors come for the {_FEATURES[f1]} and the {_FEATURES[f2]}. "
                    f"The town is twinned with {twin}. {extra}"
                )
            else:
                text = (
                    f"Founded in {fy}, {name} is a city of {pop:,} people in {country}. It lies {where}, and "
                    f"its {_FEATURES[f1]} appear on many postcards, as does its {_FEATURES[f2]}. In {ty} "
                    f"{name} was twinned with {twin}. {extra}"
                )
            out.append(text)
        return out

    def _render_org(self, ln: np.ndarray) -> list[str]:
        a = self.org_attrs(ln)
        names = self.names(ORG, ln)
        founders = self.names(PERSON, a["founder"])
        hqs = self.names(PLACE, a["hq"])
        offices = self.names(PLACE, a["office"])
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
            what = _a(_ORG_KINDS[kind] if kind != 3 else f"{_INDUSTRIES[ind]} company")
            remark = f"{_ORG_NOTES[kind][note]} {_ORG_EXTRAS[x]}"
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

    def _render_work(self, ln: np.ndarray) -> list[str]:
        a = self.work_attrs(ln)
        titles = self.names(WORK, ln)
        creators = self.names(PERSON, a["creator"])
        pubs = self.names(ORG, a["publisher"])
        settings = self.names(PLACE, a["setting"])
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
            extra = _WORK_EXTRAS[x]
            genre, story = _GENRES[kind][g], f"a {_ROLES[role]} who {_PLOTS[plot]}"
            award = _AWARDS[aw]
            if kind == 0:
                if v == 0:
                    text = (
                        f"{title} is {_a(str(year))} {genre} novel by {creator}, published by {pub}. Set in {setting}, "
                        f"it follows {story}. The novel won the {award} the following year and has been "
                        f"translated into several languages. {extra}"
                    )
                else:
                    text = (
                        f"{title} is {_a(genre)} novel written by {creator}. {pub} first published it in {year}. "
                        f"The book follows {story}, and much of it takes place in {setting}. Critics praised "
                        f"its patient style, and it was later shortlisted for the {award}. {extra}"
                    )
            elif kind == 1:
                if v == 0:
                    text = (
                        f"{title} is {_a(str(year))} {genre} film directed by {creator} and produced by {pub}. "
                        f"The film follows {story} and was shot on location in {setting}. It received the {award} for "
                        f"its photography. {extra}"
                    )
                else:
                    text = (
                        f"{title} is {_a(genre)} film released in {year}. It was directed by {creator}, produced "
                        f"by {pub}, and filmed mostly in {setting}. The story follows {story}. The film was "
                        f"nominated for the {award}. {extra}"
                    )
            else:
                if v == 0:
                    text = (
                        f"{title} is the {_ORDINALS[ordn]} studio album by {creator}, released in {year} on "
                        f"{pub}. The {genre} record was made in a converted church in {setting}. Its songs tell "
                        f"of {story}, and the album won the {award}. {extra}"
                    )
                else:
                    text = (
                        f"{title} is {_a(genre)} album by {creator}. It was released in {year} by {pub} and "
                        f"recorded in {setting} over one winter. Its songs follow {story}. It was "
                        f"{creator}'s {_ORDINALS[ordn]} studio album and was shortlisted for the {award}. {extra}"
                    )
            out.append(text)
        return out

    # ---- documents

    def documents(self, start: int, stop: int) -> list[Document]:
        """Documents ``start..stop-1``, rendered type by type and put back in index order."""
        e = np.arange(start, stop, dtype=np.int64)
        kinds, local = self.split_index(e)
        out: list[Document | None] = [None] * len(e)
        for kind in range(4):
            pos = np.flatnonzero(kinds == kind)
            if not len(pos):
                continue
            ln = local[pos]
            titles = self.names(kind, ln)
            texts = self.render(kind, ln)
            for p, title, text in zip(pos.tolist(), titles, texts, strict=True):
                out[p] = Document(f"fh{start + p:07d}", title, text)
        return out  # type: ignore[return-value]

    # ---- entities as the task builder sees them

    def entity(self, kind: int, local: int) -> _Entity:
        ln = np.array([local], dtype=np.int64)
        name = self.names(kind, ln)[0]
        doc_id = self.doc_id(int(self.global_index(kind, ln)[0]))
        values: dict[str, str] = {}
        links: dict[str, tuple[int, int]] = {}
        subkind = 0
        if kind == PERSON:
            a = {key: int(val[0]) for key, val in self.person_attrs(ln).items()}
            values = {
                "birth_year": str(a["birth"]),
                "occupation": _OCCUPATIONS[a["occupation"]],
                "nationality": self.demonyms[a["country"]],
                "birthplace": self.places[a["birthplace"]],
                "employer": self.names(ORG, np.array([a["employer"]]))[0],
            }
            links = {"birthplace": (PLACE, a["birthplace"]), "employer": (ORG, a["employer"])}
        elif kind == PLACE:
            a = {key: int(val[0]) for key, val in self.place_attrs(ln).items()}
            values = {
                "country": self.countries[a["country"]],
                "population": f"{a['population']:,}",
                "founded": str(a["founded"]),
                "twin": self.places[a["twin"]],
            }
            links = {"twin": (PLACE, a["twin"])}
        elif kind == ORG:
            a = {key: int(val[0]) for key, val in self.org_attrs(ln).items()}
            subkind = a["kind"]
            values = {
                "founded": str(a["founded"]),
                "founder": self.names(PERSON, np.array([a["founder"]]))[0],
                "hq": self.places[a["hq"]],
            }
            links = {"founder": (PERSON, a["founder"]), "hq": (PLACE, a["hq"])}
        else:
            a = {key: int(val[0]) for key, val in self.work_attrs(ln).items()}
            subkind = a["kind"]
            values = {
                "year": str(a["year"]),
                "genre": _GENRES[subkind][a["genre"]],
                "creator": self.names(PERSON, np.array([a["creator"]]))[0],
                "publisher": self.names(ORG, np.array([a["publisher"]]))[0],
            }
            links = {"creator": (PERSON, a["creator"]), "publisher": (ORG, a["publisher"])}
        return _Entity(kind, local, name, doc_id, subkind, values, links)


def _a(phrase: str) -> str:
    """``phrase`` with its indefinite article ("an 1889 film", "an economist", "a 1958 film")."""
    vowel_sound = phrase[0] in "aeiouAEIOU" or phrase.startswith(("18", "8", "11"))
    return f"{'an' if vowel_sound else 'a'} {phrase}"


def _surname(full_name: str) -> str:
    return full_name.rsplit(" ", 1)[-1]


# ------------------------------------------------------------------------------ question text

_WORK_NOUN = ("novel", "film", "album")


def _mention(ent: _Entity) -> str:
    """How a question names its first entity: by its exact name (works also by kind, quoted)."""
    return f'the {_WORK_NOUN[ent.subkind]} "{ent.name}"' if ent.kind == WORK else ent.name


def _relation_np(ent: _Entity, relation: str, np_: str) -> str:
    """A noun phrase for the entity that ``relation`` leads to from ``ent`` (described by ``np_``)."""
    if ent.kind == PERSON:
        return f"the birthplace of {np_}" if relation == "birthplace" else f"the employer of {np_}"
    if ent.kind == PLACE:
        return f"the twin town of {np_}"
    if ent.kind == ORG:
        return f"the founder of {np_}" if relation == "founder" else f"the city where {np_} is headquartered"
    if relation == "creator":
        return (f"the author of {np_}", f"the director of {np_}", f"the artist who recorded {np_}")[ent.subkind]
    return (f"the publisher of {np_}", f"the studio that produced {np_}", f"the label that released {np_}")[ent.subkind]


def _final_question(ent: _Entity, attribute: str, np_: str) -> str:
    if ent.kind == PERSON:
        return {
            "birth_year": f"In which year was {np_} born?",
            "occupation": f"What was the occupation of {np_}?",
            "nationality": f"What nationality was {np_}?",
            "birthplace": f"In which town was {np_} born?",
            "employer": f"Which organisation did {np_} work for?",
        }[attribute]
    if ent.kind == PLACE:
        return {
            "country": f"In which country is {np_}?",
            "population": f"What is the population of {np_}?",
            "founded": f"In which year was {np_} founded?",
            "twin": f"Which town is {np_} twinned with?",
        }[attribute]
    if ent.kind == ORG:
        return {
            "founded": f"In which year was {np_} founded?",
            "founder": f"Who founded {np_}?",
            "hq": f"In which city is {np_} headquartered?",
        }[attribute]
    verb = ("published", "released", "released")[ent.subkind]
    return {
        "year": f"In which year was {np_} {verb}?",
        "genre": f"What genre is {np_}?",
        "creator": (f"Who wrote {np_}?", f"Who directed {np_}?", f"Which artist recorded {np_}?")[ent.subkind],
        "publisher": (
            f"Which publishing house published {np_}?",
            f"Which film studio produced {np_}?",
            f"Which record label released {np_}?",
        )[ent.subkind],
    }[attribute]


def _aliases(attribute: str, value: str) -> tuple[str, ...]:
    if attribute == "population":
        return (value, value.replace(",", ""))
    return (value,)


# comparison: (entity type, attribute, question template, True if the smaller value wins)
_COMPARISONS = (
    (PERSON, "birth", "Who was born first, {a} or {b}?", True),
    (ORG, "founded", "Which was founded earlier, {a} or {b}?", True),
    (PLACE, "founded", "Which town was founded earlier, {a} or {b}?", True),
    (PLACE, "population", "Which has the larger population, {a} or {b}?", False),
    (WORK, "year", "Which came out first, {a} or {b}?", True),
)
_COMPARISON_VALUE = {(PERSON, "birth"): "birth_year", (ORG, "founded"): "founded", (PLACE, "founded"): "founded"}


# ----------------------------------------------------------------------------------- World


class _Documents(Sequence[Document]):
    """The documents of a world as a lazy sequence: indexing renders one, iterating streams chunks."""

    def __init__(self, gen: _Generator, chunk: int = 4096) -> None:
        self._gen, self._chunk = gen, chunk

    def __len__(self) -> int:
        return self._gen.n

    @overload
    def __getitem__(self, i: int) -> Document: ...
    @overload
    def __getitem__(self, i: slice) -> list[Document]: ...
    def __getitem__(self, i: int | slice) -> Document | list[Document]:
        if isinstance(i, slice):
            start, stop, step = i.indices(self._gen.n)
            if step == 1:
                return self._gen.documents(start, max(start, stop))
            return [self[j] for j in range(start, stop, step)]
        if i < 0:
            i += self._gen.n
        if not 0 <= i < self._gen.n:
            raise IndexError(f"document index {i} out of range for {self._gen.n} documents")
        return self._gen.documents(i, i + 1)[0]

    def __iter__(self) -> Iterator[Document]:
        for start in range(0, self._gen.n, self._chunk):
            yield from self._gen.documents(start, min(start + self._chunk, self._gen.n))


@dataclass
class World:
    """A generated fictional world: a lazily rendered corpus and the questions about it.

    ``documents`` is a lazy sequence: ``len``, indexing and iteration work, and each pass
    regenerates the same text, so a million documents stream in bounded memory.
    """

    num_documents: int
    seed: int
    tasks: list[QATask]
    _gen: _Generator = field(repr=False, compare=False)

    @property
    def documents(self) -> _Documents:
        return _Documents(self._gen)

    def iter_documents(self, chunk_size: int = 4096) -> Iterator[Document]:
        """Stream every document in index order (a fresh, identical pass each call)."""
        return iter(_Documents(self._gen, chunk_size))

    def iter_batches(self, chunk_size: int = 4096) -> Iterator[list[Document]]:
        """Stream the documents in lists of ``chunk_size`` (convenient for bulk indexing)."""
        for start in range(0, self.num_documents, chunk_size):
            yield self._gen.documents(start, min(start + chunk_size, self.num_documents))

    def document(self, doc_id: str) -> Document:
        """The document with this id (rendered on demand)."""
        if not (doc_id.startswith("fh") and doc_id[2:].isdigit()) or int(doc_id[2:]) >= self.num_documents:
            raise KeyError(doc_id)
        return self.documents[int(doc_id[2:])]

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[list[QATask], list[QATask]]:
        """Train and test tasks: within each (kind, hops) group, a seeded ``test_fraction`` is test.

        With the defaults this is the split that ``task.meta["split"]`` records.
        """
        return _split(self.tasks, test_fraction, seed)


def _split(tasks: list[QATask], test_fraction: float, seed: int) -> tuple[list[QATask], list[QATask]]:
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    groups: dict[tuple[str, int], list[QATask]] = {}
    for t in tasks:
        groups.setdefault((t.kind, t.hops), []).append(t)
    test_ids: set[str] = set()
    for group in groups.values():
        ranked = sorted(group, key=lambda t: hashlib.sha256(f"{seed}:{t.id}".encode()).digest())
        test_ids.update(t.id for t in ranked[: round(test_fraction * len(group))])
    return [t for t in tasks if t.id not in test_ids], [t for t in tasks if t.id in test_ids]


# ------------------------------------------------------------------------------ task builder


class _TaskBuilder:
    def __init__(self, gen: _Generator, seed: int) -> None:
        self.gen = gen
        self.rng = random.Random(f"horizongym-world-tasks-{seed}")
        self.cache: dict[tuple[int, int], _Entity] = {}
        self.seen: set[str] = set()

    def entity(self, kind: int, local: int) -> _Entity:
        key = (kind, local)
        if key not in self.cache:
            self.cache[key] = self.gen.entity(kind, local)
        return self.cache[key]

    def random_entity(self, kind: int | None = None) -> _Entity:
        kind = self.rng.randrange(4) if kind is None else kind
        return self.entity(kind, self.rng.randrange(self.gen.count[kind]))

    def chain(self, hops: int) -> QATask | None:
        """A question answered by following ``hops - 1`` links, then reading the last page."""
        ents = [self.random_entity()]
        relations: list[str] = []
        for _ in range(hops - 1):
            relation = self.rng.choice(sorted(ents[-1].links))
            nxt = self.entity(*ents[-1].links[relation])
            if any(nxt.name == e.name for e in ents):
                return None
            relations.append(relation)
            ents.append(nxt)
        last = ents[-1]
        attribute = self.rng.choice(sorted(last.values))
        answer = last.values[attribute]
        if any(answer == e.name for e in ents):
            return None
        np_ = _mention(ents[0])
        for ent, relation in zip(ents, relations, strict=False):
            np_ = _relation_np(ent, relation, np_)
        question = _final_question(last, attribute, np_)
        if answer.lower() in question.lower() or question in self.seen:
            return None
        self.seen.add(question)
        return QATask(
            id="",
            question=question,
            answers=_aliases(attribute, answer),
            gold_doc_ids=tuple(e.doc_id for e in ents),
            kind="single" if hops == 1 else "bridge",
            hops=hops,
            source="fictional",
            meta={
                "chain": [e.name for e in ents],
                "chain_types": [_TYPE_NAMES[e.kind] for e in ents],
                "relations": relations,
                "attribute": attribute,
            },
        )

    def comparison(self) -> QATask | None:
        kind, attribute, template, smaller_wins = self.rng.choice(_COMPARISONS)
        a = self.random_entity(kind)
        # Prefer a partner that shares a name part with the first entity: harder to retrieve.
        parts = set(a.name.replace('"', "").split()) - {"The", "of", "in"}
        n = self.gen.count[kind]
        candidates = [self.rng.randrange(n) for _ in range(256)]
        names = self.gen.names(kind, np.array(candidates, dtype=np.int64))
        sharing = [c for c, name in zip(candidates, names, strict=True) if name != a.name and parts & set(name.split())]
        b = self.entity(kind, sharing[0]) if sharing else self.random_entity(kind)
        if b.name == a.name:
            return None
        va, vb = self._raw(a, attribute), self._raw(b, attribute)
        if va == vb:
            return None
        if self.rng.random() < 0.5:
            a, b, va, vb = b, a, vb, va
        winner = a if (va < vb) == smaller_wins else b
        question = template.format(a=_mention(a), b=_mention(b))
        if question in self.seen:
            return None
        self.seen.add(question)
        key = _COMPARISON_VALUE.get((kind, attribute), attribute)
        return QATask(
            id="",
            question=question,
            answers=(winner.name,),
            gold_doc_ids=(a.doc_id, b.doc_id),
            kind="comparison",
            hops=2,
            source="fictional",
            meta={
                "chain": [a.name, b.name],
                "chain_types": [_TYPE_NAMES[kind]] * 2,
                "relations": [],
                "attribute": key,
                "values": [a.values[key], b.values[key]],
            },
        )

    def _raw(self, ent: _Entity, attribute: str) -> int:
        key = _COMPARISON_VALUE.get((ent.kind, attribute), attribute)
        return int(ent.values[key].replace(",", ""))


_MIX = (("single", 1, 0.2), ("bridge", 2, 0.25), ("bridge", 3, 0.2), ("bridge", 4, 0.15), ("comparison", 2, 0.2))


def _build_tasks(gen: _Generator, seed: int, num_tasks: int) -> list[QATask]:
    builder = _TaskBuilder(gen, seed)
    quotas = [math.floor(num_tasks * share) for _, _, share in _MIX]
    quotas[1] += num_tasks - sum(quotas)
    tasks: list[QATask] = []
    for (kind, hops, _), quota in zip(_MIX, quotas, strict=True):
        made, tries = 0, 0
        while made < quota:
            tries += 1
            if tries > 100 * quota + 1000:
                raise RuntimeError(f"could not build {quota} {kind} tasks with {hops} hops")
            task = builder.comparison() if kind == "comparison" else builder.chain(hops)
            if task is not None:
                tasks.append(task)
                made += 1
    builder.rng.shuffle(tasks)
    tasks = [
        QATask(
            id=f"fictional-{seed}-{i:05d}",
            question=t.question,
            answers=t.answers,
            gold_doc_ids=t.gold_doc_ids,
            kind=t.kind,
            hops=t.hops,
            source=t.source,
            meta=t.meta,
        )
        for i, t in enumerate(tasks)
    ]
    _, test = _split(tasks, 0.2, 0)
    test_ids = {t.id for t in test}
    for t in tasks:
        t.meta["split"] = "test" if t.id in test_ids else "train"
    return tasks


def generate_world(num_documents: int, seed: int = 0, *, num_tasks: int | None = None) -> World:
    """A fictional world of ``num_documents`` documents and ``num_tasks`` questions about it.

    The same ``(num_documents, seed)`` always gives the same documents and tasks.
    ``num_tasks`` defaults to ``num_documents // 5``, at most 2,000. Building the world
    renders nothing but the tasks' entities; documents are rendered as they are read.
    """
    gen = _Generator(num_documents, seed)
    if num_tasks is None:
        num_tasks = min(2000, num_documents // 5)
    if num_tasks < 0:
        raise ValueError(f"num_tasks must be >= 0, got {num_tasks}")
    return World(num_documents=num_documents, seed=seed, tasks=_build_tasks(gen, seed, num_tasks), _gen=gen)


@functools.cache
def default_world() -> World:
    """The embedded default: ``DEFAULT_WORLD_SIZE`` (5,000) documents, seed 0 (built once per process)."""
    return generate_world(DEFAULT_WORLD_SIZE, seed=0)


def entity_kinds() -> tuple[str, ...]:
    """The entity types a world holds, in the order of ``meta["chain_types"]`` values."""
    return _TYPE_NAMES


def describe(world: World) -> dict[str, Any]:
    """Counts of a world's tasks by kind and hops (for reports and benchmarks)."""
    counts: dict[str, int] = {}
    for t in world.tasks:
        key = f"{t.kind}-{t.hops}"
        counts[key] = counts.get(key, 0) + 1
    return {"num_documents": world.num_documents, "num_tasks": len(world.tasks), "by_kind_hops": counts}
