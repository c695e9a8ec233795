"""The email store and its importers: the real Enron sample, inbox scoping, hostile input, exact results."""

from __future__ import annotations

import gzip
import json
import pickle
import random
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horizongym.envs.email.importers import load_emails_csv, load_enron_jsonl, load_maildir
from horizongym.envs.email.query import QueryError, split_keywords
from horizongym.envs.email.store import EmailStore
from horizongym.envs.email.types import Email

HOSTILE = [
    '" OR 1=1 --',
    "'; DROP TABLE emails; --",
    "NEAR(",
    "NEAR(gas price, 2)",
    "subject:",
    "meta : gas",
    "{subject body meta} : gas",
    '"unbalanced',
    "gas*",
    "^gas",
    "(gas",
    "gas)",
    "AND",
    "OR NOT",
    "\x00gas",
    "gas\x00\x00",
    "😀",
    "x" * 10_000,
    "gas " * 2_500,
    "\ud800",
    "",
    "   ",
    "*",
    '"',
    '""',
]


@pytest.fixture(scope="session")
def enron_store(run_dir: Path, enron_path: Path) -> EmailStore:
    """The real Enron sample as a store, built once per test run (a file lock guards it for xdist)."""
    shared = run_dir
    target = shared / "enron-store" / "emails.sqlite"
    with FileLock(str(shared / "enron-store.lock")):
        if not (target.parent / "DONE").exists():
            EmailStore.build(load_enron_jsonl(enron_path), target)
            (target.parent / "DONE").write_text("ok\n")
    return EmailStore.open(target)


# ----- the real sample ---------------------------------------------------------------------------
def test_enron_counts(enron_store: EmailStore) -> None:
    inboxes = enron_store.inboxes()
    assert len(enron_store) == 44_714
    assert len(inboxes) == 137
    assert sum(inbox.emails for inbox in inboxes) == 44_714
    assert enron_store.count("nemec-g") == 1_466
    assert enron_store.address_of("arnold-j") == "john.arnold@enron.com"
    assert all(inbox.address for inbox in inboxes)
    dates = enron_store.dates("allen-p")
    assert dates == sorted(dates, key=lambda d: datetime.fromisoformat(d).astimezone(UTC))


def test_enron_search_is_newest_first_and_in_inbox(enron_store: EmailStore) -> None:
    hits = enron_store.search("lay-k", ["enron"], limit=10)
    assert len(hits) == 10
    moments = [datetime.fromisoformat(h.date) for h in hits]
    assert moments == sorted(moments, reverse=True)
    for hit in hits:
        email = enron_store.read("lay-k", hit.message_id)
        assert email is not None and email.owner == "lay-k"
        assert "enron" in (email.subject + " " + email.body).lower()


def test_enron_ids_without_message_id_are_stable(enron_path: Path) -> None:
    first = [e.message_id for e in load_enron_jsonl(enron_path) if e.owner == "allen-p"]
    second = [e.message_id for e in load_enron_jsonl(enron_path) if e.owner == "allen-p"]
    made_up = [m for m in first if m.startswith("hg-")]
    assert len(made_up) == 63 and first == second and len(set(first)) == len(first)


def test_enron_other_inboxes_never_leak(enron_store: EmailStore) -> None:
    """An episode on one inbox sees nothing of another, whatever it searches or reads."""
    rng = random.Random(0)
    owners = [inbox.owner for inbox in enron_store.inboxes()]
    for _ in range(20):
        mine, theirs = rng.sample(owners, 2)
        their_emails = list(enron_store.iter_emails(theirs))
        mine_ids = {e.message_id for e in enron_store.iter_emails(mine)}
        for email in rng.sample(their_emails, min(5, len(their_emails))):
            if email.message_id not in mine_ids:
                assert enron_store.read(mine, email.message_id) is None
            words = re.findall(r"[A-Za-z]{4,}", email.subject + " " + email.body)[:3]
            attempts = [
                {"keywords": words},
                {"keywords": words[:1], "from_addr": email.sender},
                {"keywords": [], "to_addr": enron_store.address_of(theirs)},
                {"keywords": [], "from_addr": f'{email.sender}" OR meta : "x'},
                {"keywords": [f"owner:{theirs}", theirs]},
                {"keywords": ['" OR 1=1 --', *words[:1]], "to_addr": "' OR owner != '' --"},
            ]
            for attempt in attempts:
                for hit in enron_store.search(mine, **attempt):  # type: ignore[arg-type]
                    assert hit.message_id in mine_ids


