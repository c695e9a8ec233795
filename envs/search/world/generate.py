"""A generated world as one object: its lazy corpus, its questions, and a few ways to read them.

:func:`generate_world` builds the entities (names drawn from the seed, attributes hashed on
demand) and the questions; :func:`default_world` is the embedded 5,000-document world.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from horizongym.envs.search.types import Document, QATask
from horizongym.envs.search.world.documents import Documents, render_documents, render_titles
from horizongym.envs.search.world.entities import Entities
from horizongym.envs.search.world.layout import TYPE_NAMES
from horizongym.envs.search.world.questions import QuestionBuilder, build_tasks, split_tasks

__all__ = ["DEFAULT_WORLD_SIZE", "World", "default_world", "describe", "entity_kinds", "generate_world"]

DEFAULT_WORLD_SIZE = 5000


@dataclass
class World:
    """A generated fictional world: a lazily rendered corpus and the questions about it.

    ``documents`` is a lazy sequence: ``len``, indexing and iteration work, and each pass
    regenerates the same text, so a million documents stream in bounded memory.
    """

    num_documents: int
    seed: int
    tasks: list[QATask]
    _entities: Entities = field(repr=False, compare=False)

    @property
    def documents(self) -> Documents:
        """Every document, as a lazy sequence (indexing and slicing render on demand)."""
        return Documents(self._entities)

    def iter_documents(self, chunk_size: int = 4096) -> Iterator[Document]:
        """Stream every document in index order (a fresh, identical pass each call)."""
        return iter(Documents(self._entities, chunk_size))

    def iter_batches(self, chunk_size: int = 4096) -> Iterator[list[Document]]:
        """Stream the documents in lists of ``chunk_size`` (convenient for bulk indexing)."""
        for start in range(0, self.num_documents, chunk_size):
            yield render_documents(self._entities, start, min(start + chunk_size, self.num_documents))

    def document(self, doc_id: str) -> Document:
        """The document with this id (rendered on demand)."""
        if not (doc_id.startswith("fh") and doc_id[2:].isdigit()) or int(doc_id[2:]) >= self.num_documents:
            raise KeyError(doc_id)
        return self.documents[int(doc_id[2:])]

    def titles(self) -> list[str]:
        """Every document's title (its entity's name) in index order, without rendering the texts."""
        return render_titles(self._entities, 0, self.num_documents)

    def invented_words(self) -> frozenset[str]:
        """The invented words every name is built from: first names, surnames, places and countries."""
        return self._entities.naming.invented_words()

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[list[QATask], list[QATask]]:
        """Train and test tasks: within each (kind, hops) group, a seeded ``test_fraction`` is test.

        With the defaults this is the split that ``task.meta["split"]`` records.
        """
        return split_tasks(self.tasks, test_fraction, seed)

    def new_questions(self, seed: int, hops: int = 1) -> Iterator[QATask]:
        """An endless stream of ``hops``-hop questions that this world does not already ask.

        They come from the world's own question builder with another ``seed``, so they read like
        its questions; none repeats a question of ``tasks`` or an earlier one of the stream. Ids
        are ``fictional-<world seed>-new<seed>-<n>``; ``meta`` has no ``split``. The same
        ``seed`` gives the same stream.
        """
        if not 1 <= hops <= 4:
            raise ValueError(f"hops must be 1 to 4, got {hops}")
        builder = QuestionBuilder(self._entities, seed)
        builder.seen.update(t.question for t in self.tasks)
        made = 0
        while True:
            task = builder.chain(hops)
            if task is not None:
                yield dataclasses.replace(task, id=f"fictional-{self.seed}-new{seed}-{made:05d}")
                made += 1


def generate_world(num_documents: int, seed: int = 0, *, num_tasks: int | None = None) -> World:
    """A fictional world of ``num_documents`` documents and ``num_tasks`` questions about it.

    The same ``(num_documents, seed)`` always gives the same documents and tasks.
    ``num_tasks`` defaults to ``num_documents // 5``, at most 2,000. Building the world
    renders nothing but the tasks' entities; documents are rendered as they are read.
    """
    entities = Entities(num_documents, seed)
    if num_tasks is None:
        num_tasks = min(2000, num_documents // 5)
    if num_tasks < 0:
        raise ValueError(f"num_tasks must be >= 0, got {num_tasks}")
    return World(num_documents, seed, build_tasks(entities, seed, num_tasks), entities)


@functools.cache
def default_world() -> World:
    """The embedded default: ``DEFAULT_WORLD_SIZE`` (5,000) documents, seed 0 (built once per process)."""
    return generate_world(DEFAULT_WORLD_SIZE, seed=0)


def entity_kinds() -> tuple[str, ...]:
    """The entity types a world holds, in the order of ``meta["chain_types"]`` values."""
    return TYPE_NAMES


def describe(world: World) -> dict[str, Any]:
    """Counts of a world's tasks by kind and hops (for reports and benchmarks)."""
    counts: dict[str, int] = {}
    for t in world.tasks:
        key = f"{t.kind}-{t.hops}"
        counts[key] = counts.get(key, 0) + 1
    return {"num_documents": world.num_documents, "num_tasks": len(world.tasks), "by_kind_hops": counts}
