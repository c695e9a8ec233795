"""Importers: the real HotpotQA sample, and hand-written files for the generic loaders and their errors."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from horizongym.envs.search.importers import (
    hotpotqa_doc_id,
    load_hotpotqa,
    load_jsonl_corpus,
    load_jsonl_questions,
)
from horizongym.envs.search.types import Document, QATask


@pytest.fixture(scope="module")
def hotpot(hotpot_path: Path) -> tuple[list[Document], list[QATask], dict[str, int]]:
    stats: dict[str, int] = {}
    documents, tasks = load_hotpotqa(hotpot_path, stats=stats)
    return documents, tasks, stats


@pytest.fixture(scope="module")
def raw_records(hotpot_path: Path) -> list[dict[str, Any]]:
    with gzip.open(hotpot_path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_real_hotpotqa_counts(hotpot: tuple[list[Document], list[QATask], dict[str, int]]) -> None:
    documents, tasks, stats = hotpot
    assert len(tasks) == 926
    assert len(documents) == 9068 == stats["documents"]
    assert stats["questions"] == 926 and stats["paragraphs"] == 9215
    assert len({d.id for d in documents}) == len({d.title for d in documents}) == len(documents)
    assert len({t.id for t in tasks}) == 926
    assert Counter(t.kind for t in tasks) == {"bridge": 764, "comparison": 162}
    assert Counter(t.meta["level"] for t in tasks) == {"hard": 834, "medium": 75, "easy": 17}
    assert Counter((t.meta["split"], t.meta["setting"]) for t in tasks) == {
        ("dev", "distractor"): 571,
        ("dev", "fullwiki"): 245,
        ("train", "distractor"): 110,
    }
    assert all(t.source == "hotpotqa" and t.answers and all(a.strip() for a in t.answers) for t in tasks)
    assert all(d.text and d.text == d.text.strip() for d in documents)


def test_real_hotpotqa_gold_documents(
    hotpot: tuple[list[Document], list[QATask], dict[str, int]], raw_records: list[dict[str, Any]]
) -> None:
    documents, tasks, _ = hotpot
    by_id = {d.id: d for d in documents}
    for task, record in zip(tasks, raw_records, strict=True):
        assert task.id == record["id"] and task.question == record["question"].strip()
        titles = list(dict.fromkeys(title for title, _ in record["supporting_facts"]))
        assert [by_id[i].title for i in task.gold_doc_ids] == titles
        assert task.hops == len(titles) >= 2
        assert task.meta["supporting_facts"] == record["supporting_facts"]
        if task.answers[0].lower() in ("yes", "no"):
            assert task.answers == (task.answers[0],)
        # each supporting sentence is in its gold document (kept text = the longest version)
        context = dict((title, sentences) for title, sentences in record["context"])
        for title, index in record["supporting_facts"]:
            # (whitespace normalised: the one title with two versions differs only in a no-break space)
            assert " ".join(context[title][index].split()) in " ".join(by_id[hotpotqa_doc_id(title)].text.split())


def test_real_hotpotqa_dedup_keeps_the_longest_text(
    hotpot: tuple[list[Document], list[QATask], dict[str, int]], raw_records: list[dict[str, Any]]
) -> None:
    documents, _, stats = hotpot
    versions: dict[str, set[str]] = {}
    for record in raw_records:
        for title, sentences in record["context"]:
            versions.setdefault(title, set()).add("".join(sentences).strip())
    conflicts = {title for title, texts in versions.items() if len(texts) > 1}
    assert stats["title_conflicts"] == len(conflicts) >= 1
    by_title = {d.title: d.text for d in documents}
    for title, texts in versions.items():
        assert len(by_title[title]) == max(len(t) for t in texts)


def test_real_hotpotqa_ids_are_stable(hotpot_path: Path) -> None:
    first, _ = load_hotpotqa(hotpot_path)
    again, _ = load_hotpotqa(str(hotpot_path))
    assert [d.id for d in first] == [d.id for d in again]
    expected = "hotpot-" + hashlib.sha1(b"Shirley Temple").hexdigest()[:16]
    assert hotpotqa_doc_id("Shirley Temple") == expected == next(d.id for d in first if d.title == "Shirley Temple")
    assert hotpotqa_doc_id("Shirley Temple") != hotpotqa_doc_id("Shirley Temple ")


# ------------------------------------------------------------------- hand-written HotpotQA files


def _record(qid: str, question: str, answer: str, context: list[Any], facts: list[Any], **extra: Any) -> dict[str, Any]:
    return {"_id": qid, "question": question, "answer": answer, "type": "bridge", "level": "easy",
            "supporting_facts": facts, "context": context, **extra}  # fmt: skip


RECORDS = [
    _record(
        "q1",
        "Where was the founder of Acme born?",
        "Springfield",
        [
            ["Acme", ["Acme was founded by Jo Bloggs.", " It makes anvils."]],
            ["Jo Bloggs", ["Jo was born in Springfield."]],
        ],
        [["Acme", 0], ["Jo Bloggs", 0], ["Acme", 1]],
    ),
    _record(
        "q2",
        "Is Acme older than Zenith?",
        "yes",
        [["Acme", ["Acme was founded by Jo Bloggs."]], ["Zenith", [" Zenith was founded in 1990."]]],
        [["Zenith", 0], ["Acme", 0]],
        type="comparison",
    ),
]


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["dev.json", "dev.jsonl", "dev.jsonl.gz", "dev.json.gz"])
def test_hotpotqa_layouts_and_dedup(tmp_path: Path, name: str) -> None:
    text = json.dumps(RECORDS) if ".jsonl" not in name else "\n".join(json.dumps(r) for r in RECORDS) + "\n\n"
    stats: dict[str, int] = {}
    documents, tasks = load_hotpotqa(_write(tmp_path / name, text), stats=stats)
    assert [d.title for d in documents] == ["Acme", "Jo Bloggs", "Zenith"]
    assert documents[0] == Document(hotpotqa_doc_id("Acme"), "Acme", "Acme was founded by Jo Bloggs. It makes anvils.")
    assert documents[2].text == "Zenith was founded in 1990."
    assert stats == {"questions": 2, "paragraphs": 4, "documents": 3, "title_conflicts": 1, "replaced_by_longer": 0}
    q1, q2 = tasks
    assert q1 == QATask("q1", RECORDS[0]["question"], ("Springfield",),
                        (hotpotqa_doc_id("Acme"), hotpotqa_doc_id("Jo Bloggs")), "bridge", 2, "hotpotqa")  # fmt: skip
    assert q1.meta == {"level": "easy", "supporting_facts": [["Acme", 0], ["Jo Bloggs", 0], ["Acme", 1]]}
    assert q2.kind == "comparison" and q2.answers == ("yes",)
    assert q2.gold_doc_ids == (hotpotqa_doc_id("Zenith"), hotpotqa_doc_id("Acme"))


def test_hotpotqa_longer_text_replaces_shorter(tmp_path: Path) -> None:
    records = [RECORDS[1], RECORDS[0]]  # the short "Acme" paragraph comes first
    stats: dict[str, int] = {}
    documents, _ = load_hotpotqa(_write(tmp_path / "d.json", json.dumps(records)), stats=stats)
    assert {d.title: d.text for d in documents}["Acme"] == "Acme was founded by Jo Bloggs. It makes anvils."
    assert stats["title_conflicts"] == 1 and stats["replaced_by_longer"] == 1


def test_hotpotqa_hugging_face_layout(tmp_path: Path) -> None:
    record = {
        "id": "h1",
        "question": "Where was Jo born?",
        "answer": "Springfield",
        "type": "bridge",
        "supporting_facts": {"title": ["Jo Bloggs"], "sent_id": [0]},
        "context": {"title": ["Jo Bloggs", "Other"], "sentences": [["Jo was born", " in Springfield."], ["x"]]},
    }
    documents, tasks = load_hotpotqa(_write(tmp_path / "hf.jsonl", json.dumps(record)))
    assert documents[0].text == "Jo was born in Springfield."
    assert tasks[0].id == "h1" and tasks[0].gold_doc_ids == (hotpotqa_doc_id("Jo Bloggs"),) and tasks[0].hops == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"question": ""}, "missing or empty 'question'"),
        ({"answer": None}, "missing or empty 'answer'"),
        ({"_id": None}, "missing '_id' or 'id'"),
        ({"supporting_facts": [["Nowhere", 0]]}, "'Nowhere' is not in the context"),
        ({"context": "oops"}, "malformed 'context'"),
        ({"type": "multi"}, "unknown 'type'"),
    ],
)
def test_hotpotqa_errors_name_file_and_line(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    bad = {**RECORDS[0], **change}
    if bad.get("_id") is None:
        bad.pop("_id")
    path = _write(tmp_path / "bad.jsonl", json.dumps(RECORDS[1]) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=rf"bad\.jsonl:2: .*{message}"):
        load_hotpotqa(path)
    array = _write(tmp_path / "bad.json", json.dumps([RECORDS[1], bad]))
    with pytest.raises(ValueError, match=rf"bad\.json item 1: .*{message}"):
        load_hotpotqa(array)


def test_hotpotqa_not_json(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.jsonl", json.dumps(RECORDS[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: not valid JSON"):
        load_hotpotqa(path)
    with pytest.raises(ValueError, match=r"broken\.json:1: not valid JSON"):
        load_hotpotqa(_write(tmp_path / "broken.json", "[{]"))


# --------------------------------------------------------------------------- generic JSONL loaders


def test_jsonl_corpus_forms(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "title": "Alpha", "text": "Alpha is first."},
        {"id": 7, "contents": '"Beta Town"\nBeta Town is a town.\nIt is small.'},
        {"contents": "Gamma\nNo quotes here."},
        {"text": "Untitled text."},
    ]
    path = _write(tmp_path / "corpus.jsonl.gz", "\n".join(json.dumps(x) for x in lines) + "\n")
    docs = load_jsonl_corpus(path)
    assert not isinstance(docs, list)  # a stream
    assert list(docs) == [
        Document("a", "Alpha", "Alpha is first."),
        Document("7", "Beta Town", "Beta Town is a town.\nIt is small."),
        Document("2", "Gamma", "No quotes here."),
        Document("3", "", "Untitled text."),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", r"corpus\.jsonl:2: not valid JSON"),
        ("[1, 2]", r"corpus\.jsonl:2: expected a JSON object"),
        ('{"id": "x", "title": "T"}', r"corpus\.jsonl:2: a document needs a string 'text'"),
        ('{"id": ["x"], "text": "t"}', r"corpus\.jsonl:2: 'id' must be"),
    ],
)
def test_jsonl_corpus_errors(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "corpus.jsonl", '{"id": "a", "text": "fine"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        list(load_jsonl_corpus(path))


def test_jsonl_questions(tmp_path: Path) -> None:
    lines = [
        {"id": "q1", "question": " Who? ", "answer": "Jo", "gold_doc_ids": ["d1", "d2"], "level": "x"},
        {"id": 2, "question": "When?", "answers": ["1990", "nineteen ninety"], "supporting_doc_ids": [5]},
        {"question": "Which?", "answers": "A", "type": "comparison", "hops": 2},
    ]
    path = _write(tmp_path / "qs.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    q1, q2, q3 = load_jsonl_questions(path)
    assert q1 == QATask("q1", "Who?", ("Jo",), ("d1", "d2"), "bridge", 2, "qs.jsonl")
    assert q1.meta == {"level": "x"}
    assert q2 == QATask("2", "When?", ("1990", "nineteen ninety"), ("5",), "single", 1, "qs.jsonl")
    assert q3 == QATask("line-3", "Which?", ("A",), (), "comparison", 2, "qs.jsonl")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json at all", r"qs\.jsonl:2: not valid JSON"),
        ('{"answer": "x"}', r"qs\.jsonl:2: missing or empty 'question'"),
        ('{"question": "q"}', r"qs\.jsonl:2: missing 'answer' or 'answers'"),
        ('{"question": "q", "answers": []}', r"qs\.jsonl:2: no non-empty answer"),
        ('{"question": "q", "answer": {"a": 1}}', r"qs\.jsonl:2: 'answer' must be a string or a list"),
        ('{"question": "q", "answer": "a", "type": "multi"}', r"qs\.jsonl:2: unknown 'type'"),
        ('{"question": "q", "answer": "a", "hops": 0}', r"qs\.jsonl:2: 'hops' must be a positive integer"),
    ],
)
def test_jsonl_questions_errors(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "qs.jsonl", '{"question": "ok?", "answer": "ok"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        load_jsonl_questions(path)