def test_enron_owner_tokens_are_not_searchable(enron_store: EmailStore) -> None:
    from horizongym.envs.email.query import scope_token as _token

    other = _token("o", "skilling-j")
    assert enron_store.search("lay-k", [other]) == []
    assert enron_store.search("lay-k", [f"meta : {other}"]) == []
    assert enron_store.search("lay-k", [], to_addr=other) == []


@pytest.mark.parametrize("keyword", HOSTILE)
def test_enron_hostile_keywords(enron_store: EmailStore, keyword: str) -> None:
    for keywords in ([keyword], [keyword, "gas"]):
        try:
            hits = enron_store.search("allen-p", keywords, from_addr=keyword or None, to_addr=keyword or None)
        except QueryError as e:
            assert not split_keywords(keywords)[0] and "keyword" in str(e)
        else:
            assert isinstance(hits, list)
        assert enron_store.read("allen-p", keyword) is None


# ----- a small hand-made archive, checked against brute force --------------------------------------
WORDS = ["gas", "power", "price", "Houston", "meeting", "contract", "Enron", "deal", "café", "trade"]
PEOPLE = ["ann@x.com", "Bob@X.com", "carl@y.org", "dana@y.org", "eve@z.net"]
OWNERS = ["ann", "bob", "carl"]


def small_archive(seed: int = 0, n: int = 240) -> list[Email]:
    rng = random.Random(seed)
    emails = []
    for i in range(n):
        if i % 17 == 0:
            when = ""
        else:
            day = rng.randint(1, 28)
            hour, offset = rng.choice([0, 9, 23]), rng.choice(["-08:00", "+00:00", "+05:30"])
            when = f"2001-{rng.randint(1, 12):02d}-{day:02d}T{hour:02d}:00:00{offset}"
        emails.append(
            Email(
                message_id=f"<m{i}@test>" if i % 11 else "",
                date=when,
                sender=rng.choice(PEOPLE),
                to=tuple(rng.sample(PEOPLE, rng.randint(0, 2))),
                cc=tuple(rng.sample(PEOPLE, rng.randint(0, 1))),
                bcc=(),
                subject=" ".join(rng.choices(WORDS, k=2)),
                body=" ".join(rng.choices(WORDS, k=rng.randint(0, 6))) + f" number{i}",
                owner=rng.choice(OWNERS),
                folder="inbox",
            )
        )
    return emails


def _utc(value: str) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def brute_force(
    emails: list[Email],
    owner: str,
    keywords: list[str],
    from_addr: str | None,
    to_addr: str | None,
    after: str | None,
    before: str | None,
    limit: int,
) -> list[str]:
    def tokens(text: str) -> set[str]:
        return {t.replace("é", "e") for t in re.findall(r"\w+", text.lower())}

    order = sorted(range(len(emails)), key=lambda i: (_utc(emails[i].date), i), reverse=True)
    found = []
    for i in order:
        e = emails[i]
        words = tokens(e.subject) | tokens(e.body)
        if e.owner != owner or not all(k.lower().replace("é", "e") in words for k in keywords):
            continue
        if from_addr is not None and e.sender.lower() != from_addr.lower():
            continue
        if to_addr is not None and to_addr.lower() not in {a.lower() for a in e.to + e.cc + e.bcc}:
            continue
        if (after or before) and not _utc(e.date):
            continue
        if after is not None and _utc(e.date) < _utc(after):
            continue
        if before is not None and _utc(e.date) >= _utc(before):
            continue
        found.append(e.message_id)
    return found[:limit]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[EmailStore, list[Email]]:
    emails = small_archive()
    store = EmailStore.build(emails, tmp_path_factory.mktemp("small") / "emails.sqlite")
    stored = {(e.owner, e.message_id): e for o in OWNERS for e in store.iter_emails(o)}
    # the archive as stored: the made-up ids filled in, in input order
    with_ids = []
    for e in emails:
        match = [s for (owner, _), s in stored.items() if owner == e.owner and s.body == e.body]
        with_ids.append(match[0])
    return store, with_ids


