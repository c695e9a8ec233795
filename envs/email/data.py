"""Data sources of the email environment, named by a short spec, loaded once per process.

Specs (the ``tasks=`` option of ``EmailInbox-v0``; ``horizongym play EmailInbox-v0 --tasks X``; the
env splits the questions, see :mod:`horizongym.envs.tasklist`):

* ``synthetic`` — the embedded default: a generated company's mail and questions with exactly
  known answers; ``synthetic:N`` or ``synthetic:N:SEED`` for a company of N emails.
* ``enron:PATH`` or a path ending in ``.jsonl``/``.jsonl.gz`` — emails as JSONL (the shared
  Enron export: ``message_id, date, from, to, cc, subject, body, mailbox``); ``maildir:ROOT`` —
  a CMU-layout maildir tree; ``csv:PATH`` — the ``emails.csv`` export (``file, message``).
  Questions for real mail are generated from the emails themselves (``questions``).

``questions=`` replaces the questions with an ART·E question file (``arte:PATH`` or a path),
whose inbox addresses are matched to the store's inboxes. Stores are built once and cached
on disk by content hash (``$HORIZONGYM_CACHE``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from horizongym.cache import cached, content_key
from horizongym.envs.email.store import EmailStore
from horizongym.envs.email.types import Email, EmailQuestion


@dataclass(frozen=True)
class EmailDataset:
    """A store of inboxes and the questions asked about them."""

    name: str
    store: EmailStore
    questions: tuple[EmailQuestion, ...]


# The code a store and its questions come from, besides the data (see ``horizongym.cache.content_key``).
_STORE_MODULES = ("horizongym.envs.email.store", "horizongym.envs.email.importers", "horizongym.envs.email.questions")


def _data_fingerprint(path: Path) -> str:
    """A hash of the data at ``path``: a file's bytes, or a folder's file names, sizes and times."""
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = item.stat()
            digest.update(f"{item.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    else:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cached_dataset(
    key: str, emails: Callable[[], Iterable[Email]], make_questions: Callable[[], list[EmailQuestion]]
) -> tuple[EmailStore, tuple[EmailQuestion, ...]]:
    """The store and questions cached under ``key``, built from the factories when missing."""

    def build(folder: Path) -> None:
        EmailStore.build(emails(), folder / "emails.sqlite")
        with open(folder / "questions.jsonl", "w", encoding="utf-8") as handle:
            for question in make_questions():
                handle.write(json.dumps(asdict(question), ensure_ascii=False) + "\n")

    folder = cached(f"email-{key}", build)
    questions = []
    for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record["answers"] = tuple(record["answers"])
        record["message_ids"] = tuple(record["message_ids"])
        questions.append(EmailQuestion(**record))
    return EmailStore.open(folder / "emails.sqlite"), tuple(questions)


def _synthetic(size: int | None, seed: int) -> tuple[EmailStore, tuple[EmailQuestion, ...]]:
    from horizongym.envs.email import company

    def generated() -> company.Company:  # only called when the cache misses (default_company is cached)
        return company.default_company() if size is None and seed == 0 else company.generate_company(size or 5000, seed)

    key = f"synthetic-{size}-{seed}-{content_key(modules=(*company.SOURCE_MODULES, *_STORE_MODULES))}"
    return _cached_dataset(key, lambda: generated().emails, lambda: list(generated().questions))


def _real(kind: str, path: Path) -> tuple[EmailStore, tuple[EmailQuestion, ...]]:
    from horizongym.envs.email import importers
    from horizongym.envs.email.questions import generate_questions

    if not path.exists():
        raise FileNotFoundError(f"no {kind} data at {path}")
    load: Callable[[Path], Iterable[Email]] = {
        "enron": importers.load_enron_jsonl,
        "maildir": importers.load_maildir,
        "csv": importers.load_emails_csv,
    }[kind]
    key = f"{kind}-{content_key(_data_fingerprint(path), modules=_STORE_MODULES)}"
    return _cached_dataset(key, lambda: load(path), lambda: generate_questions(load(path)))


def _arte(path: Path, store: EmailStore) -> tuple[EmailQuestion, ...]:
    """ART·E questions, their inbox addresses mapped to the store's inbox owners."""
    from horizongym.envs.email.questions import load_arte_questions

    owners = {inbox.address.lower(): inbox.owner for inbox in store.inboxes()}
    mapped = []
    for question in load_arte_questions(path):
        address = str(question.meta.get("inbox_address", question.owner)).lower()
        if address not in owners:
            raise ValueError(f"{path}: question {question.id!r} asks about inbox {address!r}, not in the store")
        mapped.append(
            EmailQuestion(
                **{
                    **asdict(question),
                    "owner": owners[address],
                    "answers": question.answers,
                    "message_ids": question.message_ids,
                }
            )
        )
    return tuple(mapped)


_loaded: dict[tuple[str, str | None], EmailDataset] = {}
_lock = threading.Lock()


def load_email_data(spec: str = "synthetic", questions: str | None = None) -> EmailDataset:
    """The dataset named by ``spec`` (see the module docstring), built once per process."""
    with _lock:
        key = (spec, questions)
        if key not in _loaded:
            kind, _, rest = spec.partition(":")
            if kind == "synthetic":
                parts = [int(p) for p in rest.split(":")] if rest else []
                store, asked = _synthetic(parts[0] if parts else None, parts[1] if len(parts) > 1 else 0)
            elif kind in ("enron", "maildir", "csv") and rest:
                store, asked = _real(kind, Path(rest).expanduser())
            elif spec.endswith((".jsonl", ".jsonl.gz")):
                store, asked = _real("enron", Path(spec).expanduser())
            elif spec.endswith(".csv"):
                store, asked = _real("csv", Path(spec).expanduser())
            else:
                raise ValueError(
                    f"unknown tasks={spec!r}: use 'synthetic', 'synthetic:N[:SEED]', 'enron:PATH' (JSONL), "
                    "'maildir:ROOT' or 'csv:PATH'"
                )
            if questions is not None:
                asked = _arte(Path(questions.removeprefix("arte:")).expanduser(), store)
            _loaded[key] = EmailDataset(spec, store, asked)
        return _loaded[key]
