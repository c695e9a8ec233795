"""Questions generated from the real Enron inboxes, and the ART·E question loader.

Runs on ``../shared/data/enron/emails.jsonl.gz`` (read in place, never copied); a missing file
is a failure with instructions, not a skip.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from horizongym.envs.email.importers import load_enron_jsonl
from horizongym.envs.email.questions import (
    generate_questions,
    load_arte_questions,
    own_text,
    split_by_inbox,
)
from horizongym.envs.email.types import Email, EmailQuestion


@pytest.fixture(scope="module")
def enron(enron_path: Path) -> list[Email]:
    return list(load_enron_jsonl(enron_path))


@pytest.fixture(scope="module")
def questions(enron: list[Email]) -> list[EmailQuestion]:
    return generate_questions(enron, seed=0)


# Independent re-implementations (not the module's helpers) for the re-checks.
def _thread(subject: str) -> str:
    s = subject.strip()
    while True:
        m = re.match(r"(?i)(re|fw|fwd|aw|sv|tr)\s*(\[\d+\])?\s*:\s*", s)
        if not m:
            return " ".join(s.split()).lower()
        s = s[m.end() :]


def _day(date: str) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(date).date()
    except ValueError:
        return None


def test_enough_questions_over_enough_inboxes(questions: list[EmailQuestion]) -> None:
    kinds = Counter(q.kind for q in questions)
    inboxes = {q.owner for q in questions}
    assert len(questions) >= 1000, kinds
    assert len(inboxes) >= 50
    assert set(kinds) == {"sender", "date", "cc", "amount", "location"}, kinds
    assert len({q.id for q in questions}) == len(questions)


def test_every_answer_is_proven_by_its_source(enron: list[Email], questions: list[EmailQuestion]) -> None:
    by_key = {(e.owner, e.message_id): e for e in enron}
    for q in questions:
        assert len(q.message_ids) == 1 and q.answers and all(q.answers)
        src = by_key[(q.owner, q.message_ids[0])]  # the source is in the inbox the question is about
        assert "junk" not in src.folder
        assert src.subject.split()[0] in q.question
        day = _day(src.date)
        assert day is not None and dt.date.fromisoformat(q.query_date) > day
        if q.kind == "sender":
            assert src.sender in q.answers
            if q.answers[0] != src.sender:  # a name read off the address: its parts, in order
                local = src.sender.split("@")[0].replace(".", " ").lower().split()
                assert q.answers[0].replace(".", " ").lower().split() == local
        elif q.kind == "date":
            assert q.answers[0] == day.isoformat()
            assert f"{day:%B} {day.day}, {day.year}" in q.answers
        elif q.kind == "cc":
            assert set(q.meta["answer_list"]) == {a.lower() for a in src.cc}
            assert ", ".join(q.meta["answer_list"]) in q.answers
        elif q.kind == "amount":
            text = own_text(src.body)
            assert q.meta["evidence"] in text and " ".join(q.meta["evidence"].split()) == q.answers[0]
            assert len(re.findall(r"\$\s?\d", text)) == 1
            line = next(ln for ln in text.splitlines() if q.meta["evidence"] in ln)
            assert q.meta["label"] in " ".join(line.split()) and q.meta["label"] in q.question
        else:
            assert q.kind == "location"
            place = re.search(rf"(?im)^\s*{q.meta['label']}\s*:\s*(.+)$", src.body)
            assert place is not None and " ".join(place.group(1).split()) == q.answers[0]


def test_identifying_details_match_exactly_one_email_of_the_inbox(
    enron: list[Email], questions: list[EmailQuestion]
) -> None:
    by_key = {(e.owner, e.message_id): e for e in enron}
    subject_days: dict[tuple[str, str], list[dt.date | None]] = defaultdict(list)
    pairs: Counter[tuple[str, str, str]] = Counter()
    for e in enron:
        subject_days[(e.owner, _thread(e.subject))].append(_day(e.date))
        pairs[(e.owner, e.sender.lower(), _thread(e.subject))] += 1
    for q in questions:
        src = by_key[(q.owner, q.message_ids[0])]
        thread = _thread(src.subject)
        if q.kind == "sender":
            day = _day(src.date)
            assert day is not None
            near = [d for d in subject_days[(q.owner, thread)] if d is not None and abs((d - day).days) <= 1]
            assert len(near) == 1, q
        else:
            assert pairs[(q.owner, src.sender.lower(), thread)] == 1, q


def test_generation_is_deterministic(enron: list[Email]) -> None:
    some = [e for e in enron if e.owner in {"allen-p", "lay-k", "jones-t", "dasovich-j"}]
    a = generate_questions(some, seed=4)
    b = generate_questions(list(reversed(some)), seed=4)
    assert a == b and [q.meta for q in a] == [q.meta for q in b]
    c = generate_questions(some, seed=5)
    assert [q.id for q in a] == [q.id for q in c]  # the same questions...
    assert [q.query_date for q in a] != [q.query_date for q in c]  # ...with other as-of dates
    capped = generate_questions(some, seed=4, per_inbox_cap=7)
    assert max(Counter(q.owner for q in capped).values()) == 7
    assert capped == generate_questions(some, seed=4, per_inbox_cap=7)


def test_split_by_inbox_is_disjoint_and_matches_meta(questions: list[EmailQuestion]) -> None:
    train, test = split_by_inbox(questions, test_fraction=0.2, seed=0)
    train_inboxes, test_inboxes = {q.owner for q in train}, {q.owner for q in test}
    assert train and test and not train_inboxes & test_inboxes
    assert len(train) + len(test) == len(questions)
    assert 0.1 < len(test_inboxes) / (len(train_inboxes) + len(test_inboxes)) < 0.3
    assert all(q.meta["split"] == "test" for q in test) and all(q.meta["split"] == "train" for q in train)
    assert split_by_inbox(questions, 0.2, 0) == (train, test)
    assert {q.owner for q in split_by_inbox(questions, 0.2, 1)[1]} != test_inboxes


# ------------------------------------------------------------------------------------- ART·E


def _arte_row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": 7,
        "question": "When is the Q3 review?",
        "answer": "October 3, 2001",
        "message_ids": ["<1.JavaMail.evans@thyme>"],
        "inbox_address": "phillip.allen@enron.com",
        "query_date": "2001-10-01",
        "how_realistic": 0.8,
    }
    row.update(over)
    return row


def test_arte_loader_reads_rows(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    rows = [_arte_row(), _arte_row(id="x2", how_realistic=None, realistic=True)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    qs = load_arte_questions(path)
    assert [q.id for q in qs] == ["7", "x2"]
    q = qs[0]
    assert q.answers == ("October 3, 2001",) and q.message_ids == ("<1.JavaMail.evans@thyme>",)
    assert q.owner == "phillip.allen@enron.com" == q.meta["inbox_address"]
    assert q.query_date == "2001-10-01" and q.how_realistic == 0.8
    assert qs[1].how_realistic is None and qs[1].meta["realistic"] is True
    gz = tmp_path / "q.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(json.dumps(_arte_row(id=None) | {"id": 9}) + "\n")
    assert load_arte_questions(gz)[0].id == "9"
    no_id = tmp_path / "noid.jsonl"
    no_id.write_text(json.dumps({k: v for k, v in _arte_row().items() if k != "id"}) + "\n")
    assert load_arte_questions(no_id)[0].id == "arte-1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({k: v for k, v in _arte_row().items() if k != "answer"}), "missing field 'answer'"),
        (json.dumps(_arte_row(question="")), "'question' must be a non-empty string"),
        (json.dumps(_arte_row(message_ids="abc")), "'message_ids' must be a non-empty list"),
        (json.dumps(_arte_row(message_ids=[])), "'message_ids' must be a non-empty list"),
        (json.dumps(_arte_row(how_realistic="high")), "'how_realistic' must be a number"),
        (json.dumps(_arte_row(id=[1])), "'id' must be a string or integer"),
        (json.dumps(_arte_row()), "duplicate id '7'"),
    ],
)
def test_arte_loader_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_arte_row()) + "\n\n" + line + "\n")
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        load_arte_questions(path)
    assert f"{path}:3:" in str(err.value)