def test_small_archive_equals_brute_force(small: tuple[EmailStore, list[Email]]) -> None:
    store, emails = small
    rng = random.Random(1)
    checked_nonempty = 0
    for _ in range(400):
        owner = rng.choice(OWNERS)
        keywords = rng.sample(WORDS, rng.randint(0, 2))
        from_addr = rng.choice([None, None, *PEOPLE])
        to_addr = rng.choice([None, None, *PEOPLE])
        after = rng.choice([None, None, "2001-03-01", "2001-06-15T12:00:00-07:00"])
        before = rng.choice([None, None, "2001-09-01", "2001-06-15"])
        limit = rng.choice([1, 3, 10, 1000])
        expected = brute_force(emails, owner, keywords, from_addr, to_addr, after, before, limit)
        got = store.search(
            owner,
            keywords,
            from_addr=from_addr,
            to_addr=to_addr,
            sent_after=after,
            sent_before=before,
            limit=limit,
        )
        assert [h.message_id for h in got] == expected, (owner, keywords, from_addr, to_addr, after, before, limit)
        checked_nonempty += bool(expected)
    assert checked_nonempty > 100


def test_small_archive_read_round_trips(small: tuple[EmailStore, list[Email]]) -> None:
    store, emails = small
    for e in emails:
        assert store.read(e.owner, e.message_id) == e
        for other in OWNERS:
            if other != e.owner and not any(x.owner == other and x.message_id == e.message_id for x in emails):
                assert store.read(other, e.message_id) is None
    made_up = [e.message_id for e in emails if e.message_id.startswith("hg-")]
    assert len(made_up) == len([i for i in range(240) if i % 11 == 0])
    assert len(pickle.loads(pickle.dumps(store))) == len(store)


def test_bad_arguments_raise_query_error(small: tuple[EmailStore, list[Email]]) -> None:
    store, _ = small
    with pytest.raises(QueryError, match="keyword"):
        store.search("ann", ["*", "--", "😀"])
    for bad in ("yesterday", "2001-13-01", "01/02/2001", "x" * 10_000, "2001-01-01\x00x"):
        with pytest.raises(QueryError, match="sent_after"):
            store.search("ann", ["gas"], sent_after=bad)
    for limit in (0, -1, 10_000):
        with pytest.raises(QueryError, match="limit"):
            store.search("ann", ["gas"], limit=limit)
    with pytest.raises(KeyError):
        store.search("nobody", ["gas"])
    assert split_keywords(["gas", "*", " price "]) == (["gas", "price"], ["*"])
    assert store.search("ann", ["gas"], sent_after="2002-01-01") == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keywords=st.lists(st.one_of(st.text(max_size=50), st.sampled_from(HOSTILE)), max_size=4),
    address=st.one_of(st.none(), st.text(max_size=30), st.sampled_from(HOSTILE)),
    when=st.one_of(st.none(), st.text(max_size=30)),
)
def test_hostile_input_never_errors(
    small: tuple[EmailStore, list[Email]], keywords: list[str], address: str | None, when: str | None
) -> None:
    store, emails = small
    mine = {e.message_id for e in emails if e.owner == "ann"}
    try:
        hits = store.search("ann", keywords, from_addr=address, to_addr=address, sent_after=when)
    except QueryError:
        return
    assert all(h.message_id in mine for h in hits)
    for keyword in keywords:
        assert store.read("ann", keyword) is None or keyword in mine


