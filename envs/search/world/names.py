"""The names of a world's entities: invented words from syllables, and one unique name per entity.

A few hundred first names and about a thousand surnames make every person's name; organisations
and works are named after surnames and places ("Velmorholm Press", "The Lantern of Kastrin");
places share syllable roots with everything else. Names are unique per entity by construction:
entity ``i`` of a type gets name ``perm(i)`` of a mixed-radix name space (first × surname,
stem × suffix, stem × noun × pattern), ``perm`` an :class:`~horizongym.envs.synthetic_names.AffinePermutation`.
No invented word is an English word (:data:`REAL_WORDS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from horizongym.envs.search.world.layout import ORG, PERSON, PLACE, Layout
from horizongym.envs.search.world.vocabulary import NOUNS, ORG_SUFFIXES
from horizongym.envs.synthetic_names import AffinePermutation, Draw, digits, fresh_word, numpy_draw, syllables

__all__ = ["REAL_WORDS", "WorldNames", "invent_words"]

_ONSETS = "b d dr g k kr l m n r s st t th v vr z br sk".split()
_VOWELS_1 = "a e i o u ae ei y".split()
_VOWELS_2 = "a e i o ae ei ou y".split()
_FIRST_ENDS = "lin ric wen mir dan ssa ren vel nor thas zia kel dris mae".split()
_SUR_ENDS = "ski berg vich rin mont dahl sson quist holt vash zar ovic mann driel kov gaard".split()
_PLACE_ENDS = "holm vik grad stead thal mere wick dale burg haven mouth crest moor varre kesh lund brig sk".split()
_COUNTRY_ENDS = {"nia": "nian", "ria": "rian", "via": "vian", "stan": "stani", "desh": "deshi"}

# Every dictionary word (151k English words, 3-10 letters) that the syllable scheme above can
# produce. Generated names are checked against it, so no name is a real word.
REAL_WORDS = frozenset(
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

_ROOT_POOLS = (_ONSETS, _VOWELS_1, _ONSETS, _VOWELS_2)
_ROOT_REUSE = 0.7  # chance that a new name reuses a root some earlier name has


def invent_words(
    draw: Draw, chance: np.random.Generator, count: int, endings: Sequence[str], used: set[str], roots: list[str]
) -> list[str]:
    """``count`` new capitalised words: a root (often one in ``roots``) plus an ending; none is a real word.

    ``used`` (lower case) and ``roots`` grow with the new words and roots. ``chance.random()``
    decides whether a word reuses a known root; ``draw`` picks the syllables.
    """
    out: list[str] = []
    known_roots = set(roots)
    for _ in range(count):
        root = ""

        def make() -> str:
            nonlocal root
            root = roots[draw(len(roots))] if roots and chance.random() < _ROOT_REUSE else syllables(draw, _ROOT_POOLS)
            return root + endings[draw(len(endings))]

        word = fresh_word(make, used, REAL_WORDS)
        if root not in known_roots:
            known_roots.add(root)
            roots.append(root)
        out.append(word.capitalize())
    return out


class WorldNames:
    """The invented words of one world and the name of every entity, drawn from ``seed``."""

    def __init__(self, layout: Layout, seed: int) -> None:
        n_person, n_place, _, _ = layout.count
        rng = np.random.default_rng([seed, 0x5EA2C4])
        draw = numpy_draw(rng)
        used: set[str] = set()
        roots: list[str] = []
        n_first = max(30, min(700, int(math.sqrt(n_person) * 0.8)))
        n_sur = max(40, math.ceil(1.3 * n_person / n_first))
        self.first = invent_words(draw, rng, n_first, _FIRST_ENDS, used, roots)
        self.sur = invent_words(draw, rng, n_sur, _SUR_ENDS, used, roots)
        self.places = invent_words(draw, rng, n_place, _PLACE_ENDS, used, roots)
        n_country = max(8, min(60, n_place // 40))
        self.countries = invent_words(draw, rng, n_country, tuple(_COUNTRY_ENDS), used, roots)
        self.demonyms: list[str] = []
        for country in self.countries:
            ending = next(e for e in _COUNTRY_ENDS if country.endswith(e))
            self.demonyms.append(country[: -len(ending)] + _COUNTRY_ENDS[ending])
        self.stems = self.sur + self.places
        self.person_perm = AffinePermutation.drawn(draw, n_first * n_sur)
        self.org_perm = AffinePermutation.drawn(draw, len(self.stems) * 4)
        self.work_perm = AffinePermutation.drawn(draw, len(self.stems) * len(NOUNS) * 3)

    def invented_words(self) -> frozenset[str]:
        """Every invented word names are built from: first names, surnames, places and countries."""
        return frozenset((*self.first, *self.sur, *self.places, *self.countries))

    def names(self, kind: int, local: np.ndarray) -> list[str]:
        """The names of the entities ``local`` of type ``kind`` (titles of their pages)."""
        if kind == PERSON:
            first, sur = digits(self.person_perm(local), (len(self.first), len(self.sur)))
            return [f"{self.first[i]} {self.sur[j]}" for i, j in zip(first.tolist(), sur.tolist(), strict=True)]
        if kind == PLACE:
            return [self.places[i] for i in local.tolist()]
        stems = self.stems
        if kind == ORG:
            suffix, stem = digits(self.org_perm(local // 5), (4, len(stems)))
            return [
                f"{stems[s]} {ORG_SUFFIXES[k][x]}"
                for s, x, k in zip(stem.tolist(), suffix.tolist(), (local % 5).tolist(), strict=True)
            ]
        pattern, noun, stem = digits(self.work_perm(local), (3, len(NOUNS), len(stems)))
        titles = ("The {noun} of {stem}", "{stem} {noun}", "{noun} in {stem}")
        return [
            titles[p].format(noun=NOUNS[n], stem=stems[s])
            for p, n, s in zip(pattern.tolist(), noun.tolist(), stem.tolist(), strict=True)
        ]
