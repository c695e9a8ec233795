"""The email store: every inbox of an archive in one SQLite file, searched with FTS5.

Layout (format ``horizongym-emails-v1``)::

    emails(id INTEGER PRIMARY KEY,         -- date order: id 1 is the oldest email (unknown dates first)
           message_id, owner, folder, date, utc, sender, subject, body,
           rcpt,                           -- JSON [[kind, address, normalized address], ...] (to, cc, bcc)
           meta)                           -- the scope tokens indexed by FTS5 (see below)
    recipients(email, address, kind)       -- one row per to/cc/bcc address
    inboxes(owner PRIMARY KEY, address, count)
    fts USING fts5(subject, body, meta)    -- external content: the index only, text stays in emails
    info(key PRIMARY KEY, value)           -- format and counts

plus indexes on ``emails(message_id, owner)`` (unique), ``emails(owner, id)``, ``emails(sender)``,
``emails(utc)``, ``recipients(address)`` and ``recipients(email)``.

How a search is answered (the design that makes it fast)
--------------------------------------------------------
``search(owner, keywords, from_addr, to_addr, sent_after, sent_before, limit)`` is ONE FTS5 query::

    SELECT ... FROM fts JOIN emails ON emails.id = fts.rowid
    WHERE fts MATCH 'meta : ("o…" AND "f…") AND {subject body} : ("kw1" AND "kw2")'
      AND fts.rowid BETWEEN lo AND hi
    ORDER BY fts.rowid DESC LIMIT 10

* **Rowids follow dates.** The build sorts the emails by UTC date, so ``ORDER BY rowid DESC`` is
  "newest first" and FTS5 answers it by walking its doclists backwards and stopping after ``limit``
  matches: no sort, no scan of the older hits. (The naive plan — join every keyword hit to
  ``emails``, filter by owner, sort by date — touches every hit of the keywords in the whole archive.)
* **Scope is part of the match.** Each email's ``meta`` column holds one token for its owner, one
  for its sender and one per recipient: ``"o" / "f" / "t"`` + the 64-bit BLAKE2b of the owner id or
  the lower-cased address, in hex. Inbox scoping and the address filters are then AND terms of the
  same FTS5 expression, merged with the keyword doclists (FTS5 skips through long doclists with its
  doclist indexes), so an owner with 1% of the archive costs no more than a keyword. Hashing makes
  the tokens exact (``a@b.com`` never matches ``xa@b.com``) and immune to anything in the address.
* **Date filters are rowid ranges**: ``sent_after``/``sent_before`` become the first/last id
  with ``utc`` in range (two lookups in the ``utc`` index), which FTS5 uses to seek.
* **One segment.** The build runs FTS5 ``optimize`` so each term has one doclist to walk.

Keywords are literal text, never query syntax: each one becomes an FTS5 string (``"`` doubled, NUL
made a space), i.e. a phrase of its tokens; a keyword with no letter or digit (``"*"``, ``"--"``, an
emoji) cannot match anything FTS5 indexes and is dropped. :func:`split_keywords` says which are
kept and which dropped; when keywords were given and all are dropped, or a date or limit is
invalid, ``search`` raises :class:`QueryError` (a ``ValueError``), whose message is meant to be
shown to the agent. Nothing the agent sends reaches SQL except as a bound parameter.

Reading: :meth:`EmailStore.open` opens the file read-only (URI ``mode=ro``) with one connection per
thread (``threading.local``), so many threads can search at once; ``sqlite3`` releases the GIL
while SQLite works. A store pickles as its path.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from horizongym.envs.email.query import (
    QueryError,
    clean_text,
    date_bound,
    fts_string,
    normalize_address,
    scope_token,
    split_keywords,
    stable_message_id,
    utc_key,
)
from horizongym.envs.email.types import Email, Inbox, SearchHit

__all__ = ["FORMAT", "EmailStore"]

FORMAT = "horizongym-emails-v1"
_TOKENIZER = "unicode61 remove_diacritics 2"
_BATCH = 5000
_MAX_LIMIT = 1000
_SNIPPET_TOKENS = 24


_SCHEMA = f"""
CREATE TABLE info(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE emails(
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    folder TEXT NOT NULL,
    date TEXT NOT NULL,
    utc TEXT NOT NULL,
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    rcpt TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE recipients(email INTEGER NOT NULL, address TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE inboxes(owner TEXT PRIMARY KEY, address TEXT NOT NULL, count INTEGER NOT NULL);
CREATE VIRTUAL TABLE fts USING fts5(
    subject, body, meta, content='emails', content_rowid='id', columnsize=0, tokenize='{_TOKENIZER}'
);
"""

_STAGE = """
CREATE TABLE stage.emails(
    seq INTEGER PRIMARY KEY, utc TEXT, message_id TEXT, owner TEXT, folder TEXT, date TEXT,
    sender TEXT, subject TEXT, body TEXT, rcpt TEXT, meta TEXT
);
"""

_INDEXES = """
CREATE UNIQUE INDEX emails_message_id ON emails(message_id, owner);
CREATE INDEX emails_owner ON emails(owner, id);
CREATE INDEX emails_sender ON emails(sender);
CREATE INDEX emails_utc ON emails(utc);
CREATE INDEX recipients_address ON recipients(address);
CREATE INDEX recipients_email ON recipients(email);
"""

_COLUMNS = "message_id, owner, folder, date, utc, sender, subject, body, rcpt"


def _row(email: Email) -> tuple[str, ...]:
    """The staging row of one email: ``(utc, message_id, owner, folder, date, sender, subject, body, rcpt, meta)``."""
    sender = clean_text(email.sender).strip()
    subject, body, date_ = clean_text(email.subject), clean_text(email.body), clean_text(email.date)
    message_id = clean_text(email.message_id).strip() or stable_message_id(
        email.sender, email.date, email.subject, body
    )
    rcpt = [
        [kind, clean_text(address).strip(), normalize_address(clean_text(address))]
        for kind, addresses in (("to", email.to), ("cc", email.cc), ("bcc", email.bcc))
        for address in addresses
        if address.strip()
    ]
    scope = {scope_token("o", email.owner), scope_token("f", normalize_address(sender))} | {
        scope_token("t", r[2]) for r in rcpt
    }
    meta = " ".join(sorted(scope))
    return (
        utc_key(date_),
        message_id,
        email.owner,
        email.folder,
        date_,
        sender,
        subject,
        body,
        json.dumps(rcpt),
        meta,
    )


class EmailStore:
    """Inboxes in one SQLite file: ``search``, ``read``, ``inboxes``, ``count``, ``dates`` per owner.

    Build one with :meth:`build`, open one with :meth:`open`. Every query is scoped to one inbox
    owner; an email of another inbox is never returned, whatever the agent asks.
    """

    def __init__(self, path: Path | str, *, mmap_size: int = 1 << 30) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no email store at {self.path}")
        self._mmap_size = mmap_size
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []  # every thread's connection, for close()
        self._opened_lock = threading.Lock()
        info = dict(self._conn().execute("SELECT key, value FROM info").fetchall())
        if info.get("format") != FORMAT:
            raise ValueError(f"{self.path} is not a {FORMAT} store (format {info.get('format')!r})")
        self.info: dict[str, str] = info
        self._inboxes = {
            owner: Inbox(owner, address, count)
            for owner, address, count in self._conn().execute(
                "SELECT owner, address, count FROM inboxes ORDER BY owner"
            )
        }
        self._scope = {owner: fts_string(scope_token("o", owner)) for owner in self._inboxes}

    # ----- opening and building -----------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str) -> EmailStore:
        """Open the store at ``path`` read-only."""
        return cls(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (EmailStore, (str(self.path),))

    def _conn(self) -> sqlite3.Connection:
        """This thread's read-only connection (opened on first use).

        One connection per thread: a ``sqlite3.Connection`` must not be shared by threads running at
        once, and separate connections let SQLite run their queries in parallel. The file is mapped
        (``mmap_size``), so all connections read the same pages from the OS cache without copying.
        """
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute(f"PRAGMA mmap_size={int(self._mmap_size)}")
            conn.execute("PRAGMA cache_size=-16384")
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    @classmethod
    def build(
        cls,
        emails: Iterable[Email],
        path: Path | str,
        *,
        addresses: Mapping[str, str] | None = None,
    ) -> EmailStore:
        """Write ``emails`` into a new store at ``path`` (replaced if it exists) and open it.

        Streams: emails are written to a staging table next to ``path`` in batches, then copied
        into ``emails`` sorted by UTC date (SQLite's external sorter, so memory stays flat), which
        assigns ids in date order; the FTS5 index and the b-tree indexes are built after the load,
        in one pass each. The build runs in one transaction with ``journal_mode=OFF`` and
        ``synchronous=OFF`` (a crash leaves a broken file, so build into a temporary place — e.g.
        :func:`horizongym.cache.cached` — and publish it by renaming).

        An email repeating an earlier ``(message_id, owner)`` is skipped. Emails without a
        message id get :func:`stable_message_id`. ``addresses`` maps owners to their address;
        for other owners the address is the one most often among the recipients of their emails.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stage = path.with_name(path.name + ".stage")
        for old in (path, stage):
            old.unlink(missing_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.executescript(
                "PRAGMA page_size=8192; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                "PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-262144; PRAGMA temp_store=FILE;"
            )
            conn.execute("ATTACH DATABASE ? AS stage", (str(stage),))
            conn.executescript(
                "PRAGMA stage.journal_mode=OFF; PRAGMA stage.synchronous=OFF; PRAGMA stage.cache_size=-65536;"
            )
            conn.executescript(_SCHEMA + _STAGE)
            conn.execute("BEGIN")
            seen: set[bytes] = set()
            duplicates = 0
            insert = (
                "INSERT INTO stage.emails(utc, message_id, owner, folder, date, sender, subject, body, rcpt, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )
            iterator = iter(emails)
            while batch := list(itertools.islice(iterator, _BATCH)):
                rows = []
                for email in batch:
                    row = _row(email)
                    key = hashlib.blake2b(f"{row[1]}\x00{row[2]}".encode(), digest_size=12).digest()
                    if key in seen:
                        duplicates += 1
                        continue
                    seen.add(key)
                    rows.append(row)
                conn.executemany(insert, rows)
            del seen
            # ids in date order (unknown dates first), ties in arrival order
            conn.execute(
                f"INSERT INTO emails({_COLUMNS}, meta) SELECT {_COLUMNS}, meta FROM stage.emails ORDER BY utc, seq"
            )
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE stage")
            stage.unlink(missing_ok=True)
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO recipients(email, address, kind) "
                "SELECT e.id, j.value ->> 2, j.value ->> 0 FROM emails e, json_each(e.rcpt) j"
            )
            conn.execute("INSERT INTO fts(fts, rank) VALUES ('automerge', 0)")
            conn.execute("INSERT INTO fts(fts) VALUES ('rebuild')")
            conn.execute("INSERT INTO fts(fts) VALUES ('optimize')")
            for statement in _INDEXES.strip().split(";"):
                if statement.strip():
                    conn.execute(statement)
            cls._write_inboxes(conn, addresses or {})
            total = conn.execute("SELECT count(*) FROM emails").fetchone()[0]
            conn.executemany(
                "INSERT INTO info(key, value) VALUES (?, ?)",
                [("format", FORMAT), ("emails", str(total)), ("duplicates_skipped", str(duplicates))],
            )
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
        finally:
            conn.close()
            stage.unlink(missing_ok=True)
        return cls(path)

    @staticmethod
    def _write_inboxes(conn: sqlite3.Connection, addresses: Mapping[str, str]) -> None:
        """One row per owner: its address (given, or its most frequent recipient; ties: smallest) and count."""
        counts = dict(conn.execute("SELECT owner, count(*) FROM emails GROUP BY owner").fetchall())
        frequent: dict[str, Counter[str]] = {owner: Counter() for owner in counts}
        rows = conn.execute(
            "SELECT e.owner, r.address, count(*) FROM recipients r JOIN emails e ON e.id = r.email "
            "GROUP BY e.owner, r.address"
        )
        for owner, address, n in rows:
            frequent[owner][address] = n
        inboxes = []
        for owner, count in sorted(counts.items()):
            if owner in addresses:
                address = normalize_address(addresses[owner])
            elif frequent[owner]:
                address = min(frequent[owner].items(), key=lambda item: (-item[1], item[0]))[0]
            else:
                address = ""
            inboxes.append((owner, address, count))
        conn.executemany("INSERT INTO inboxes(owner, address, count) VALUES (?, ?, ?)", inboxes)

    # ----- inboxes ------------------------------------------------------------------------
    def inboxes(self) -> list[Inbox]:
        """Every inbox, by owner id."""
        return list(self._inboxes.values())

    def inbox(self, owner: str) -> Inbox:
        """The inbox of ``owner`` (``KeyError`` if there is none)."""
        try:
            return self._inboxes[owner]
        except KeyError:
            raise KeyError(f"no inbox {owner!r} in {self.path}") from None

    def address_of(self, owner: str) -> str:
        """The address of ``owner``'s inbox."""
        return self.inbox(owner).address

    def count(self, owner: str) -> int:
        """How many emails ``owner``'s inbox holds."""
        return self.inbox(owner).emails

    def __len__(self) -> int:
        return int(self.info["emails"])

    def dates(self, owner: str) -> list[str]:
        """The dates (ISO 8601, as stored) of ``owner``'s emails with a known date, oldest first."""
        self.inbox(owner)
        rows = self._conn().execute("SELECT date FROM emails WHERE owner = ? AND utc != '' ORDER BY id", (owner,))
        return [d for (d,) in rows]

    def date_range(self, owner: str) -> tuple[str, str] | None:
        """The oldest and newest known dates of ``owner``'s emails, or None if none has a date."""
        found = self.dates(owner)
        return (found[0], found[-1]) if found else None

    def iter_emails(self, owner: str | None = None) -> Iterator[Email]:
        """The emails of ``owner`` (all inboxes if None), oldest first."""
        if owner is not None:
            self.inbox(owner)
        sql = f"SELECT {_COLUMNS} FROM emails" + (" WHERE owner = ?" if owner is not None else "") + " ORDER BY id"
        for row in self._conn().execute(sql, (owner,) if owner is not None else ()):
            yield _email(row)

    # ----- the tools' queries -------------------------------------------------------------
    def read(self, owner: str, message_id: str) -> Email | None:
        """The email ``message_id`` of ``owner``'s inbox; None if there is none in THIS inbox."""
        self.inbox(owner)
        row = (
            self._conn()
            .execute(
                f"SELECT {_COLUMNS} FROM emails WHERE message_id = ? AND owner = ?",
                (clean_text(str(message_id)), owner),
            )
            .fetchone()
        )
        return None if row is None else _email(row)

    def search(
        self,
        owner: str,
        keywords: Iterable[Any] | str,
        *,
        from_addr: str | None = None,
        to_addr: str | None = None,
        sent_after: str | date | None = None,
        sent_before: str | date | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        """Emails of ``owner``'s inbox holding every keyword (subject or body), newest first.

        ``from_addr``: sent by that address; ``to_addr``: with that address in to, cc or bcc;
        ``sent_after`` (inclusive) / ``sent_before`` (exclusive): ISO dates or date-times, compared
        in UTC (a date without offset is UTC); emails of unknown date are left out when one is given.
        A keyword is literal text: all its words, in order (a phrase). Keywords without a letter or
        digit are ignored (see :func:`split_keywords`); no keywords at all lists the inbox.
        Raises :class:`QueryError` when every keyword was ignored, or a date or ``limit`` is invalid.
        """
        scope = self._scope.get(owner)
        if scope is None:
            raise KeyError(f"no inbox {owner!r} in {self.path}")
        kept, dropped = split_keywords(keywords)
        if dropped and not kept:
            raise QueryError(
                f"none of the keywords {[d[:40] for d in dropped]!r} has a letter or digit to search for: "
                "use words that appear in the emails"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
            raise QueryError(f"limit must be a whole number from 1 to {_MAX_LIMIT}, not {limit!r}")
        after, before = date_bound("sent_after", sent_after), date_bound("sent_before", sent_before)
        terms = [scope]
        if from_addr is not None and from_addr.strip():
            terms.append(fts_string(scope_token("f", normalize_address(clean_text(from_addr)))))
        if to_addr is not None and to_addr.strip():
            terms.append(fts_string(scope_token("t", normalize_address(clean_text(to_addr)))))
        expression = "meta : (" + " AND ".join(terms) + ")"
        if kept:
            expression += " AND {subject body} : (" + " AND ".join(fts_string(k) for k in kept) + ")"
        conn = self._conn()
        low, high = 1, int(self.info["emails"])
        if after is not None or before is not None:
            low, high = self._id_range(conn, after, before)
            if low > high:
                return []
        if kept:
            snippet = f"snippet(fts, 1, '', '', '…', {_SNIPPET_TOKENS})"
        else:
            snippet = f"substr(e.body, 1, {_SNIPPET_TOKENS * 6})"
        rows = conn.execute(
            f"SELECT e.message_id, e.date, e.sender, e.subject, {snippet} "
            "FROM fts JOIN emails e ON e.id = fts.rowid "
            "WHERE fts MATCH ? AND fts.rowid BETWEEN ? AND ? ORDER BY fts.rowid DESC LIMIT ?",
            (expression, low, high, limit),
        ).fetchall()
        return [SearchHit(*row) for row in rows]

    def _id_range(self, conn: sqlite3.Connection, after: str | None, before: str | None) -> tuple[int, int]:
        """The ids of the emails with a known date in ``[after, before)``: two lookups in the ``utc`` index.

        Ids follow ``utc``, so the emails in a date range are exactly an id range.
        """
        row = conn.execute(
            "SELECT id FROM emails WHERE utc >= ? AND utc != '' ORDER BY utc, id LIMIT 1", (after or "",)
        ).fetchone()
        low = row[0] if row else 1 << 62
        high = 0
        if before is None:
            high = int(self.info["emails"])
        else:
            row = conn.execute("SELECT id FROM emails WHERE utc < ? ORDER BY utc DESC, id DESC LIMIT 1", (before,))
            found = row.fetchone()
            high = found[0] if found else 0
        return low, high

    def close(self) -> None:
        """Close every thread's connection; a later query opens a fresh one."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"EmailStore({str(self.path)!r}, emails={len(self)}, inboxes={len(self._inboxes)})"


def _email(row: tuple[Any, ...]) -> Email:
    message_id, owner, folder, date_, _utc, sender, subject, body, rcpt = row
    kinds: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
    for kind, address, _normalized in json.loads(rcpt):
        kinds[kind].append(address)
    return Email(
        message_id=message_id,
        date=date_,
        sender=sender,
        to=tuple(kinds["to"]),
        cc=tuple(kinds["cc"]),
        bcc=tuple(kinds["bcc"]),
        subject=subject,
        body=body,
        owner=owner,
        folder=folder,
    )
