"""Importers: real email archives as streams of :class:`Email`.

* :func:`load_enron_jsonl` reads the JSONL form of the Enron sample in ``shared/data/enron``
  (``message_id, date, from, to, cc, subject, body, mailbox``; gzip or not).
* :func:`load_maildir` walks the CMU layout ``maildir/<owner>/<folder>/.../<N>`` of raw RFC 822 files.
* :func:`load_emails_csv` reads the Kaggle ``emails.csv`` export (columns ``file``, e.g.
  ``allen-p/_sent_mail/1.``, and ``message``, the raw RFC 822 text).

Every importer yields emails one at a time (nothing is held) with the same field rules as the
JSONL sample (its PROVENANCE.md): ``message_id`` without ``<>``; ``date`` ISO 8601 with the
original offset ("" when missing or unparseable); ``sender`` the first address of ``From``;
``to``/``cc``/``bcc`` the addresses (an entry without an address keeps its display name);
``body`` the decoded text parts, CRLF made LF; ``owner`` the mailbox owner and ``folder`` the rest of
the mailbox path. An email without a Message-ID gets :func:`~horizongym.envs.email.store.stable_message_id`,
the same in every import. Malformed input raises ``ValueError`` naming the file (and line or row).
"""

from __future__ import annotations

import csv
import email
import email.message
import email.utils
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from horizongym.envs.email.query import stable_message_id
from horizongym.envs.email.types import Email
from horizongym.envs.jsonl import json_objects, open_text

__all__ = ["load_emails_csv", "load_enron_jsonl", "load_maildir", "parse_rfc822"]

_SPACE = re.compile(r"\s+")
_SKIP_NAMES = {".DS_Store", "Thumbs.db"}


def _split_mailbox(mailbox: str, where: str) -> tuple[str, str]:
    owner, _, folder = mailbox.strip().strip("/").partition("/")
    if not owner:
        raise ValueError(f"{where}: empty mailbox (expected 'owner/folder', e.g. 'allen-p/inbox')")
    return owner, folder