def test_concurrent_readers(small: tuple[EmailStore, list[Email]]) -> None:
    store, _ = small
    reader = EmailStore.open(store.path)
    expected = [h.message_id for h in store.search("bob", ["gas"])]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                assert [h.message_id for h in reader.search("bob", ["gas"])] == expected
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ----- importers ------------------------------------------------------------------------------------
RAW = {
    ("ann-a", "inbox", "1"): (
        "Message-ID: <1.JavaMail.evans@thyme>\r\nDate: Mon, 14 May 2001 16:39:00 -0700 (PDT)\r\n"
        "From: bob@enron.com\r\nTo: ann@enron.com, carl@enron.com\r\nCc: dana@enron.com\r\n"
        "Subject: Gas prices\r\n\r\nThe gas price\r\nis up.\r\n"
    ),
    ("ann-a", "inbox/junk", "2"): (
        "Date: Tue, 15 May 2001 09:00:00 -0700\nFrom: Eve <eve@x.com>\nTo: ann@enron.com,\n\tundisclosed-recipients\n"
        "Subject: Buy now\n\nCheap stuff\n"
    ),
    ("bob-b", "_sent_mail", "1"): (
        "Message-ID: <9@x>\nFrom: bob@enron.com\nTo: ann@enron.com\nSubject: multi\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="XX"\n\n--XX\nContent-Type: text/plain\n\nplain part\n'
        "--XX\nContent-Type: text/html\n\n<b>html</b>\n--XX--\n"
    ),
}


def write_maildir(root: Path) -> Path:
    for (owner, folder, name), text in RAW.items():
        path = root / "maildir" / owner / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    (root / "maildir" / "ann-a" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return root


def test_load_maildir(tmp_path: Path) -> None:
    emails = list(load_maildir(write_maildir(tmp_path)))
    assert [(e.owner, e.folder) for e in emails] == [
        ("ann-a", "inbox"),
        ("ann-a", "inbox/junk"),
        ("bob-b", "_sent_mail"),
    ]
    first, junk, multi = emails
    assert first.message_id == "1.JavaMail.evans@thyme"
    assert first.date == "2001-05-14T16:39:00-07:00"
    assert first.to == ("ann@enron.com", "carl@enron.com") and first.cc == ("dana@enron.com",)
    assert first.body == "The gas price\nis up.\n"
    assert junk.sender == "eve@x.com" and junk.to == ("ann@enron.com", "undisclosed-recipients")
    assert junk.message_id.startswith("hg-") and junk.message_id == list(load_maildir(tmp_path))[1].message_id
    assert multi.date == "" and "plain part" in multi.body and "html" not in multi.body
    store = EmailStore.build(emails, tmp_path / "s.sqlite")
    assert [h.message_id for h in store.search("ann-a", ["gas"])] == [first.message_id]
    assert store.address_of("ann-a") == "ann@enron.com"


def test_load_emails_csv_matches_maildir(tmp_path: Path) -> None:
    import csv

    path = tmp_path / "emails.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "message"])
        for (owner, folder, name), text in RAW.items():
            writer.writerow([f"{owner}/{folder}/{name}.", text])
    from_csv = list(load_emails_csv(path))
    from_maildir = list(load_maildir(write_maildir(tmp_path / "m")))
    assert [e.message_id for e in from_csv] == [e.message_id for e in from_maildir]
    assert [(e.owner, e.folder, e.sender, e.to, e.subject) for e in from_csv] == [
        (e.owner, e.folder, e.sender, e.to, e.subject) for e in from_maildir
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("path,text\nx,y\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*'file' and 'message'"):
        list(load_emails_csv(bad))


def test_load_enron_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    good = {"message_id": None, "date": None, "from": "a@b.c", "to": ["d@e.f"], "cc": [], "subject": "s"}
    good |= {"body": "b", "mailbox": "x-y/inbox/junk"}
    path = tmp_path / "e.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(good) + "\n\n{not json\n")
    loaded = load_enron_jsonl(path)
    email = next(loaded)
    assert (email.owner, email.folder, email.date) == ("x-y", "inbox/junk", "")
    with pytest.raises(ValueError, match=r"e\.jsonl\.gz:3"):
        next(loaded)
    path.write_text(json.dumps(good | {"to": 5}) + "\n")
    with pytest.raises(ValueError, match=r"e\.jsonl\.gz:1.*'to'"):
        list(load_enron_jsonl(path))
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "mailbox"}) + "\n")
    with pytest.raises(ValueError, match=r"e\.jsonl\.gz:1.*mailbox"):
        list(load_enron_jsonl(path))
