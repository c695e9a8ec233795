"""Checked fields of data-set records and a corpus of paragraphs deduplicated by title and text.

The readers of :mod:`~horizongym.envs.search.twowiki`, :mod:`~horizongym.envs.search.musique` and
:mod:`~horizongym.envs.search.searchr1` share these: every error names the record (``FILE:LINE``
or ``FILE item N``), the field, what was expected and what was found, on one line.
"""

from __future__ import annotations

import hashlib
from typing import Any

from horizongym.envs.search.types import Document


def field_error(where: str, field: str, expected: str, got: Any = None, *, missing: bool = False) -> ValueError:
    """``FILE:LINE: field 'F': expected ..., got ...`` (or ``... is missing``)."""
    if missing:
        return ValueError(f"{where}: field {field!r} is missing (expected {expected})")
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValueError(f"{where}: field {field!r}: expected {expected}, got {shown}")


def text_field(where: str, record: dict[str, Any], field: str) -> str:
    """A required non-empty string field, stripped."""
    if field not in record:
        raise field_error(where, field, "a non-empty string", missing=True)
    value = record[field]
    if not isinstance(value, str) or not value.strip():
        raise field_error(where, field, "a non-empty string", value)
    return value.strip()


def id_field(where: str, record: dict[str, Any], field: str) -> str:
    """A required id: a non-empty string or an integer."""
    if field not in record:
        raise field_error(where, field, "a string or integer id", missing=True)
    value = record[field]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise field_error(where, field, "a string or integer id", value)
    return str(value)


def string_list(where: str, field: str, value: Any) -> tuple[str, ...]:
    """A list of strings (numbers are taken as their text), stripped, empty ones dropped."""
    if not isinstance(value, list) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        raise field_error(where, field, "a list of strings", value)
    return tuple(s for s in (str(v).strip() for v in value) if s)


def unique(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``values`` without repeats, in order of first appearance."""
    return tuple(dict.fromkeys(values))


def join_sentences(sentences: list[str]) -> str:
    """Sentences as one paragraph: kept as written, with a space put between two that do not bring one.

    (HotpotQA's sentences carry their own leading spaces; 2WikiMultiHopQA's do not.)"""
    text = ""
    for sentence in sentences:
        if text and not text[-1].isspace() and sentence and not sentence[0].isspace():
            text += " "
        text += sentence
    return text.strip()


class ParagraphCorpus:
    """Paragraphs of many questions as documents, one per distinct ``(title, text)``.

    A document's id is ``PREFIX-`` and the first 16 hex digits of the SHA-1 of ``title + "\\n" +
    text``: the same paragraph gets the same id in every file and every run.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._documents: dict[str, Document] = {}
        self.paragraphs = 0

    def doc_id(self, title: str, text: str) -> str:
        digest = hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:16]
        return f"{self.prefix}-{digest}"

    def add(self, title: str, text: str) -> str:
        """The id of the paragraph, added unless it is already here."""
        self.paragraphs += 1
        doc_id = self.doc_id(title, text)
        if doc_id not in self._documents:
            self._documents[doc_id] = Document(doc_id, title, text)
        return doc_id

    def documents(self) -> list[Document]:
        return list(self._documents.values())
