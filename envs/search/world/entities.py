"""What each entity of a world is: attributes hashed from ``(seed, index)``, and the record questions use.

Every attribute of entity ``i`` is a counter-based hash (SplitMix64) of ``(key, stream, i)``,
``key`` a hash of the seed and ``stream`` one number per attribute, so any entity can be
rendered on its own, in any order, and the corpus streams in chunks. Relations (a work's author
and publisher, an organisation's founder and headquarters, a person's birthplace and employer,
a town's twin town) are attributes that hold another entity's local index.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from horizongym.envs.search.world.layout import ORG, PERSON, PLACE, Layout, doc_id
from horizongym.envs.search.world.names import WorldNames
from horizongym.envs.search.world.vocabulary import (
    AWARDS,
    DIRECTIONS,
    FEATURES,
    GENRES,
    INDUSTRIES,
    OCCUPATIONS,
    ORDINALS,
    ORG_EXTRAS,
    PERSON_EXTRAS,
    PLACE_EXTRAS,
    PLOTS,
    ROLES,
    WORK_EXTRAS,
)

__all__ = ["Entities", "Entity"]

_MASK64 = (1 << 64) - 1


def hash64(key: int, stream: int, idx: np.ndarray) -> np.ndarray:
    """SplitMix64 of (key, stream, idx): independent-looking uint64s, one per index.

    ``x = idx·0x9E3779B97F4A7C15 + offset(key, stream)`` (mod 2⁶⁴), then the SplitMix64
    finaliser ``x ^= x >> 30; x *= 0xBF58476D1CE4E5B9; x ^= x >> 27; x *= 0x94D049BB133111EB;
    x ^= x >> 31`` (Steele, Lea and Flood 2014, "Fast splittable pseudorandom number generators").
    """
    offset = np.uint64((key * 0x632BE59BD9B4E019 + stream * 0xD1B54A32D192ED03 + 0x2545F4914F6CDD1D) & _MASK64)
    with np.errstate(over="ignore"):
        x = idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + offset
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def below(key: int, stream: int, idx: np.ndarray, n: int | np.ndarray) -> np.ndarray:
    """Integers in ``[0, n)`` (``n`` may be an array), one per index."""
    return (hash64(key, stream, idx) % np.asarray(n, dtype=np.uint64)).astype(np.int64)


def other(key: int, stream: int, idx: np.ndarray, n: int) -> np.ndarray:
    """Indices in ``[0, n)`` that differ from ``idx`` (``n >= 2``)."""
    return (idx + 1 + below(key, stream, idx, n - 1)) % n


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity as questions see it: its page, its values as written there, its links to other entities."""

    kind: int
    local: int
    name: str
    doc_id: str
    subkind: int  # organisation kind (0-4) or work kind (0-2); 0 otherwise
    values: dict[str, str]
    links: dict[str, tuple[int, int]]


