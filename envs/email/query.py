"""Text as the email store's FTS5 index sees it: keywords, addresses, dates, scope tokens.

Keywords are literal text, never query syntax: each one becomes an FTS5 string (``"`` doubled,
NUL made a space), i.e. a phrase of its tokens; a keyword with no letter or digit cannot match
anything FTS5 indexes and is dropped (:func:`split_keywords`). Dates compare as UTC keys
``YYYY-MM-DDTHH:MM:SS``. Owners, senders and recipients are scope tokens: a kind letter and the
64-bit BLAKE2b of the id or the lower-cased address. :class:`QueryError` carries, in words meant
for the agent, what was wrong with a search and how to fix it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any


class QueryError(ValueError):
    """A search the store cannot run as asked (no searchable keyword, a bad date or limit).

    The message says what was wrong and how to fix it, in words meant for the agent.
    """


def stable_message_id(sender: str, date_: str, subject: str, body: str) -> str:
    """An id for an email without a Message-ID: SHA-1 of ``[from, date, subject, body]`` (as JSON).

    The same email gets the same id in every import (and the same hash the Enron sample's
    de-duplication uses); ``hg-`` marks it as made up.
    """
    blob = json.dumps([sender, date_, subject, body], ensure_ascii=False).encode("utf-8", "surrogatepass")
    return "hg-" + hashlib.sha1(blob).hexdigest()


@functools.lru_cache(maxsize=1 << 16)
def scope_token(kind: str, value: str) -> str:
    """The FTS5 token for an owner (``o``), sender (``f``) or recipient (``t``): kind + 64-bit hash.

    Cached: archives repeat a few thousand addresses over and over, and the build hashes each
    sender and recipient of every email.
    """
    return kind + hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def normalize_address(address: str) -> str:
    """Addresses compare lower-cased, without surrounding space or angle brackets."""
    return address.strip().strip("<>").strip().lower()


def clean_text(text: str) -> str:
    """``text`` safe to bind and to put in an FTS5 string: NUL → space, lone surrogates → U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def indexable(text: str) -> bool:
    """Whether FTS5's ``unicode61`` tokenizer finds a token in ``text`` (a letter, digit or private-use char).

    Python's Unicode tables are newer than the tokenizer's (6.1): a letter added since then is kept
    here but tokenizes to nothing in SQLite, so that keyword matches no email — an empty result,
    never an error.
    """
    return any(unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == "Co" for ch in text)


def split_keywords(keywords: Iterable[Any] | str) -> tuple[list[str], list[str]]:
    """``(kept, dropped)``: the keywords a search uses, and those with nothing to search for.

    A single string counts as one keyword. Kept keywords are stripped; dropped ones are returned as given.
    """
    if isinstance(keywords, str):
        keywords = [keywords]
    kept: list[str] = []
    dropped: list[str] = []
    for keyword in keywords:
        text = clean_text(str(keyword)).strip()
        if indexable(text):
            kept.append(text)
        else:
            dropped.append(str(keyword))
    return kept, dropped


def fts_string(text: str) -> str:
    """``text`` as an FTS5 string literal: everything inside is a phrase of its tokens, never syntax."""
    return '"' + clean_text(text).replace('"', '""') + '"'


def utc_key(value: str) -> str:
    """The UTC sort key ``YYYY-MM-DDTHH:MM:SS`` of an ISO 8601 date ("" if empty or unparseable).

    Dates without an offset are taken as UTC.
    """
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def date_bound(name: str, value: str | date | None) -> str | None:
    """A date filter as a UTC key, or :class:`QueryError` naming the filter and the expected form."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = clean_text(str(value)).strip()
        if text == "":
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise QueryError(
                f"{name} {shown!r} is not a date: use YYYY-MM-DD (e.g. 2001-05-31) "
                "or an ISO date-time such as 2001-05-31T14:00:00-07:00"
            ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")
