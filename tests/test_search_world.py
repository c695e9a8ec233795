"""The fictional world: deterministic, answerable from its gold pages, hard to shortcut, streamable."""

from __future__ import annotations

import itertools
import os
import re
import tracemalloc
from collections import Counter

import pytest

from horizongym.envs.search.types import Document, QATask
from horizongym.envs.search.world import World, default_world, generate_world
from horizongym.envs.search.world.names import REAL_WORDS

STOP = {"The", "of", "in"}


@pytest.fixture(scope="module")
def world() -> World:
    return default_world()


@pytest.fixture(scope="module")
def docs(world: World) -> dict[str, Document]:
    return {d.id: d for d in world.documents}


def test_default_world_shape(world: World, docs: dict[str, Document]) -> None:
    assert world is default_world()
    assert world.num_documents == len(docs) == len(world.documents) == 5000
    assert len(world.tasks) == 1000
    assert len({t.id for t in world.tasks}) == len(world.tasks)
    assert len({t.question for t in world.tasks}) == len(world.tasks)
    assert all(t.source == "fictional" and t.answers and all(t.answers) for t in world.tasks)


def test_same_seed_same_world_other_seed_other_world() -> None:
    a, b, c = generate_world(1000, seed=3), generate_world(1000, seed=3), generate_world(1000, seed=4)
    assert list(a.documents) == list(b.documents)
    assert a.tasks == b.tasks and [t.meta for t in a.tasks] == [t.meta for t in b.tasks]
    assert [d.title for d in a.documents[:50]] != [d.title for d in c.documents[:50]]
    assert [t.question for t in a.tasks] != [t.question for t in c.tasks]


def test_documents_are_a_repeatable_lazy_sequence(world: World) -> None:
    first = list(world.iter_documents(chunk_size=777))
    assert first == list(world.documents)
    assert [d for batch in world.iter_batches(1000) for d in batch] == first
    for i in (0, 1, 19, 20, 2345, 4999, -1):
        assert world.documents[i] == first[i]
        assert world.document(first[i].id) == first[i]
    assert world.documents[10:30] == first[10:30]
    with pytest.raises(IndexError):
        world.documents[5000]
    with pytest.raises(KeyError):
        world.document("fh9999999")


def test_ids_and_names_are_unique(docs: dict[str, Document]) -> None:
    titles = [d.title for d in docs.values()]
    assert len(docs) == 5000
    assert len(set(titles)) == len(titles)


def test_names_stay_unique_at_scale() -> None:
    world = generate_world(200_000, seed=1, num_tasks=0)
    titles = world.titles()
    assert len(titles) == 200_000
    assert len(set(titles)) == len(titles)
    assert titles[:500] == [d.title for d in world.documents[:500]]


def test_names_are_not_real_words(docs: dict[str, Document]) -> None:
    invented = default_world().invented_words()
    assert len(invented) > 500
    assert not {w.lower() for w in invented} & REAL_WORDS
    try:  # a 151k-word English list, where the optional reasoning_gym package is installed
        from importlib.resources import files

        words = set((files("reasoning_gym") / "data" / "words3to10.txt").read_text().lower().split())
    except Exception:
        words = set()
    assert not {w.lower() for w in invented} & words


def test_paragraph_length(docs: dict[str, Document]) -> None:
    counts = [len(d.text.split()) for d in docs.values()]
    assert min(counts) >= 40 and max(counts) <= 90
    assert all(d.text.startswith(d.title) or d.title in d.text[:120] for d in docs.values())


def test_coverage_of_kinds_and_hops(world: World) -> None:
    seen = Counter((t.kind, t.hops) for t in world.tasks)
    assert {("single", 1), ("bridge", 2), ("bridge", 3), ("bridge", 4), ("comparison", 2)} == set(seen)
    assert all(n >= 100 for n in seen.values())


def test_every_answer_is_in_its_last_gold_document(world: World, docs: dict[str, Document]) -> None:
    for t in world.tasks:
        gold = [docs[i] for i in t.gold_doc_ids]
        assert len(gold) == t.hops == len(t.meta["chain"])
        assert [d.title for d in gold] == t.meta["chain"]
        if t.kind == "comparison":
            assert t.answers[0] in t.meta["chain"]
            for doc, value in zip(gold, t.meta["values"], strict=True):
                assert value in doc.text, (t, doc)
        else:
            assert t.answers[0] in gold[-1].text, (t, gold[-1])


def test_question_names_the_first_entity_and_chains_link_by_name(world: World, docs: dict[str, Document]) -> None:
    for t in world.tasks:
        chain = t.meta["chain"]
        assert chain[0] in t.question
        if t.kind == "comparison":
            assert chain[1] in t.question
            continue
        assert len(t.meta["relations"]) == t.hops - 1
        for prev_id, name in zip(t.gold_doc_ids, chain[1:], strict=False):
            assert name in docs[prev_id].text, (t, prev_id, name)
        # later hops are found only by reading: they are not named in the question
        assert not any(name in t.question for name in chain[1:])


def test_aliases() -> None:
    tasks = [t for t in default_world().tasks if t.meta["attribute"] == "population" and t.kind != "comparison"]
    assert tasks
    for t in tasks:
        assert t.answers == (t.answers[0], t.answers[0].replace(",", ""))


