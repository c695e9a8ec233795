"""2WikiMultiHopQA (Ho et al., COLING 2020; github.com/Alab-NII/2wikimultihop) as documents and tasks.

The format, from the data set's README: a JSON array (``dev.json``) or JSONL of items with
``_id``, ``question``, ``answer``, ``type`` (``comparison``, ``inference``, ``compositional``,
``bridge_comparison``), ``context`` (``[title, [sentences]]`` pairs, or the Hugging Face layout
``{"title": [...], "sentences": [[...]]}``), ``supporting_facts`` (``[title, sentence_index]``),
``evidences`` (``[subject, relation, object]`` triples) and, in the December 2020 release,
``evidences_id``, ``answer_id`` and ``entity_ids``.

Answer aliases: the release's ``id_aliases.json`` (JSONL: ``{"Q_id", "aliases", "demonyms"}``)
gives the names of each Wikidata entity; the official evaluation (``2wikimultihop_evaluate_v1.1.py``)
accepts the answer and every alias and demonym of its ``answer_id``. Pass that file as
``aliases=``; an item's own ``answer_aliases`` list (as some redistributions carry) counts too.

Task fields: ``kind`` is ``comparison`` for comparison and bridge_comparison questions, else
``bridge`` (the data set's own type is ``meta["type"]``); ``gold_doc_ids`` are the paragraphs of
the supporting-fact titles; ``hops`` their number; ``evidences`` and the ids go to ``meta``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from horizongym.envs.jsonl import json_objects
from horizongym.envs.search.fields import (
    ParagraphCorpus,
    field_error,
    id_field,
    join_sentences,
    string_list,
    text_field,
    unique,
)
from horizongym.envs.search.importers import json_records
from horizongym.envs.search.types import Document, QATask, TaskKind

__all__ = ["TYPES", "load_2wiki", "load_2wiki_aliases"]

log = logging.getLogger(__name__)

TYPES: dict[str, TaskKind] = {
    "comparison": "comparison",
    "bridge_comparison": "comparison",
    "inference": "bridge",
    "compositional": "bridge",
}
"""2WikiMultiHopQA's question types and the :data:`TaskKind` each is played as."""


def load_2wiki_aliases(path: str | Path) -> dict[str, tuple[str, ...]]:
    """``Q_id`` -> its aliases and demonyms, from the release's ``id_aliases.json`` (JSONL)."""
    path = Path(path)
    aliases: dict[str, tuple[str, ...]] = {}
    for _, where, record in json_objects(path):
        qid = id_field(where, record, "Q_id")
        names = string_list(where, "aliases", record.get("aliases", []))
        names += string_list(where, "demonyms", record.get("demonyms", []))
        aliases[qid] = names
    return aliases


def _context(where: str, record: dict[str, Any]) -> list[tuple[str, str]]:
    """``(title, paragraph)`` per context entry."""
    if "context" not in record:
        raise field_error(where, "context", "a list of [title, [sentences]]", missing=True)
    context = record["context"]
    if isinstance(context, dict):  # Hugging Face: {"title": [...], "sentences": [[...], ...]}
        titles, sentences = context.get("title"), context.get("sentences")
        if not isinstance(titles, list) or not isinstance(sentences, list) or len(titles) != len(sentences):
            raise field_error(where, "context", "{'title': [...], 'sentences': [[...]]} of equal lengths", context)
        context = [list(pair) for pair in zip(titles, sentences, strict=True)]
    if not isinstance(context, list) or not context:
        raise field_error(where, "context", "a non-empty list of [title, [sentences]]", context)
    out = []
    for pair in context:
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], list)
            and all(isinstance(s, str) for s in pair[1])
        ):
            raise field_error(where, "context", "entries [title, [sentences]]", pair)
        out.append((pair[0], join_sentences(pair[1])))
    return out


