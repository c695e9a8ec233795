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

The package, one idea a module: ``layout`` (entity types, index maps), ``names`` (invented
words, one unique name per entity), ``vocabulary`` (the phrases pages are written from),
``entities`` (hashed attributes, the records questions use), ``pages`` (page text),
``documents`` (the lazy corpus), ``phrasing`` and ``questions`` (questions and the split),
``generate`` (:class:`World`). Name machinery shared with the other generators is in
:mod:`horizongym.envs.synthetic_names`.

Questions (:class:`QATask`): ``single`` (one page), ``bridge`` chains of 2 to 4 pages
("In which city was the founder of the studio that produced the film "X" born?"), and
``comparison`` of two pages ("Who was born first, A or B?"). The answer always appears in
the last gold page (for a comparison, both compared values appear in their pages).
``meta`` holds the hop chain (``chain``: entity names, one per gold page), the relation
path, and ``split`` (train/test, see :meth:`World.split`); an environment must never show
``meta`` to the agent.
"""

from __future__ import annotations

from horizongym.envs.search.world.generate import (
    DEFAULT_WORLD_SIZE,
    World,
    default_world,
    describe,
    entity_kinds,
    generate_world,
)
from horizongym.envs.search.world.layout import MAX_DOCUMENTS, MIN_DOCUMENTS

__all__ = [
    "DEFAULT_WORLD_SIZE",
    "MAX_DOCUMENTS",
    "MIN_DOCUMENTS",
    "SOURCE_MODULES",
    "World",
    "default_world",
    "describe",
    "entity_kinds",
    "generate_world",
]

SOURCE_MODULES = ("horizongym.envs.search.world", "horizongym.envs.search.types", "horizongym.envs.synthetic_names")
"""The code a world's documents and questions come from: key cached artefacts with
``horizongym.cache.content_key(..., modules=SOURCE_MODULES)``, so a change to any of it gives a new key."""
