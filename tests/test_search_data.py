"""Data specs of SearchJudge-v0: the fictional default, the real HotpotQA sample, JSONL files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import horizongym
from horizongym.envs.search.data import SearchDataset, load_search_data
from horizongym.envs.search.env import SearchJudgeEnv
from horizongym.envs.search.types import QATask
from horizongym.envs.tasklist import split_of


def test_unknown_specs_are_explained() -> None:
    with pytest.raises(ValueError, match="unknown tasks='wiki'"):
        load_search_data("wiki")
    with pytest.raises(ValueError, match="unknown retriever 'dense'"):
        load_search_data("fictional:1000:7", "dense")


def test_splits_are_stable_and_disjoint() -> None:
    tasks = [QATask(id=f"q{i}", question="?", answers=("a",), gold_doc_ids=()) for i in range(500)]
    train = [t for t in tasks if split_of(t.id) == "train"]
    assert 300 < len(train) < 480 and [split_of(t.id) for t in tasks] == [split_of(t.id) for t in tasks]
    assert split_of("x", "dev") == "test" and split_of("x", "validation") == "test"


def test_default_env_runs_on_the_fictional_world() -> None:
    env = horizongym.make("SearchJudge-v0")
    observation, info = env.reset(seed=3)
    assert "Question: " in observation and info["task_id"]
    observation, *_ = env.step("<search>" + observation.split("Question: ")[1] + "</search>")
    assert observation.startswith("<information>Doc 1(Title: ")


def test_every_gold_document_of_the_real_sample_is_in_its_corpus(hotpot_path: Path) -> None:
    dataset: SearchDataset = load_search_data(f"hotpotqa:{hotpot_path}")
    env = SearchJudgeEnv(tasks=f"hotpotqa:{hotpot_path}", split="all")
    assert len(dataset.tasks) == 926 and dataset.corpus is not None
    for task in dataset.tasks:
        assert all(doc_id in dataset.corpus for doc_id in task.gold_doc_ids)
    assert {env.task_split(t) for t in dataset.tasks} == {"train", "test"}
    hits = dataset.retriever.search([dataset.tasks[0].question], 5)[0]
    assert len(hits) == 5 and hits[0].score >= hits[-1].score


def test_jsonl_data(tmp_path: Path) -> None:
    corpus, questions = tmp_path / "corpus.jsonl", tmp_path / "questions.jsonl"
    corpus.write_text(
        "\n".join(
            json.dumps(d)
            for d in [
                {"id": "a", "title": "Orrin Vale", "text": "Orrin Vale is a lighthouse on the Keth coast."},
                {"id": "b", "title": "Keth", "text": "Keth is a windy coast of the Marl sea."},
            ]
        )
    )
    questions.write_text(
        json.dumps({"id": "q1", "question": "Which sea is Keth on?", "answer": "Marl", "gold_doc_ids": ["b"]})
    )
    env = horizongym.make("SearchJudge-v0", tasks=f"jsonl:{corpus}:{questions}", split="all")
    env.reset(seed=0)
    observation, *_ = env.step("<search>Keth coast sea</search>")
    assert "Keth is a windy coast" in observation


def test_play_from_the_terminal() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "horizongym", "play", "SearchJudge-v0", "--seed", "1"],
        input="<search>founded</search>\n<judge>No</judge>\n<answer>nothing</answer>\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "<information>Doc 1(Title: " in result.stdout
    assert "judge" in result.stdout and "episode over: terminated" in result.stdout
