"""MuSiQue (Trivedi et al., TACL 2022; github.com/StonyBrookNLP/musique) as documents and tasks.

The format, from the data set's README (``musique_ans_v1.0_dev.jsonl``, ``musique_full_v1.0_dev.jsonl``):
JSONL items with ``id`` (``2hop__…``, ``3hop1__…``, ``4hop1__…``), ``question``, ``answer``,
``answer_aliases``, ``answerable``, ``paragraphs`` (``{"idx", "title", "paragraph_text",
"is_supporting"}``, 20 per question) and ``question_decomposition`` (``{"id", "question",
"answer", "paragraph_support_idx"}``, one per hop).

Tasks: ``answers`` are the answer and its aliases; ``gold_doc_ids`` the supporting paragraphs,
in the order the decomposition uses them; ``hops`` the length of the decomposition; ``kind``
``bridge`` (every MuSiQue question chains its hops); ``meta`` keeps ``question_decomposition``
and ``answerable``. The "full" release pairs each question with an unanswerable twin whose
supporting paragraphs were removed: those are skipped unless ``keep_unanswerable`` (then they
keep the file's answer and carry ``meta["answerable"] = False``); ``stats`` counts them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from horizongym.envs.jsonl import json_objects
from horizongym.envs.search.fields import ParagraphCorpus, field_error, id_field, string_list, text_field, unique
from horizongym.envs.search.types import Document, QATask

__all__ = ["load_musique"]

log = logging.getLogger(__name__)

_PARAGRAPH = "{idx: int, title: str, paragraph_text: str, is_supporting: bool}"
_STEP = "{id, question, answer, paragraph_support_idx}"


def _paragraphs(where: str, record: dict[str, Any]) -> list[tuple[int, str, str, bool]]:
    """``(idx, title, text, is_supporting)`` per paragraph."""
    if "paragraphs" not in record:
        raise field_error(where, "paragraphs", f"a list of {_PARAGRAPH}", missing=True)
    paragraphs = record["paragraphs"]
    if not isinstance(paragraphs, list) or not paragraphs:
        raise field_error(where, "paragraphs", f"a non-empty list of {_PARAGRAPH}", paragraphs)
    out = []
    for position, paragraph in enumerate(paragraphs):
        if not (
            isinstance(paragraph, dict)
            and isinstance(paragraph.get("title"), str)
            and isinstance(paragraph.get("paragraph_text"), str)
            and isinstance(paragraph.get("is_supporting", False), bool)
            and isinstance(paragraph.get("idx", position), int)
        ):
            raise field_error(where, f"paragraphs[{position}]", _PARAGRAPH, paragraph)
        title, text = paragraph["title"].strip(), paragraph["paragraph_text"].strip()
        out.append((paragraph.get("idx", position), title, text, paragraph.get("is_supporting", False)))
    return out


def _decomposition(where: str, record: dict[str, Any], indexes: set[int]) -> list[dict[str, Any]]:
    steps = record.get("question_decomposition", [])
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise field_error(where, "question_decomposition", f"a list of {_STEP}", steps)
    for n, step in enumerate(steps):
        support = step.get("paragraph_support_idx")
        if support is not None and support not in indexes:
            field = f"question_decomposition[{n}].paragraph_support_idx"
            raise field_error(where, field, "an idx of 'paragraphs'", support)
    return steps


def _gold_order(paragraphs: list[tuple[int, str, str, bool]], steps: list[dict[str, Any]]) -> list[int]:
    """The supporting paragraphs' idx: first as the decomposition uses them, then any others flagged."""
    supporting = [idx for idx, _, _, flag in paragraphs if flag]
    used = [s["paragraph_support_idx"] for s in steps if s.get("paragraph_support_idx") in supporting]
    return list(dict.fromkeys([*used, *supporting]))


def load_musique(
    path: str | Path, *, keep_unanswerable: bool = False, stats: dict[str, int] | None = None
) -> tuple[list[Document], list[QATask]]:
    """Documents (every paragraph, deduplicated by title and text) and tasks of a MuSiQue JSONL file.

    ``stats`` (if given) receives ``questions`` (tasks made), ``paragraphs``, ``documents``,
    ``unanswerable`` (items with ``answerable: false``) and ``unanswerable_skipped``.
    """
    path = Path(path)
    corpus = ParagraphCorpus("musique")
    tasks: list[QATask] = []
    unanswerable = 0
    for _, where, record in json_objects(path):
        qid = id_field(where, record, "id")
        question = text_field(where, record, "question")
        answer = text_field(where, record, "answer")
        aliases = string_list(where, "answer_aliases", record.get("answer_aliases", []))
        answerable = record.get("answerable", True)
        if not isinstance(answerable, bool):
            raise field_error(where, "answerable", "true or false", answerable)
        paragraphs = _paragraphs(where, record)
        steps = _decomposition(where, record, {idx for idx, *_ in paragraphs})
        if not answerable:
            unanswerable += 1
            if not keep_unanswerable:
                continue
        ids = {idx: corpus.add(title, text) for idx, title, text, _ in paragraphs}
        gold = _gold_order(paragraphs, steps)
        tasks.append(
            QATask(
                id=qid,
                question=question,
                answers=unique([answer, *aliases]),
                gold_doc_ids=unique([ids[idx] for idx in gold]),
                kind="bridge",
                hops=len(steps) or max(1, len(gold)),
                source="musique",
                meta={"question_decomposition": steps, "answerable": answerable},
            )
        )
    skipped = 0 if keep_unanswerable else unanswerable
    if skipped:
        log.warning(
            "%s: skipped %d unanswerable questions of %d (keep them with musique:PATH?unanswerable=keep)",
            path,
            skipped,
            len(tasks) + skipped,
        )
    documents = corpus.documents()
    if stats is not None:
        stats.update(
            questions=len(tasks),
            paragraphs=corpus.paragraphs,
            documents=len(documents),
            unanswerable=unanswerable,
            unanswerable_skipped=skipped,
        )
    return documents, tasks