def _addresses(value: Any, field: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return _header_addresses(value)
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ValueError(f"{where}: {field!r} must be a list of addresses, got {type(value).__name__}")
    return tuple(a for a in value if a.strip())


def _text(record: dict[str, Any], field: str, where: str) -> str:
    value = record.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {field!r} must be a string, got {type(value).__name__}")
    return value


def load_enron_jsonl(path: Path | str) -> Iterator[Email]:
    """Emails of a JSONL file in the Enron sample's format (gzip or not), one per line."""
    path = Path(path)
    for _, where, record in json_objects(path):
        if not isinstance(record.get("mailbox"), str):
            raise ValueError(f"{where}: missing 'mailbox' (e.g. 'allen-p/inbox')")
        owner, folder = _split_mailbox(record["mailbox"], where)
        sender, date_ = _text(record, "from", where), _text(record, "date", where)
        subject, body = _text(record, "subject", where), _text(record, "body", where)
        message_id = _text(record, "message_id", where).strip().strip("<>")
        yield Email(
            message_id=message_id or stable_message_id(sender, date_, subject, body),
            date=date_,
            sender=sender,
            to=_addresses(record.get("to"), "to", where),
            cc=_addresses(record.get("cc"), "cc", where),
            bcc=_addresses(record.get("bcc"), "bcc", where),
            subject=subject,
            body=body,
            owner=owner,
            folder=folder,
        )


def _header_addresses(*values: str) -> tuple[str, ...]:
    """Addresses of header values (folded whitespace collapsed; a name without address is kept)."""
    found = []
    for name, address in email.utils.getaddresses([_SPACE.sub(" ", v) for v in values]):
        kept = (address or name).strip()
        if kept:
            found.append(kept)
    return tuple(found)


def _header(message: email.message.Message, name: str) -> str:
    values = message.get_all(name) or []
    return _SPACE.sub(" ", " ".join(str(v) for v in values)).strip()


def _iso_date(value: str) -> str:
    if not value:
        return ""
    try:
        return email.utils.parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        return ""


def _body(message: email.message.Message) -> str:
    """The decoded text/plain payload (all text parts joined for multipart), CRLF → LF."""
    parts = []
    for part in message.walk() if message.is_multipart() else [message]:
        if part.is_multipart() or part.get_content_maintype() not in ("text", ""):
            continue
        if message.is_multipart() and part.get_content_subtype() not in ("plain", ""):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                text = payload.decode(charset, "replace")
            except LookupError:
                text = payload.decode("utf-8", "replace")
        else:
            text = str(part.get_payload())
        parts.append(text)
    return "\n".join(parts).replace("\r\n", "\n")


def parse_rfc822(raw: bytes | str, owner: str, folder: str) -> Email:
    """One raw RFC 822 email of ``owner``'s ``folder`` as an :class:`Email` (rules in the module doc)."""
    message = email.message_from_bytes(raw) if isinstance(raw, bytes) else email.message_from_string(raw)
    from_ = _header_addresses(_header(message, "From"))
    sender = from_[0] if from_ else ""
    date_ = _iso_date(_header(message, "Date"))
    subject = _header(message, "Subject")
    body = _body(message)
    message_id = _header(message, "Message-ID").strip().strip("<>").strip()
    return Email(
        message_id=message_id or stable_message_id(sender, date_, subject, body),
        date=date_,
        sender=sender,
        to=_header_addresses(_header(message, "To")),
        cc=_header_addresses(_header(message, "Cc")),
        bcc=_header_addresses(_header(message, "Bcc")),
        subject=subject,
        body=body,
        owner=owner,
        folder=folder,
    )


def _looks_like_email(raw: bytes) -> bool:
    head = raw[:4096]
    return b":" in head.split(b"\n", 1)[0] and not head.startswith(b"\x00")


def load_maildir(root: Path | str) -> Iterator[Email]:
    """Emails of a CMU-layout maildir: ``<root>/<owner>/<folder>/.../<N>`` (or ``<root>/maildir/...``).

    Files are visited in a stable order (owners, then folders, then numeric names). Hidden files,
    ``.DS_Store`` and files that are not RFC 822 text (no header on the first line, or binary) are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder (expected the maildir root holding one folder per owner)")
    if (root / "maildir").is_dir():
        root = root / "maildir"

    def order(p: Path) -> tuple[int, int, str]:
        stem = p.name.rstrip(".")
        return (0, int(stem), "") if stem.isdigit() else (1, 0, p.name)

    def walk(folder: Path) -> Iterator[Path]:
        for item in sorted(folder.iterdir(), key=order):
            if item.name.startswith(".") or item.name in _SKIP_NAMES:
                continue
            if item.is_dir():
                yield from walk(item)
            elif item.is_file():
                yield item

    for owner_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in walk(owner_dir):
            raw = file.read_bytes()
            if not _looks_like_email(raw):
                continue
            folder = file.parent.relative_to(owner_dir).as_posix()
            folder = "" if folder == "." else folder
            try:
                yield parse_rfc822(raw, owner_dir.name, folder)
            except Exception as e:  # the email package rarely raises; name the file when it does
                raise ValueError(f"{file}: not a parseable RFC 822 email ({e})") from e


def load_emails_csv(path: Path | str) -> Iterator[Email]:
    """Emails of the Kaggle ``emails.csv`` export: ``file`` (``owner/folder/.../N.``) and ``message``."""
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open_text(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"file", "message"} <= set(reader.fieldnames):
            raise ValueError(
                f"{path}: expected a CSV header with columns 'file' and 'message', got {reader.fieldnames}"
            )
        for index, row in enumerate(reader):
            where = f"{path}: row {index + 1} (line {reader.line_num})"
            file, message = row.get("file"), row.get("message")
            if not file or message is None:
                raise ValueError(f"{where}: empty 'file' or 'message'")
            parts = file.strip().strip("/").split("/")
            if len(parts) < 2:
                raise ValueError(f"{where}: 'file' {file!r} is not 'owner/folder/N.'")
            owner, folder = parts[0], "/".join(parts[1:-1])
            yield parse_rfc822(message, owner, folder)
