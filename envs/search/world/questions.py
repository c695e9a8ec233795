"""A world's questions: single-page, 2–4-hop bridge and comparison questions with their gold pages.

:class:`QuestionBuilder` draws them from a seeded ``random.Random``: a bridge question follows
random links from a random entity and asks for an attribute of the last; a comparison asks
which of two entities of one type comes first (or is larger). :func:`build_tasks` makes a
world's questions in the proportions of :data:`MIX` and records the train/test split
(:func:`split_tasks`) in ``meta["split"]``.
"""

from __future__ import annotations

import hashlib
import math
import random

import numpy as np

from horizongym.envs.search.types import QATask
from horizongym.envs.search.world.entities import Entities, Entity
from horizongym.envs.search.world.layout import TYPE_NAMES
from horizongym.envs.search.world.phrasing import (
    COMPARISON_VALUE,
    COMPARISONS,
    answer_aliases,
    final_question,
    mention,
    relation_phrase,
)

__all__ = ["MIX", "QuestionBuilder", "build_tasks", "split_tasks"]


def split_tasks(tasks: list[QATask], test_fraction: float, seed: int) -> tuple[list[QATask], list[QATask]]:
    """Train and test tasks: in each (kind, hops) group, the ``test_fraction`` lowest in ``sha256(seed:id)``."""
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


class QuestionBuilder:
    """Draws questions about a world's entities from its own seeded RNG; never asks one question twice.

    ``seen`` holds every question text asked so far: add a world's own questions to it to draw
    only new ones.
    """

    def __init__(self, entities: Entities, seed: int) -> None:
        self.entities = entities
        self.rng = random.Random(f"horizongym-world-tasks-{seed}")
        self.cache: dict[tuple[int, int], Entity] = {}
        self.seen: set[str] = set()

    def entity(self, kind: int, local: int) -> Entity:
        """Entity ``local`` of type ``kind`` (memoised)."""
        key = (kind, local)
        if key not in self.cache:
            self.cache[key] = self.entities.entity(kind, local)
        return self.cache[key]

    def random_entity(self, kind: int | None = None) -> Entity:
        """A random entity, of type ``kind`` or of a random type."""
        kind = self.rng.randrange(4) if kind is None else kind
        return self.entity(kind, self.rng.randrange(self.entities.count[kind]))

    def chain(self, hops: int) -> QATask | None:
        """A question answered by following ``hops - 1`` links, then reading the last page (``None``: redraw)."""
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
        np_ = mention(ents[0])
        for ent, relation in zip(ents, relations, strict=False):
            np_ = relation_phrase(ent, relation, np_)
        question = final_question(last, attribute, np_)
        if answer.lower() in question.lower() or question in self.seen:
            return None
        self.seen.add(question)
        return QATask(
            id="",
            question=question,
            answers=answer_aliases(attribute, answer),
            gold_doc_ids=tuple(e.doc_id for e in ents),
            kind="single" if hops == 1 else "bridge",
            hops=hops,
            source="fictional",
            meta={
                "chain": [e.name for e in ents],
                "chain_types": [TYPE_NAMES[e.kind] for e in ents],
                "relations": relations,
                "attribute": attribute,
            },
        )

    def comparison(self) -> QATask | None:
        """A question that compares two entities of one type (a birth, founding or release year, a population).

        The partner preferably shares a name part with the first entity; ``None`` when the draw
        gives no usable question (equal values, a question already asked).
        """
        kind, attribute, template, smaller_wins = self.rng.choice(COMPARISONS)
        a = self.random_entity(kind)
        # Prefer a partner that shares a name part with the first entity: harder to retrieve.
        parts = set(a.name.replace('"', "").split()) - {"The", "of", "in"}
        n = self.entities.count[kind]
        candidates = [self.rng.randrange(n) for _ in range(256)]
        names = self.entities.names(kind, np.array(candidates, dtype=np.int64))
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
        question = template.format(a=mention(a), b=mention(b))
        if question in self.seen:
            return None
        self.seen.add(question)
        key = COMPARISON_VALUE.get((kind, attribute), attribute)
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
                "chain_types": [TYPE_NAMES[kind]] * 2,
                "relations": [],
                "attribute": key,
                "values": [a.values[key], b.values[key]],
            },
        )

    def _raw(self, ent: Entity, attribute: str) -> int:
        key = COMPARISON_VALUE.get((ent.kind, attribute), attribute)
        return int(ent.values[key].replace(",", ""))


# (kind, hops, share of the questions)
MIX = (("single", 1, 0.2), ("bridge", 2, 0.25), ("bridge", 3, 0.2), ("bridge", 4, 0.15), ("comparison", 2, 0.2))


def build_tasks(entities: Entities, seed: int, num_tasks: int) -> list[QATask]:
    """``num_tasks`` questions in the proportions of :data:`MIX`, shuffled, with ids and ``meta["split"]``."""
    builder = QuestionBuilder(entities, seed)
    quotas = [math.floor(num_tasks * share) for _, _, share in MIX]
    quotas[1] += num_tasks - sum(quotas)
    tasks: list[QATask] = []
    for (kind, hops, _), quota in zip(MIX, quotas, strict=True):
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
    _, test = split_tasks(tasks, 0.2, 0)
    test_ids = {t.id for t in test}
    for t in tasks:
        t.meta["split"] = "test" if t.id in test_ids else "train"
    return tasks
