"""The synthetic company: determinism, exact answers, uniqueness per inbox, threads, scale."""

from __future__ import annotations

import datetime as dt
import re
import tracemalloc
from collections import Counter, defaultdict

import pytest

from horizongym.envs.email.company import Company, default_company, generate_company
from horizongym.envs.email.types import Email

_QUOTE = re.compile(r"\n\n(-----Original Message-----|----- Forwarded message -----)\n")


def _thread(subject: str) -> str:
    s = subject
    while re.match(r"(?i)(re|fw|fwd):\s*", s):
        s = re.sub(r"(?i)^(re|fw|fwd):\s*", "", s)
    return " ".join(s.split()).lower()


def _own(body: str) -> str:
    m = _QUOTE.search(body)
    return body[: m.start()] if m else body


@pytest.fixture(scope="module")
def company() -> Company:
    return generate_company(6000, seed=11)


@pytest.fixture(scope="module")
def emails(company: Company) -> list[Email]:
    return list(company.emails)


def test_same_seed_same_company_other_seed_other_company() -> None:
    a, b = generate_company(1500, seed=3), generate_company(1500, seed=3)
    assert list(a.emails) == list(b.emails) == list(a.emails)  # and a second pass replays the first
    assert a.questions == b.questions and [q.meta for q in a.questions] == [q.meta for q in b.questions]
    c = generate_company(1500, seed=4)
    assert [e.body for e in c.emails] != [e.body for e in a.emails]
    assert default_company() is default_company() and len(default_company().emails) == 5000


def test_records_are_inbox_copies(company: Company, emails: list[Email]) -> None:
    assert len(emails) == len(company.emails) == 6000
    assert len({(e.owner, e.message_id) for e in emails}) == len(emails)
    assert {e.owner for e in emails} == set(company.owners)
    dates = [dt.datetime.fromisoformat(e.date) for e in emails]
    assert dates == sorted(dates)
    by_id: dict[str, list[Email]] = defaultdict(list)
    for e in emails:
        by_id[e.message_id].append(e)
    owner_address = {p.owner: p.address for p in company.employees}
    for copies in by_id.values():
        first = copies[0]
        for c in copies:  # one message, the same fields in every inbox it belongs to
            assert (c.date, c.sender, c.to, c.cc, c.subject, c.body) == (
                first.date,
                first.sender,
                first.to,
                first.cc,
                first.subject,
                first.body,
            )
            address = owner_address[c.owner]
            assert (c.folder == "sent") == (address == c.sender)
            assert address == c.sender or address in c.to or address in c.cc
    assert any(len(v) > 2 for v in by_id.values())
    assert any("unsubscribe" in e.body for e in emails)  # newsletters are part of the noise


def test_answers_are_proven_by_their_sources(company: Company, emails: list[Email]) -> None:
    by_key = {(e.owner, e.message_id): e for e in emails}
    qs = company.questions
    assert len(qs) >= 300 and len({q.owner for q in qs}) >= 30
    assert len(set(Counter(q.kind for q in qs))) == 11
    for q in qs:
        src = by_key[(q.owner, q.message_ids[0])]  # asked of an inbox that holds the source
        assert dt.date.fromisoformat(q.query_date) > dt.datetime.fromisoformat(src.date).date()
        assert q.meta["key"] in q.question and q.meta["key"] in src.subject + src.body
        if q.kind == "deal_approver":
            assert src.sender == q.answers[1]
            assert "Approved." in _own(src.body)
        elif q.kind == "proposal_cc":
            assert q.meta["answer_list"] == list(src.cc) and q.answers[1] == ", ".join(src.cc)
        else:
            assert q.meta["evidence"] in _own(src.body)
            assert any(a in q.meta["evidence"] or q.meta["evidence"] in a for a in q.answers)


def test_each_question_names_one_thread_of_its_inbox(company: Company, emails: list[Email]) -> None:
    inbox: dict[str, list[Email]] = defaultdict(list)
    for e in emails:
        inbox[e.owner].append(e)
    by_id = {e.message_id: e for e in emails}
    for q in company.questions:
        key = re.compile(rf"\b{re.escape(q.meta['key'])}\b")
        mentions = [e for e in inbox[q.owner] if key.search(e.subject) or key.search(e.body)]
        assert {_thread(e.subject) for e in mentions} == {q.meta["thread"]}, q
        src_date = dt.datetime.fromisoformat(by_id[q.message_ids[0]].date)
        if "evidence" in q.meta:  # what the inbox says as of the source (and later) is the answer
            later = [e for e in mentions if dt.datetime.fromisoformat(e.date) >= src_date]
            assert later and all(q.meta["evidence"] in e.body for e in later), q
    assert any(q.meta.get("rescheduled") for q in company.questions)


def test_replies_and_forwards_quote_their_parent(emails: list[Email]) -> None:
    sent: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
    for e in emails:
        sent[(e.sender, e.subject)].append(dt.datetime.fromisoformat(e.date))
    n = 0
    for e in emails:
        if not re.match(r"(RE|FW): ", e.subject):
            assert not _QUOTE.search(e.body)
            continue
        n += 1
        m = _QUOTE.search(e.body)
        assert m is not None, e.subject
        assert (m.group(1) == "-----Original Message-----") == e.subject.startswith("RE:")
        quoted = e.body[m.end() :]
        sender = re.search(r"^From: .* <(.+)>$", quoted, re.M)
        subject = re.search(r"^Subject: (.+)$", quoted, re.M)
        assert sender and subject and _thread(subject.group(1)) == _thread(e.subject)
        times = sent[(sender.group(1), subject.group(1))]
        assert any(t < dt.datetime.fromisoformat(e.date) for t in times)  # the parent exists and came first
    assert n > 200


def test_body_words_follow_a_zipf_like_law(emails: list[Email]) -> None:
    counts = Counter(w for e in {e.message_id: e for e in emails}.values() for w in re.findall(r"[a-z]+", e.body))
    freq = [c for _, c in counts.most_common()]
    assert len(freq) > 3000
    assert 4 < freq[9] / freq[99] < 25  # roughly 1/rank: rank 10 is about ten times rank 100
    assert 4 < freq[99] / freq[999] < 25


def test_100k_emails_stream_without_being_held() -> None:
    company = generate_company(100_000, seed=1)
    tracemalloc.start()
    try:
        n, body_bytes, owners = 0, 0, set()
        for e in company.emails:
            n += 1
            body_bytes += len(e.body)
            owners.add(e.owner)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 100_000 and len(owners) == len(company.employees)
    assert peak < body_bytes / 10, (peak, body_bytes)