def _supporting_titles(where: str, record: dict[str, Any], titles: set[str]) -> list[str]:
    facts = record.get("supporting_facts", [])
    if isinstance(facts, dict):  # Hugging Face: {"title": [...], "sent_id": [...]}
        facts = [list(p) for p in zip(facts.get("title", []), facts.get("sent_id", []), strict=False)]
    if not isinstance(facts, list) or not all(
        isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) and isinstance(f[1], int) for f in facts
    ):
        raise field_error(where, "supporting_facts", "a list of [title, sentence_index]", facts)
    for title, _ in facts:
        if title not in titles:
            raise field_error(where, "supporting_facts", "titles that are in 'context'", title)
    return list(unique([title for title, _ in facts]))


def _evidences(where: str, record: dict[str, Any]) -> list[list[str]]:
    evidences = record.get("evidences", [])
    if not isinstance(evidences, list) or not all(
        isinstance(e, list) and len(e) == 3 and all(isinstance(x, str) for x in e) for e in evidences
    ):
        raise field_error(where, "evidences", "a list of [subject, relation, object] triples", evidences)
    return evidences


def _type(where: str, record: dict[str, Any]) -> str:
    """The item's ``type`` (the README's spelling ``bridge-comparison`` is taken too)."""
    value = record.get("type")
    name = value.replace("-", "_") if isinstance(value, str) else None
    if name is None or name not in TYPES:
        raise field_error(where, "type", f"one of {sorted(TYPES)}", value, missing="type" not in record)
    return name


def _answers(where: str, record: dict[str, Any], aliases: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    answer = text_field(where, record, "answer")
    extra = string_list(where, "answer_aliases", record.get("answer_aliases", []))
    answer_id = record.get("answer_id")
    if isinstance(answer_id, str):
        extra += aliases.get(answer_id, ())
    return unique([answer, *extra])


def load_2wiki(
    path: str | Path, *, aliases: str | Path | None = None, stats: dict[str, int] | None = None
) -> tuple[list[Document], list[QATask]]:
    """Documents (every context paragraph, deduplicated by title and text) and tasks of a 2Wiki file.

    ``aliases``: the release's ``id_aliases.json``, whose names of an item's ``answer_id`` are
    accepted answers. ``stats`` (if given) receives ``questions``, ``paragraphs``, ``documents``
    and ``with_aliases`` (tasks with more than one accepted answer).
    """
    path = Path(path)
    names = load_2wiki_aliases(aliases) if aliases is not None else {}
    corpus = ParagraphCorpus("2wiki")
    tasks: list[QATask] = []
    for where, record in json_records(path):
        qid = id_field(where, record, "_id" if "_id" in record else "id")
        question = text_field(where, record, "question")
        answers = _answers(where, record, names)
        kind_name = _type(where, record)
        paragraphs = _context(where, record)
        ids = {title: corpus.add(title, text) for title, text in paragraphs}
        gold_titles = _supporting_titles(where, record, set(ids))
        meta: dict[str, Any] = {"type": kind_name, "evidences": _evidences(where, record)}
        meta.update({k: record[k] for k in ("evidences_id", "answer_id", "entity_ids", "split") if k in record})
        if record.get("supporting_facts"):
            meta["supporting_facts"] = record["supporting_facts"]
        tasks.append(
            QATask(
                id=qid,
                question=question,
                answers=answers,
                gold_doc_ids=tuple(ids[t] for t in gold_titles),
                kind=TYPES[kind_name],
                hops=max(1, len(gold_titles)),
                source="2wikimultihopqa",
                meta=meta,
            )
        )
    documents = corpus.documents()
    counts = {
        "questions": len(tasks),
        "paragraphs": corpus.paragraphs,
        "documents": len(documents),
        "with_aliases": sum(len(t.answers) > 1 for t in tasks),
    }
    log.info("%s: %d questions, %d paragraphs, %d distinct documents", path, *list(counts.values())[:3])
    if stats is not None:
        stats.update(counts)
    return documents, tasks
