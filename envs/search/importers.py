"""Importers: real question-answering data sets as :class:`Document` corpora and :class:`QATask` lists.

* :func:`load_hotpotqa` reads the official HotpotQA layout (a JSON array as in
  ``hotpot_dev_distractor_v1.json``, or JSONL; gzip or not) and builds one corpus from the
  paragraphs of every question, one document per distinct title.
* :func:`load_jsonl_corpus` streams a generic JSONL corpus: ``{"id", "title", "text"}`` or
  the Search-R1 / FlashRAG form ``{"id", "contents": "\\"Title\\"\\ntext"}``.
* :func:`load_jsonl_questions` reads generic JSONL questions.

Malformed input raises :class:`ValueError` naming the file and the line (or array item).
Nothing here downloads anything: point the loaders at files you have.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

from horizongym.envs.jsonl import json_objects, open_text
from horizongym.envs.search.types import Document, QATask, TaskKind

__all__ = ["hotpotqa_doc_id", "load_hotpotqa", "load_jsonl_corpus", "load_jsonl_questions"]

log = logging.getLogger(__name__)

_KINDS = set(get_args(TaskKind))


def _json_lines(path: Path) -> Iterator[tuple[str, Any]]:
    """``(where, record)`` for each non-blank line of a JSONL file."""
    for _, where, record in json_objects(path):
        yield where, record


def json_records(path: Path) -> Iterator[tuple[str, Any]]:
    """Records of a JSON array file (``where`` = "FILE item N") or of a JSONL file."""
    with open_text(path) as f:
        head = f.read(4096).lstrip()
    if head.startswith("["):
        with open_text(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        for i, record in enumerate(data):
            where = f"{path} item {i}"
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
            yield where, record
    else:
        yield from _json_lines(path)


def hotpotqa_doc_id(title: str) -> str:
    """The stable document id of a HotpotQA paragraph title (a hash of the title)."""
    return "hotpot-" + hashlib.sha1(title.encode("utf-8")).hexdigest()[:16]


def _hotpot_context(where: str, record: dict[str, Any]) -> list[tuple[str, str]]:
    """``(title, text)`` per context paragraph, in the official or the Hugging Face layout."""
    context = record.get("context")
    if isinstance(context, dict):  # Hugging Face: {"title": [...], "sentences": [[...], ...]}
        pairs = list(zip(context.get("title", []), context.get("sentences", []), strict=False))
    elif isinstance(context, list):
        pairs = context
    else:
        raise ValueError(f"{where}: missing or malformed 'context' (expected a list of [title, sentences])")
    out = []
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ValueError(f"{where}: malformed context entry {str(pair)[:80]!r} (expected [title, sentences])")
        title, sentences = pair
        if isinstance(sentences, str):
            sentences = [sentences]
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise ValueError(f"{where}: sentences of {title!r} must be a list of strings")
        out.append((title, "".join(sentences).strip()))
    return out


def _hotpot_facts(where: str, record: dict[str, Any]) -> list[list[Any]]:
    facts = record.get("supporting_facts", [])
    if isinstance(facts, dict):  # Hugging Face: {"title": [...], "sent_id": [...]}
        facts = [list(p) for p in zip(facts.get("title", []), facts.get("sent_id", []), strict=False)]
    if not isinstance(facts, list) or not all(
        isinstance(f, (list, tuple)) and len(f) == 2 and isinstance(f[0], str) for f in facts
    ):
        raise ValueError(f"{where}: malformed 'supporting_facts' (expected a list of [title, sentence_index])")
    return [list(f) for f in facts]


def load_hotpotqa(path: str | Path, *, stats: dict[str, int] | None = None) -> tuple[list[Document], list[QATask]]:
    """Documents and tasks from a HotpotQA file (JSON array or JSONL, gzip or not).

    The corpus holds every context paragraph of every question, one :class:`Document` per
    distinct title (id: :func:`hotpotqa_doc_id` of the title; text: the sentences joined and
    stripped). When one title comes with different texts in different questions, the longest
    text is kept; how often that happened is logged and, if ``stats`` is given, counted there
    (keys ``questions``, ``paragraphs``, ``documents``, ``title_conflicts``, ``replaced_by_longer``).

    Each task's ``gold_doc_ids`` are the documents of its supporting-fact titles (unique, in
    order of first appearance), ``hops`` their number, ``kind`` the HotpotQA ``type``, and
    ``meta`` carries ``level``, ``split``, ``setting`` and ``supporting_facts`` where present.
    """
    path = Path(path)
    texts: dict[str, str] = {}
    tasks: list[QATask] = []
    counts = {"questions": 0, "paragraphs": 0, "documents": 0, "title_conflicts": 0, "replaced_by_longer": 0}
    conflicting: set[str] = set()
    for where, record in json_records(path):
        qid = record.get("_id", record.get("id"))
        question, answer = record.get("question"), record.get("answer")
        if qid is None:
            raise ValueError(f"{where}: missing '_id' or 'id'")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"{where}: missing or empty 'question'")
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError(f"{where}: missing or empty 'answer'")
        paragraphs = _hotpot_context(where, record)
        facts = _hotpot_facts(where, record)
        for title, text in paragraphs:
            counts["paragraphs"] += 1
            old = texts.get(title)
            if old is None:
                texts[title] = text
            elif old != text:
                if title not in conflicting:
                    conflicting.add(title)
                    counts["title_conflicts"] += 1
                if len(text) > len(old):
                    texts[title] = text
                    counts["replaced_by_longer"] += 1
        in_context = {title for title, _ in paragraphs}
        gold_titles: list[str] = []
        for title, _ in facts:
            if title not in in_context:
                raise ValueError(f"{where}: supporting fact title {title!r} is not in the context")
            if title not in gold_titles:
                gold_titles.append(title)
        kind = record.get("type", "bridge")
        if kind not in _KINDS:
            raise ValueError(f"{where}: unknown 'type' {kind!r} (expected one of {sorted(_KINDS)})")
        meta = {key: record[key] for key in ("level", "split", "setting") if key in record}
        if facts:
            meta["supporting_facts"] = facts
        tasks.append(
            QATask(
                id=str(qid),
                question=question.strip(),
                answers=(answer.strip(),),
                gold_doc_ids=tuple(hotpotqa_doc_id(t) for t in gold_titles),
                kind=kind,
                hops=len(gold_titles),
                source="hotpotqa",
                meta=meta,
            )
        )
    counts["questions"] = len(tasks)
    counts["documents"] = len(texts)
    documents = [Document(hotpotqa_doc_id(title), title, text) for title, text in texts.items()]
    if counts["title_conflicts"]:
        log.info(
            "%s: %d titles came with different texts in different questions; kept the longest (%d replacements)",
            path,
            counts["title_conflicts"],
            counts["replaced_by_longer"],
        )
    if stats is not None:
        stats.update(counts)
    return documents, tasks


def _split_contents(contents: str) -> tuple[str, str]:
    """Search-R1 / FlashRAG ``contents``: ``"Title"\\ntext`` (title quoted) or ``Title\\ntext``."""
    first, _, rest = contents.partition("\n")
    title = first.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        title = title[1:-1]
    return title, rest.strip()


def load_jsonl_corpus(path: str | Path) -> Iterator[Document]:
    """Stream documents from a JSONL corpus (gzip or not).

    Each line is ``{"id", "title", "text"}`` or ``{"id", "contents"}`` with ``contents`` =
    ``"Title"\\ntext`` (the Search-R1 / FlashRAG wiki dumps). A missing ``id`` becomes the
    0-based line index (the convention of those dumps); a missing ``title`` is empty.
    """
    path = Path(path)
    for index, where, record in json_objects(path):
        if isinstance(record.get("text"), str):
            title, text = record.get("title", ""), record["text"]
        elif isinstance(record.get("contents"), str):
            title, text = _split_contents(record["contents"])
        else:
            raise ValueError(f"{where}: a document needs a string 'text' (with 'title') or 'contents'")
        if not isinstance(title, str):
            raise ValueError(f"{where}: 'title' must be a string")
        doc_id = record.get("id", index)
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
            raise ValueError(f"{where}: 'id' must be a string or an integer")
        yield Document(str(doc_id), title, text)


def _string_list(where: str, name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{where}: {name!r} must be a string or a list of strings")
    return tuple(str(v) for v in value)


def load_jsonl_questions(path: str | Path) -> list[QATask]:
    """Tasks from a JSONL file of questions (gzip or not).

    Fields: ``question`` (required); ``answer`` or ``answers`` (required; a string or a list
    of strings); ``id`` (default: ``line-N``); ``gold_doc_ids`` or ``supporting_doc_ids``
    (optional); ``type`` (``bridge``/``comparison``/``single``; default ``single`` for one
    gold document or none, else ``bridge``); ``hops`` (default: the number of gold
    documents, at least 1); ``source`` (default: the file name). Other fields go to ``meta``.
    """
    path = Path(path)
    tasks: list[QATask] = []
    known = {"id", "question", "answer", "answers", "gold_doc_ids", "supporting_doc_ids", "type", "hops", "source"}
    for where, record in _json_lines(path):
        question = record.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"{where}: missing or empty 'question'")
        if "answers" in record:
            answers = _string_list(where, "answers", record["answers"])
        elif "answer" in record:
            answers = _string_list(where, "answer", record["answer"])
        else:
            raise ValueError(f"{where}: missing 'answer' or 'answers'")
        answers = tuple(a.strip() for a in answers if a.strip())
        if not answers:
            raise ValueError(f"{where}: no non-empty answer")
        gold_key = "gold_doc_ids" if "gold_doc_ids" in record else "supporting_doc_ids"
        gold = _string_list(where, gold_key, record.get(gold_key, []))
        hops = record.get("hops", max(1, len(gold)))
        if not isinstance(hops, int) or isinstance(hops, bool) or hops < 1:
            raise ValueError(f"{where}: 'hops' must be a positive integer, got {hops!r}")
        kind = record.get("type", "single" if hops == 1 else "bridge")
        if kind not in _KINDS:
            raise ValueError(f"{where}: unknown 'type' {kind!r} (expected one of {sorted(_KINDS)})")
        line = where.rsplit(":", 1)[-1]
        tasks.append(
            QATask(
                id=str(record.get("id", f"line-{line}")),
                question=question.strip(),
                answers=answers,
                gold_doc_ids=gold,
                kind=kind,
                hops=hops,
                source=str(record.get("source", path.name)),
                meta={k: v for k, v in record.items() if k not in known},
            )
        )
    return tasks