_YEAR = re.compile(r"(?<![\d,])(\d{4})(?![\d,])")
_FOUNDED = re.compile(r"(?:[Ff]ounded|established)(?: by [A-Z][a-z]+ [A-Z][a-z]+)? in (\d{3,4})\b")
_POPULATION = re.compile(r"population of ([\d,]+)|city of ([\d,]+) people")


def _value(doc: Document, attribute: str) -> int:
    """The compared value, read from the page text alone (the first year is the one compared)."""
    if attribute == "population":
        match = _POPULATION.search(doc.text)
        assert match, doc
        return int((match.group(1) or match.group(2)).replace(",", ""))
    pattern = _FOUNDED if attribute == "founded" else _YEAR
    match = pattern.search(doc.text.replace(doc.title, ""))
    assert match, doc
    return int(match.group(1))


def test_comparison_answers_follow_the_documents(world: World, docs: dict[str, Document]) -> None:
    comparisons = [t for t in world.tasks if t.kind == "comparison"]
    assert {t.meta["attribute"] for t in comparisons} == {"birth_year", "founded", "population", "year"}
    for t in comparisons:
        a, b = (docs[i] for i in t.gold_doc_ids)
        va, vb = _value(a, t.meta["attribute"]), _value(b, t.meta["attribute"])
        assert va != vb
        assert [str(va), str(vb)] == [v.replace(",", "") for v in t.meta["values"]]
        a_wins = va > vb if "larger" in t.question else va < vb
        expected = a.title if a_wins else b.title
        assert t.answers == (expected,), t


def test_distractors_share_name_parts_with_gold_entities(world: World, docs: dict[str, Document]) -> None:
    by_part = Counter(part for d in docs.values() for part in set(d.title.split()) - STOP)
    shared = 0
    for t in world.tasks:
        parts = set(t.meta["chain"][0].split()) - STOP
        if any(by_part[p] >= 2 for p in parts):
            shared += 1
        if t.meta["chain_types"][0] == "person":  # every person shares a first name or a surname
            assert any(by_part[p] >= 2 for p in parts), t
    assert shared >= 0.9 * len(world.tasks)
    # and attribute values repeat across pages: many people born in the same year as a gold person
    years = Counter(m.group(1) for d in docs.values() for m in [_YEAR.search(d.text.replace(d.title, ""))] if m)
    assert max(years.values()) >= 10


def test_split_is_deterministic_stratified_and_recorded(world: World) -> None:
    train, test = world.split()
    assert len(train) + len(test) == len(world.tasks)
    assert not {t.id for t in train} & {t.id for t in test}
    assert 0.18 <= len(test) / len(world.tasks) <= 0.22
    assert all(t.meta["split"] == "test" for t in test) and all(t.meta["split"] == "train" for t in train)
    assert world.split() == (train, test)
    other_train, _ = world.split(test_fraction=0.5, seed=1)
    assert 0.45 <= len(other_train) / len(world.tasks) <= 0.55
    with pytest.raises(ValueError):
        world.split(test_fraction=1.5)


def test_new_questions_are_new_repeatable_and_answered_by_their_pages(world: World) -> None:
    own = {t.question for t in world.tasks}
    first = list(itertools.islice(world.new_questions(seed=1), 200))
    assert [t.id for t in first] == [t.id for t in itertools.islice(world.new_questions(seed=1), 200)]
    assert [t.question for t in first] == [t.question for t in itertools.islice(world.new_questions(seed=1), 200)]
    assert len({t.question for t in first}) == 200 and not {t.question for t in first} & own
    assert len({t.id for t in first}) == 200 and all(t.hops == 1 and t.kind == "single" for t in first)
    for t in first[:50]:
        assert t.answers[0] in world.document(t.gold_doc_ids[0]).text
    bridges = list(itertools.islice(world.new_questions(seed=2, hops=3), 20))
    assert all(t.hops == 3 and len(t.gold_doc_ids) == 3 for t in bridges)
    with pytest.raises(ValueError, match="hops"):
        next(world.new_questions(seed=1, hops=5))


def test_invalid_sizes() -> None:
    with pytest.raises(ValueError, match="num_documents"):
        generate_world(10)
    with pytest.raises(ValueError, match="num_tasks"):
        generate_world(1000, num_tasks=-1)
    assert generate_world(1000, num_tasks=0).tasks == []


def _rss_bytes() -> int | None:
    """Current resident memory (Linux); None where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def test_streaming_200k_documents_in_bounded_memory() -> None:
    world = generate_world(200_000, seed=2, num_tasks=50)
    assert all(isinstance(t, QATask) for t in world.tasks)
    start = _rss_bytes()
    growth, count, last = 0, 0, ""
    for doc in world.iter_documents():
        count += 1
        last = doc.id
        if count % 10_000 == 0 and start is not None:
            growth = max(growth, (_rss_bytes() or start) - start)
    assert count == 200_000 and last == "fh0199999"
    assert growth < 64 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB while streaming"
    # the peak Python allocation of a streamed prefix stays small too (tracemalloc is slow: 20k docs)
    tracemalloc.start()
    try:
        for _ in zip(range(20_000), world.iter_documents(), strict=False):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB while streaming"
