"""Questions about one mailbox, made from real emails, and the ART·E question format.

:func:`generate_questions` turns a mailbox collection (the Enron inboxes, or any
:class:`~horizongym.envs.email.types.Email` stream) into questions that the emails
themselves prove, in the style of OpenPipe's ART·E: the agent searches one person's
mailbox, reads, answers and cites the message ids.

How questions are made:

* Every question comes from one template over facts of one email (its *source*):

  ``sender``    "Who sent the email with the subject 'S' on December 7, 2001?"
                (answer: the sender's name, and the address as an alias)
  ``date``      "On what date did Pete Davis send the email about 'S'?"
                (answer: the email's own calendar date, in several formats)
  ``cc``        "Who was copied on the email 'S' from Pete Davis?"
                (answer: every cc'd person, names and addresses)
  ``amount``    "What dollar amount does the email 'S' from Pete Davis give for the purchase price?"
                (only when the email's own text, quotes cut, holds exactly one dollar amount and
                it follows a label such as "purchase price of" or "Total cost:")
  ``location``  "Where does the email 'S' from Pete Davis say it takes place?"
                (only when the email's own text has exactly one ``Location:``/``Where:``/``Place:`` line)

* Each question is KEPT ONLY IF it identifies exactly one email of the owner's mailbox:
  subjects are compared after stripping ``RE:``/``FW:``/``Fwd:`` prefixes, case and spacing,
  so a thread's replies and forwards count as the same subject. ``sender`` needs the subject to
  be unique within one calendar day either side of the email; the other templates need the
  (sender, subject) pair to be unique in the whole mailbox.
* Skipped as sources: junk folders, emails without a date or with the corpus's known bad
  dates, empty or very short subjects, automatic mail (``no.address@``, newsletters, system
  notices, anything whose body offers to unsubscribe).
* ``query_date`` (the agent's "today") is the email's calendar date plus 1 to 30 days, a
  hash of ``(seed, message_id)``; ``meta`` holds the template's keys, ``split`` (train/test,
  by inbox, see :func:`split_by_inbox`) and the source's date and folder. An environment must
  never show ``meta`` to the agent.

:func:`load_arte_questions` reads ART·E's JSONL (``question``, ``answer``, ``message_ids``,
``inbox_address``, ``query_date``, ``how_realistic``, optional ``id``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from horizongym.envs.email.types import Email, EmailQuestion
from horizongym.envs.jsonl import json_objects

__all__ = [
    "KINDS",
    "date_aliases",
    "generate_questions",
    "load_arte_questions",
    "normalize_subject",
    "own_text",
    "person_name",
    "split_by_inbox",
]

KINDS = ("sender", "date", "cc", "amount", "location")

_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv|tr)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_AUTO_SENDER = re.compile(
    r"(no\.?address|no-?reply|newsletter|announce|update|feedback|arsystem|info@|admin|mailer|news|alert|"
    r"chairman|ecenter|bounce|postmaster|listserv|majordomo|daemon|^\d|webmaster|marketing|subscri|digest)",
    re.IGNORECASE,
)
_AUTO_BODY = re.compile(r"unsubscribe|to be removed from|click here|mailing list|view this (e-?mail|message)", re.I)
_AUTO_SUBJECT = re.compile(r"^(start date:|undeliverable|delivery status|out of office|automatic reply)", re.I)
_QUOTE_START = re.compile(
    r"^[ \t>]*(-{2,}.*(original message|forwarded by).*|.*-{5,}\s*forwarded.*|on .{5,80} wrote:\s*|"
    r"from:\s.*|>.*|_{20,}.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_DOLLAR = re.compile(
    r"\$[ \t]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[ \t]?(?:million|billion|thousand|MM|mm|M|K|k)\b)?(?![\d,]*\d)"
)
_LABEL_END = re.compile(
    r"(?:\s*(?::|=|\bof\b|\bis\b|\bwas\b|\bequals?\b|\btotals?\b|\bcosts?\b)"
    r"(?:\s+(?:approximately|approx\.?|about|around|roughly|only|just|an?|the))?\s*)$",
    re.IGNORECASE,
)
_LOCATION_LINE = re.compile(r"^[ \t]*(location|where|place|venue)[ \t]*:[ \t]*(\S.{1,78}?)[ \t]*$", re.I | re.M)
_STOP = frozenset(
    "a an the our your their this that my his her its with and or per as by in on to of for at is was be "
    "it we you i they he she will would can could should all any some total".split()
)
_MONTHS = ("January February March April May June July August September October November December").split()


# ------------------------------------------------------------------------------------ helpers


def normalize_subject(subject: str) -> str:
    """A subject as a thread key: ``RE:``/``FW:`` prefixes, case and runs of spaces dropped."""
    return " ".join(_PREFIX.sub("", subject).split()).casefold()


def person_name(address: str) -> str:
    """A display name read off an address like ``first.last@x.com`` ("First Last"), else ""."""
    local = address.split("@", 1)[0]
    parts = [p for p in local.split(".") if p]
    if len(parts) < 2 or not all(p.isalpha() for p in parts):
        return ""
    return " ".join(p.capitalize() if len(p) > 1 else p.upper() + "." for p in parts)


def own_text(body: str) -> str:
    """The part of a body its sender wrote: everything before the first quoted or forwarded block."""
    m = _QUOTE_START.search(body)
    return body[: m.start()] if m else body


def _parse_date(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def date_aliases(day: dt.date) -> tuple[str, ...]:
    """A calendar date in the forms people write: ISO first, then "December 7, 2001" and others."""
    month = _MONTHS[day.month - 1]
    forms = (
        day.isoformat(),
        f"{month} {day.day}, {day.year}",
        f"{month[:3]} {day.day}, {day.year}",
        f"{day.day} {month} {day.year}",
        f"{day.month:02d}/{day.day:02d}/{day.year}",
        f"{day.month}/{day.day}/{day.year}",
    )
    return tuple(dict.fromkeys(forms))


def _person_answers(address: str) -> tuple[str, ...]:
    name = person_name(address)
    return (name, address) if name else (address,)


def _who(address: str) -> str:
    return person_name(address) or address


def _amount_aliases(text: str) -> tuple[str, ...]:
    text = " ".join(text.split())
    bare = text.lstrip("$ ").strip()
    forms = [text, bare, "$" + bare]
    number = re.match(r"[\d,]+(?:\.\d+)?", bare)
    if number and "," in number.group(0):
        plain = number.group(0).replace(",", "")
        forms += [plain + bare[number.end() :], "$" + plain + bare[number.end() :]]
    return tuple(dict.fromkeys(f for f in forms if f))


def _label_before(line_before: str) -> str:
    """The named thing right before a dollar amount ("... the purchase price of" -> "purchase price")."""
    m = _LABEL_END.search(line_before)
    if not m or not m.group(0).strip():
        return ""
    head = line_before[: m.start()]
    head = re.split(r"[,;.!?()\[\]\"*]", head)[-1]
    run: list[str] = []
    for w in reversed(head.split()):  # the run of content words that ends right before the amount
        if not re.fullmatch(r"[A-Za-z][A-Za-z'&/\-]*", w) or w.lower() in _STOP or len(run) == 3:
            break
        run.insert(0, w)
    if not run or not head.rstrip().endswith(run[-1]) or not any(len(w) >= 3 for w in run):
        return ""
    label = " ".join(run)
    return label if 4 <= len(label) <= 40 else ""


def _is_junk_folder(folder: str) -> bool:
    f = folder.lower()
    return any(w in f for w in ("junk", "spam", "deleted", "trash"))


def _is_auto(email: Email) -> bool:
    local = email.sender.split("@", 1)[0] + "@"
    return bool(
        _AUTO_SENDER.search(local) or _AUTO_SUBJECT.search(email.subject) or _AUTO_BODY.search(email.body[:20000])
    )


def _stable(*parts: object) -> int:
    return int.from_bytes(hashlib.sha1("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


# ---------------------------------------------------------------------------------- generation


def generate_questions(
    emails: Iterable[Email], *, seed: int = 0, per_inbox_cap: int | None = None, test_fraction: float = 0.2
) -> list[EmailQuestion]:
    """Verifiable questions from real emails, each unique within its owner's mailbox.

    ``per_inbox_cap`` keeps at most that many questions per inbox (a seeded sample);
    ``meta["split"]`` is ``"test"`` for a ``test_fraction`` of the inboxes (see :func:`split_by_inbox`).
    The result is sorted by (owner, source date, kind, id) and is the same for the same input and seed.
    """
    by_owner: dict[str, list[Email]] = defaultdict(list)
    for email in emails:
        by_owner[email.owner].append(email)

    out: list[EmailQuestion] = []
    for owner in sorted(by_owner):
        mailbox = by_owner[owner]
        # Identifying-detail counts over the WHOLE mailbox (junk and auto mail included: they can collide too).
        subject_days: dict[str, list[int]] = defaultdict(list)
        sender_subject: Counter[tuple[str, str]] = Counter()
        for e in mailbox:
            ns = normalize_subject(e.subject)
            when = _parse_date(e.date)
            subject_days[ns].append(when.date().toordinal() if when else -1)
            sender_subject[(e.sender.lower(), ns)] += 1
        questions: list[EmailQuestion] = []
        for e in mailbox:
            questions.extend(_questions_for(e, seed, subject_days, sender_subject))
        if per_inbox_cap is not None and len(questions) > per_inbox_cap:
            rng = random.Random(_stable("cap", seed, owner))
            questions = rng.sample(questions, per_inbox_cap)
        questions.sort(key=lambda q: (q.meta["source_date"], q.kind, q.id))
        out.extend(questions)

    test = set(_test_inboxes(sorted(by_owner), test_fraction, seed))
    for q in out:
        q.meta["split"] = "test" if q.owner in test else "train"
    return out


def _questions_for(
    e: Email, seed: int, subject_days: dict[str, list[int]], sender_subject: Counter[tuple[str, str]]
) -> list[EmailQuestion]:
    when = _parse_date(e.date)
    ns = normalize_subject(e.subject)
    if (
        when is None
        or not 1999 <= when.year <= 2002
        or _is_junk_folder(e.folder)
        or len(ns) < 4
        or not re.search(r"[a-z]{3}", ns)
        or '"' in e.subject
        or _is_auto(e)
    ):
        return []
    day = when.date()
    subject = " ".join(e.subject.split())
    sender = e.sender
    who = _who(sender)
    query_day = day + dt.timedelta(days=1 + _stable("query", seed, e.message_id) % 30)
    base_meta = {
        "source_date": e.date,
        "folder": e.folder,
        "subject": subject,
        "sender": sender,
    }
    unique_pair = sender_subject[(sender.lower(), ns)] == 1
    made: list[tuple[str, str, tuple[str, ...], dict[str, Any]]] = []

    ordinal = day.toordinal()
    if sum(1 for d in subject_days[ns] if abs(d - ordinal) <= 1) == 1 and "@" in sender:
        q = f'Who sent the email with the subject "{subject}" on {date_aliases(day)[1]}?'
        made.append(("sender", q, _person_answers(sender), {"day": day.isoformat()}))
    if unique_pair:
        q = f'On what date did {who} send the email about "{subject}"?'
        made.append(("date", q, date_aliases(day), {}))
        cc = [a for a in dict.fromkeys(a.strip().lower() for a in e.cc) if "@" in a]
        if 1 <= len(cc) <= 6 and len(cc) == len(set(map(str.lower, e.cc))):
            names = [_who(a) for a in cc]
            answers: tuple[str, ...] = (", ".join(names), ", ".join(cc)) if names != cc else (", ".join(cc),)
            q = f'Who was copied on the email "{subject}" from {who}?'
            made.append(("cc", q, answers, {"answer_list": cc}))
        text = own_text(e.body)
        amounts = list(_DOLLAR.finditer(text))
        if len(amounts) == 1 and len(re.findall(r"\$\s?\d", text)) == 1:
            m = amounts[0]
            line_start = text.rfind("\n", 0, m.start()) + 1
            label = _label_before(text[line_start : m.start()])
            if label:
                q = f'What dollar amount does the email "{subject}" from {who} give for the {label}?'
                made.append(("amount", q, _amount_aliases(m.group(0)), {"label": label, "evidence": m.group(0)}))
        places = list(_LOCATION_LINE.finditer(text))
        if len(places) == 1:
            value = " ".join(places[0].group(2).split())
            if re.search(r"[A-Za-z0-9]{2}", value):
                q = f'Where does the email "{subject}" from {who} say it takes place?'
                made.append(("location", q, (value,), {"label": places[0].group(1), "evidence": value}))

    out = []
    for kind, question, answers, meta in made:
        qid = f"enron-{e.owner}-{kind}-{_stable(e.owner, e.message_id, kind) % 16**10:010x}"
        out.append(
            EmailQuestion(
                id=qid,
                question=question,
                answers=answers,
                message_ids=(e.message_id,),
                owner=e.owner,
                query_date=query_day.isoformat(),
                kind=kind,
                meta={**base_meta, **meta},
            )
        )
    return out


def _test_inboxes(owners: Sequence[str], test_fraction: float, seed: int) -> list[str]:
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    ranked = sorted(set(owners), key=lambda o: (_stable("split", seed, o), o))
    n_test = round(len(ranked) * test_fraction)
    if 0 < test_fraction < 1 and len(ranked) >= 2:
        n_test = min(max(n_test, 1), len(ranked) - 1)
    return ranked[:n_test]


def split_by_inbox(
    questions: Sequence[EmailQuestion], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[EmailQuestion], list[EmailQuestion]]:
    """``(train, test)``: a seeded ``test_fraction`` of the inboxes goes to test, whole.

    No inbox has questions on both sides; the same owners and seed give the same split
    (it ranks inboxes by a hash, so adding inboxes does not move the others).
    """
    test = set(_test_inboxes([q.owner for q in questions], test_fraction, seed))
    return [q for q in questions if q.owner not in test], [q for q in questions if q.owner in test]


# ------------------------------------------------------------------------------------- ART·E


def load_arte_questions(path: str | Path) -> list[EmailQuestion]:
    """Questions in ART·E's JSONL format (one object per line; ``.gz`` is read too).

    Fields: ``question`` (str), ``answer`` (str), ``message_ids`` (list of str),
    ``inbox_address`` (str), ``query_date`` (str), ``how_realistic`` (number, optional), ``id``
    (optional; default ``arte-<line>``). ``owner`` is the inbox address as given (also in
    ``meta["inbox_address"]``): mapping addresses to mailbox owners is the caller's job.
    Raises ``ValueError`` naming the file and line of the first malformed line.
    """
    path = Path(path)
    out: list[EmailQuestion] = []
    seen: set[str] = set()
    for index, where, row in json_objects(path):
        lineno = index + 1
        for key in ("question", "answer", "inbox_address", "query_date"):
            if key not in row:
                raise ValueError(f"{where}: missing field {key!r}")
            if not isinstance(row[key], str) or not row[key].strip():
                raise ValueError(f"{where}: field {key!r} must be a non-empty string, got {row[key]!r}")
        ids = row.get("message_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise ValueError(f"{where}: field 'message_ids' must be a non-empty list of strings, got {ids!r}")
        realism = row.get("how_realistic")
        if realism is not None and (isinstance(realism, bool) or not isinstance(realism, int | float)):
            raise ValueError(f"{where}: field 'how_realistic' must be a number, got {realism!r}")
        raw_id = row.get("id", f"arte-{lineno}")
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool):
            raise ValueError(f"{where}: field 'id' must be a string or integer, got {raw_id!r}")
        qid = str(raw_id)
        if qid in seen:
            raise ValueError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        extra = {k: v for k, v in row.items() if k not in _ARTE_FIELDS}
        out.append(
            EmailQuestion(
                id=qid,
                question=row["question"],
                answers=(row["answer"],),
                message_ids=tuple(ids),
                owner=row["inbox_address"],
                query_date=row["query_date"],
                kind="arte",
                how_realistic=None if realism is None else float(realism),
                meta={"inbox_address": row["inbox_address"], "source": str(path), "line": lineno, **extra},
            )
        )
    return out


_ARTE_FIELDS = frozenset({"id", "question", "answer", "message_ids", "inbox_address", "query_date", "how_realistic"})
