"""Where each entity of a world sits: entity types and the document index ↔ (type, local index) map.

Every block of 20 documents holds 8 people, 3 places, 4 organisations and 5 works, interleaved
as ``PWOPLWPOPWLPOWPWPOLP``; entity ``local`` of a type is the ``local``-th slot of that type,
counting block by block. Document ``e`` has the id ``fh{e:07d}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_DOCUMENTS", "MIN_DOCUMENTS", "ORG", "PERSON", "PLACE", "TYPE_NAMES", "WORK", "Layout", "doc_id"]

MIN_DOCUMENTS = 200
MAX_DOCUMENTS = 2_000_000

PERSON, PLACE, ORG, WORK = 0, 1, 2, 3
TYPE_NAMES = ("person", "place", "organisation", "work")
NUM_ORG_KINDS = 5  # publishing house, film studio, record label, company, university (see ``vocabulary``)

_PATTERN = "PWOPLWPOPWLPOWPWPOLP"
_BLOCK = len(_PATTERN)
_TYPE_OF_SLOT = np.array(["PLOW".index(c) for c in _PATTERN], dtype=np.int64)
_RANK_OF_SLOT = np.array([_PATTERN[:i].count(c) for i, c in enumerate(_PATTERN)], dtype=np.int64)
_PER_BLOCK = np.array([_PATTERN.count(c) for c in "PLOW"], dtype=np.int64)
_SLOTS_OF_TYPE = [np.array([i for i, c in enumerate(_PATTERN) if c == t], dtype=np.int64) for t in "PLOW"]


def doc_id(index: int) -> str:
    """The id of document ``index``: ``fh`` and seven digits."""
    return f"fh{index:07d}"


@dataclass(frozen=True)
class Layout:
    """The entity counts of a world of ``num_documents`` documents and its index maps."""

    num_documents: int
    count: tuple[int, int, int, int]  # people, places, organisations, works
    org_kind_count: tuple[int, ...]  # organisations of each kind (kind = local index mod 5)

    @classmethod
    def of(cls, num_documents: int) -> Layout:
        """The layout of ``num_documents`` documents (``MIN_DOCUMENTS`` to ``MAX_DOCUMENTS``)."""
        if not MIN_DOCUMENTS <= num_documents <= MAX_DOCUMENTS:
            raise ValueError(f"num_documents must be in [{MIN_DOCUMENTS}, {MAX_DOCUMENTS}], got {num_documents}")
        full, rem = divmod(num_documents, _BLOCK)
        person, place, org, work = (int(full * _PER_BLOCK[t]) + _PATTERN[:rem].count("PLOW"[t]) for t in range(4))
        org_kinds = tuple((org - k + NUM_ORG_KINDS - 1) // NUM_ORG_KINDS for k in range(NUM_ORG_KINDS))
        return cls(num_documents, (person, place, org, work), org_kinds)

    def global_index(self, kind: int, local: np.ndarray) -> np.ndarray:
        """Document indices of the entities ``local`` of type ``kind``."""
        per = int(_PER_BLOCK[kind])
        return (local // per) * _BLOCK + _SLOTS_OF_TYPE[kind][local % per]

    def split_index(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(types, local indices)`` of the documents ``index``."""
        slot = index % _BLOCK
        return _TYPE_OF_SLOT[slot], (index // _BLOCK) * _PER_BLOCK[_TYPE_OF_SLOT[slot]] + _RANK_OF_SLOT[slot]