class Entities:
    """Every entity of a world of ``num_documents`` documents drawn from ``seed``: names and attributes.

    The attribute methods take local indices of one type and return one array per attribute.
    """

    def __init__(self, num_documents: int, seed: int) -> None:
        self.layout = Layout.of(num_documents)
        self.seed = seed
        self.key = int.from_bytes(hashlib.sha256(f"horizongym-world-{seed}".encode()).digest()[:8], "little")
        self.naming = WorldNames(self.layout, seed)

    @property
    def num_documents(self) -> int:
        """How many documents (= entities) the world has."""
        return self.layout.num_documents

    @property
    def count(self) -> tuple[int, int, int, int]:
        """How many people, places, organisations and works."""
        return self.layout.count

    def names(self, kind: int, local: np.ndarray) -> list[str]:
        """The names of the entities ``local`` of type ``kind``."""
        return self.naming.names(kind, local)

    # ---- attributes (numpy arrays, one entry per local index)

    def person(self, ln: np.ndarray) -> dict[str, np.ndarray]:
        """People ``ln``: birth and death years, birthplace, country, occupation, employer, university, ..."""
        k = self.key
        n_person, n_place, n_org, _ = self.count
        birth = 1780 + below(k, 1, ln, 206)
        death = np.where(birth < 1935, np.minimum(birth + 40 + below(k, 2, ln, 56), 2023), -1)
        birthplace = below(k, 3, ln, n_place)
        uni_n = self.layout.org_kind_count[4]
        return {
            "birth": birth,
            "death": death,
            "birthplace": birthplace,
            "country": below(k, 101, birthplace, len(self.naming.countries)),  # the birthplace's country
            "occupation": below(k, 4, ln, len(OCCUPATIONS)),
            "employer": below(k, 5, ln, n_org),
            "alma": 5 * below(k, 6, ln, uni_n) + 4,
            "friend": other(k, 7, ln, n_person),
            "award": below(k, 8, ln, len(AWARDS)),
            "award_year": np.minimum(birth + 28 + below(k, 9, ln, 30), 2023),
            "variant": below(k, 10, ln, 3),
            "extra": below(k, 11, ln, len(PERSON_EXTRAS)),
        }

    def place(self, ln: np.ndarray) -> dict[str, np.ndarray]:
        """Places ``ln``: country, population (log-uniform 900 to 3 million), founding year, twin town, ..."""
        k = self.key
        n_place = self.count[PLACE]
        u = (hash64(k, 102, ln) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        population = np.exp(math.log(900) + u * (math.log(3_000_000) - math.log(900))).astype(np.int64)
        f1 = below(k, 105, ln, len(FEATURES))
        return {
            "country": below(k, 101, ln, len(self.naming.countries)),
            "population": population,
            "founded": 850 + below(k, 103, ln, 1050),
            "twin": other(k, 104, ln, n_place),
            "feature1": f1,
            "feature2": (f1 + 1 + below(k, 106, ln, len(FEATURES) - 1)) % len(FEATURES),
            "near": other(k, 107, ln, n_place),
            "km": 5 + below(k, 108, ln, 140),
            "direction": below(k, 109, ln, len(DIRECTIONS)),
            "twin_year": 1950 + below(k, 110, ln, 70),
            "variant": below(k, 111, ln, 3),
            "extra": below(k, 112, ln, len(PLACE_EXTRAS)),
        }

    def org(self, ln: np.ndarray) -> dict[str, np.ndarray]:
        """Organisations ``ln``: kind (local index mod 5), founder, founding year, headquarters, ..."""
        k = self.key
        n_person, n_place, _, _ = self.count
        founder = below(k, 201, ln, n_person)
        founder_birth = 1780 + below(k, 1, founder, 206)
        founded = np.minimum(founder_birth + 22 + below(k, 202, ln, 40), 2023)
        return {
            "kind": ln % 5,
            "founder": founder,
            "founded": founded,
            "hq": below(k, 203, ln, n_place),
            "office": other(k, 204, ln, n_place),
            "office_year": np.minimum(founded + 3 + below(k, 205, ln, 40), 2023),
            "staff": 20 + below(k, 206, ln, 9000),
            "industry": below(k, 207, ln, len(INDUSTRIES)),
            "note": below(k, 208, ln, 2),
            "variant": below(k, 209, ln, 3),
            "extra": below(k, 210, ln, len(ORG_EXTRAS)),
        }

    def work(self, ln: np.ndarray) -> dict[str, np.ndarray]:
        """Works ``ln``: kind (local index mod 3), creator, year, publisher of the matching kind, ..."""
        k = self.key
        n_person, n_place, _, _ = self.count
        kind = ln % 3
        creator = below(k, 301, ln, n_person)
        creator_birth = 1780 + below(k, 1, creator, 206)
        per_kind = np.array(self.layout.org_kind_count[:3], dtype=np.int64)[kind]
        return {
            "kind": kind,
            "creator": creator,
            "year": np.minimum(creator_birth + 20 + below(k, 302, ln, 45), 2024),
            "publisher": 5 * below(k, 303, ln, per_kind) + kind,
            "genre": below(k, 304, ln, 7),
            "setting": below(k, 305, ln, n_place),
            "role": below(k, 306, ln, len(ROLES)),
            "plot": below(k, 307, ln, len(PLOTS)),
            "award": below(k, 308, ln, len(AWARDS)),
            "ordinal": below(k, 309, ln, len(ORDINALS)),
            "variant": below(k, 310, ln, 2),
            "extra": below(k, 311, ln, len(WORK_EXTRAS)),
        }

    # ---- entities as questions see them

    def entity(self, kind: int, local: int) -> Entity:
        """Entity ``local`` of type ``kind``: the values its page states that questions ask about, its links."""
        ln = np.array([local], dtype=np.int64)
        name = self.names(kind, ln)[0]
        page = doc_id(int(self.layout.global_index(kind, ln)[0]))
        values: dict[str, str] = {}
        links: dict[str, tuple[int, int]] = {}
        subkind = 0
        if kind == PERSON:
            a = {key: int(val[0]) for key, val in self.person(ln).items()}
            values = {
                "birth_year": str(a["birth"]),
                "occupation": OCCUPATIONS[a["occupation"]],
                "nationality": self.naming.demonyms[a["country"]],
                "birthplace": self.naming.places[a["birthplace"]],
                "employer": self.names(ORG, np.array([a["employer"]]))[0],
            }
            links = {"birthplace": (PLACE, a["birthplace"]), "employer": (ORG, a["employer"])}
        elif kind == PLACE:
            a = {key: int(val[0]) for key, val in self.place(ln).items()}
            values = {
                "country": self.naming.countries[a["country"]],
                "population": f"{a['population']:,}",
                "founded": str(a["founded"]),
                "twin": self.naming.places[a["twin"]],
            }
            links = {"twin": (PLACE, a["twin"])}
        elif kind == ORG:
            a = {key: int(val[0]) for key, val in self.org(ln).items()}
            subkind = a["kind"]
            values = {
                "founded": str(a["founded"]),
                "founder": self.names(PERSON, np.array([a["founder"]]))[0],
                "hq": self.naming.places[a["hq"]],
            }
            links = {"founder": (PERSON, a["founder"]), "hq": (PLACE, a["hq"])}
        else:
            a = {key: int(val[0]) for key, val in self.work(ln).items()}
            subkind = a["kind"]
            values = {
                "year": str(a["year"]),
                "genre": GENRES[subkind][a["genre"]],
                "creator": self.names(PERSON, np.array([a["creator"]]))[0],
                "publisher": self.names(ORG, np.array([a["publisher"]]))[0],
            }
            links = {"creator": (PERSON, a["creator"]), "publisher": (ORG, a["publisher"])}
        return Entity(kind, local, name, page, subkind, values, links)
