"""The data the search environment works on: documents, question-answering tasks, search hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

TaskKind = Literal["bridge", "comparison", "single"]


@dataclass(frozen=True, slots=True)
class Document:
    """One retrievable passage: a stable id, a title, and its text."""

    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class QATask:
    """A question whose answer and supporting documents are known.

    ``answers`` holds every accepted answer string (the first is the canonical one);
    ``gold_doc_ids`` the ids of the documents that support the answer; ``hops`` how many
    documents must be chained to answer (1 for a single-hop question).
    """

    id: str
    question: str
    answers: tuple[str, ...]
    gold_doc_ids: tuple[str, ...]
    kind: TaskKind = "bridge"
    hops: int = 2
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved document and its score (higher is better)."""

    document: Document
    score: float


class Retriever(Protocol):
    """Anything that returns the top-k documents for each of a batch of queries."""

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-``k`` hits per query, best first; an empty or all-stopword query gets no hits."""
        ...
