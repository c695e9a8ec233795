"""A world's documents as a lazy sequence: any range renders on demand, iteration streams in chunks.

Document ``e`` is the page of the entity in slot ``e`` (see ``layout``), titled with the
entity's name. Rendering is vectorised by type: a range is split into its people, places,
organisations and works, each rendered in one pass, then put back in index order. Nothing is
kept: a second pass renders the same text again, so a million documents stream in bounded
memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np

from horizongym.envs.search.types import Document
from horizongym.envs.search.world.entities import Entities
from horizongym.envs.search.world.layout import doc_id
from horizongym.envs.search.world.pages import pages

__all__ = ["Documents", "render_documents", "render_titles"]


def _by_type(entities: Entities, start: int, stop: int) -> Iterator[tuple[int, list[int], np.ndarray]]:
    """``(type, positions in the range, local indices)`` of the documents ``start..stop-1``, type by type."""
    kinds, local = entities.layout.split_index(np.arange(start, stop, dtype=np.int64))
    for kind in range(4):
        pos = np.flatnonzero(kinds == kind)
        if len(pos):
            yield kind, pos.tolist(), local[pos]


def render_documents(entities: Entities, start: int, stop: int) -> list[Document]:
    """Documents ``start..stop-1``, rendered type by type and put back in index order."""
    out: list[Document | None] = [None] * (stop - start)
    for kind, positions, local in _by_type(entities, start, stop):
        titles = entities.names(kind, local)
        texts = pages(entities, kind, local)
        for p, title, text in zip(positions, titles, texts, strict=True):
            out[p] = Document(doc_id(start + p), title, text)
    return out  # type: ignore[return-value]


def render_titles(entities: Entities, start: int, stop: int) -> list[str]:
    """The titles (entity names) of documents ``start..stop-1``, without rendering their texts."""
    out = [""] * (stop - start)
    for kind, positions, local in _by_type(entities, start, stop):
        for p, title in zip(positions, entities.names(kind, local), strict=True):
            out[p] = title
    return out


class Documents(Sequence[Document]):
    """The documents of a world: indexing renders one, slicing a range, iterating streams chunks."""

    def __init__(self, entities: Entities, chunk: int = 4096) -> None:
        self._entities, self._chunk = entities, chunk

    def __len__(self) -> int:
        return self._entities.num_documents

    @overload
    def __getitem__(self, i: int) -> Document: ...
    @overload
    def __getitem__(self, i: slice) -> list[Document]: ...
    def __getitem__(self, i: int | slice) -> Document | list[Document]:
        n = len(self)
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step == 1:
                return render_documents(self._entities, start, max(start, stop))
            return [self[j] for j in range(start, stop, step)]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"document index {i} out of range for {n} documents")
        return render_documents(self._entities, i, i + 1)[0]

    def __iter__(self) -> Iterator[Document]:
        for start in range(0, len(self), self._chunk):
            yield from render_documents(self._entities, start, min(start + self._chunk, len(self)))
