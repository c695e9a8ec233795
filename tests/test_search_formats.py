"""The standard multi-hop QA formats: 2WikiMultiHopQA, MuSiQue, Search-R1 / FlashRAG.

The fixtures in tests/fixtures/qa/ are hand-written in each format's published layout (field
names and shapes as in the data sets' READMEs): ``2wiki_dev.json`` (a JSON array, as the
release's dev.json) with ``2wiki_id_aliases.json``, ``musique_full_dev.jsonl`` (with one
unanswerable item), and ``searchr1_test.jsonl`` with the corpus ``searchr1_corpus.jsonl``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from horizongym.agents import expert_for
from horizongym.envs.search.data import load_search_data
from horizongym.envs.search.env import SearchJudgeEnv
from horizongym.envs.search.musique import load_musique
from horizongym.envs.search.rewards import answer_in_text, exact_match, f1_score
from horizongym.envs.search.searchr1 import load_searchr1_questions
from horizongym.envs.search.twowiki import load_2wiki
from horizongym.training.rollouts import EnvRecipe, RolloutEngine

FIXTURES = Path(__file__).parent / "fixtures" / "qa"
TWOWIKI, ALIASES = FIXTURES / "2wiki_dev.json", FIXTURES / "2wiki_id_aliases.json"
MUSIQUE = FIXTURES / "musique_full_dev.jsonl"
SR1_QUESTIONS, SR1_CORPUS = FIXTURES / "searchr1_test.jsonl", FIXTURES / "searchr1_corpus.jsonl"

SPECS = {
    "2wiki": f"2wiki:{TWOWIKI}?aliases={ALIASES}",
    "musique": f"musique:{MUSIQUE}",
    "searchr1": f"searchr1:{SR1_QUESTIONS}:{SR1_CORPUS}",
}


# ------------------------------------------------------------------------------------ readers


def test_2wiki_types_gold_documents_evidences_and_aliases() -> None:
    stats: dict[str, int] = {}
    documents, tasks = load_2wiki(TWOWIKI, aliases=ALIASES, stats=stats)
    raw = json.loads(TWOWIKI.read_text())
    assert [t.meta["type"] for t in tasks] == ["comparison", "bridge_comparison", "compositional", "inference"]
    assert [t.kind for t in tasks] == ["comparison", "comparison", "bridge", "bridge"]
    assert [t.hops for t in tasks] == [2, 4, 2, 2]
    by_id = {d.id: d for d in documents}
    for task, record in zip(tasks, raw, strict=True):
        assert task.id == record["_id"] and task.source == "2wikimultihopqa"
        titles = list(dict.fromkeys(title for title, _ in record["supporting_facts"]))
        assert [by_id[i].title for i in task.gold_doc_ids] == titles
        assert task.meta["evidences"] == record["evidences"] and task.meta["answer_id"] == record["answer_id"]
    # sentences are joined with a space (2Wiki's sentences bring none)
    assert by_id[tasks[0].gold_doc_ids[0]].text.startswith("Blind Shaft is a 2003 film") and ".  " not in "".join(
        d.text for d in documents
    )
    # the corpus: one document per distinct (title, text), ids stable across loads
    distinct = {(title, " ".join(s)) for record in raw for title, s in record["context"]}
    assert len(documents) == len(distinct) == stats["documents"] < stats["paragraphs"] == 17
    assert [d.id for d in load_2wiki(TWOWIKI)[0]] == [d.id for d in documents]
    # aliases: the answer_id's names from id_aliases.json
    assert tasks[3].answers[0] == "Ernest I, Duke of Saxe-Coburg and Gotha" and "Ernest I" in tasks[3].answers
    assert tasks[0].answers == ("The Mask Of Fu Manchu",) and stats["with_aliases"] == 2
    assert load_2wiki(TWOWIKI)[1][3].answers == ("Ernest I, Duke of Saxe-Coburg and Gotha",)


def test_musique_decomposition_aliases_and_unanswerable_items() -> None:
    stats: dict[str, int] = {}
    documents, tasks = load_musique(MUSIQUE, stats=stats)
    assert [t.id for t in tasks] == ["2hop__460946_294723", "2hop__252311_366220", "3hop1__9285_5188_23307"]
    assert stats["unanswerable"] == stats["unanswerable_skipped"] == 1 and stats["questions"] == 3
    assert [t.hops for t in tasks] == [2, 2, 3] and {t.kind for t in tasks} == {"bridge"}
    by_id = {d.id: d for d in documents}
    # gold documents in the order the decomposition uses them
    assert [by_id[i].title for i in tasks[0].gold_doc_ids] == ["Green (Steve Hillage album)", "Miquette Giraudy"]
    assert [by_id[i].title for i in tasks[2].gold_doc_ids] == [
        "The Collegian (Houston Baptist University)",
        "Houston Baptist University",
        "Houston",
    ]
    assert tasks[2].answers == ("United States", "US", "USA", "United States of America", "U.S.")
    assert len(tasks[2].meta["question_decomposition"]) == 3 and tasks[2].meta["answerable"] is True
    assert len(documents) == len({(d.title, d.text) for d in documents}) < stats["paragraphs"]

    kept_stats: dict[str, int] = {}
    _, kept = load_musique(MUSIQUE, keep_unanswerable=True, stats=kept_stats)
    assert len(kept) == 4 and kept[3].meta["answerable"] is False and kept_stats["unanswerable_skipped"] == 0
    assert len(kept[3].gold_doc_ids) == 1  # its second hop's paragraph was removed


def test_searchr1_questions_and_corpus() -> None:
    tasks = load_searchr1_questions(SR1_QUESTIONS)
    assert [t.id for t in tasks] == ["test_0", "dev_1", "test_2"]
    assert tasks[2].answers == ("Sax Rohmer", "Arthur Henry Ward") and all(t.gold_doc_ids == () for t in tasks)
    assert [(t.kind, t.hops) for t in tasks] == [("single", 1), ("comparison", 2), ("single", 1)]
    assert tasks[1].meta["metadata"]["level"] == "medium" and tasks[0].source == "searchr1"
    dataset = load_search_data(SPECS["searchr1"])
    assert dataset.corpus is not None
    titles = {dataset.corpus.get(str(i)).title for i in range(7)}
    assert {"Blind Shaft", "Houston", "Sax Rohmer"} <= titles  # quoted and bare first lines


def test_specs_load_with_counts_and_options() -> None:
    for name, spec in SPECS.items():
        dataset = load_search_data(spec)
        assert dataset.tasks and dataset.corpus is not None, name
        for task in dataset.tasks:
            assert all(doc_id in dataset.corpus for doc_id in task.gold_doc_ids)
    assert load_search_data(SPECS["musique"]).stats["unanswerable_skipped"] == 1
    kept = load_search_data(f"musique:{MUSIQUE}?unanswerable=keep")
    assert len(kept.tasks) == 4 and kept.stats["unanswerable_skipped"] == 0
    with pytest.raises(ValueError, match=r"unknown option 'unanswerable' \(options: aliases=\)"):
        load_search_data(f"2wiki:{TWOWIKI}?unanswerable=keep")
    with pytest.raises(ValueError, match=r"option unanswerable='drop' must be one of \['skip', 'keep'\]"):
        load_search_data(f"musique:{MUSIQUE}?unanswerable=drop")
    with pytest.raises(FileNotFoundError, match=r"no Search-R1 corpus file at /nowhere\.jsonl"):
        load_search_data(f"searchr1:{SR1_QUESTIONS}:/nowhere.jsonl")
    with pytest.raises(ValueError, match="'searchr1:QUESTIONS_PATH:CORPUS_PATH'"):
        load_search_data(f"searchr1:{SR1_QUESTIONS}")


# ------------------------------------------------------------------------------------ errors


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _broken(tmp_path: Path, source: Path, change: dict[str, Any], name: str) -> Path:
    """``source``'s records, the second one changed (None deletes a field), as JSONL."""
    rows = json.loads(source.read_text()) if source.suffix == ".json" else _lines(source)
    bad = {**rows[1], **change}
    for key in [k for k, v in change.items() if v is None]:
        bad.pop(key)
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in [rows[0], bad]) + "\n")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "multi"}, r"field 'type': expected one of \['bridge_comparison', .*\], got 'multi'"),
        ({"type": None}, r"field 'type' is missing"),
        ({"answer": ""}, r"field 'answer': expected a non-empty string, got ''"),
        ({"context": [["Blind Shaft", "no list"]]}, r"field 'context': expected entries \[title, \[sentences\]\]"),
        ({"supporting_facts": [["Nowhere", 0]]}, r"field 'supporting_facts': expected titles that are in 'context'"),
        ({"evidences": [["a", "b"]]}, r"field 'evidences': expected a list of \[subject, relation, object\] triples"),
    ],
)
def test_2wiki_errors_name_file_line_and_field(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = _broken(tmp_path, TWOWIKI, change, "dev.jsonl")
    with pytest.raises(ValueError, match=rf"^{tmp_path}/dev\.jsonl:2: {message}"):
        load_2wiki(path)
    array = tmp_path / "dev.json"
    array.write_text(json.dumps(_lines(path)))
    with pytest.raises(ValueError, match=rf"^{tmp_path}/dev\.json item 1: {message}"):
        load_2wiki(array)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, r"field 'id' is missing \(expected a string or integer id\)"),
        ({"answerable": "yes"}, r"field 'answerable': expected true or false, got 'yes'"),
        ({"answer_aliases": "US"}, r"field 'answer_aliases': expected a list of strings, got 'US'"),
        ({"paragraphs": [{"idx": 0, "title": "T"}]}, r"field 'paragraphs\[0\]': expected \{idx: int, title: str, "),
        (
            {"question_decomposition": [{"id": 1, "paragraph_support_idx": 99}]},
            r"field 'question_decomposition\[0\]\.paragraph_support_idx': expected an idx of 'paragraphs', got 99",
        ),
    ],
)
def test_musique_errors_name_file_line_and_field(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{tmp_path}/m\.jsonl:2: {message}"):
        load_musique(_broken(tmp_path, MUSIQUE, change, "m.jsonl"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"golden_answers": None}, r"field 'golden_answers' is missing \(expected a non-empty list of answer"),
        ({"golden_answers": []}, r"field 'golden_answers': expected a non-empty list of answer strings, got \[\]"),
        ({"golden_answers": [{"text": "x"}]}, r"field 'golden_answers': expected a list of strings"),
        ({"question": 7}, r"field 'question': expected a non-empty string, got 7"),
        ({"metadata": "hotpotqa"}, r"field 'metadata': expected an object, got 'hotpotqa'"),
    ],
)
def test_searchr1_errors_name_file_line_and_field(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{tmp_path}/q\.jsonl:2: {message}"):
        load_searchr1_questions(_broken(tmp_path, SR1_QUESTIONS, change, "q.jsonl"))


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(MUSIQUE.read_text().splitlines()[0] + "\n{oops\n")
    with pytest.raises(ValueError, match=rf"^{path}:2: not valid JSON"):
        load_musique(path)


# ------------------------------------------------------------------------------------ rewards


def test_aliases_count_for_em_and_f1() -> None:
    answers = ("United States", "US", "USA")
    assert exact_match("the U.S.A.", answers) == 1.0 and exact_match("America", answers) == 0.0
    assert f1_score("US", answers) == 1.0 and f1_score("United Kingdom", answers) == pytest.approx(0.5)
    assert f1_score("Kingdom", answers) == 0.0


def test_answer_in_text_matches_whole_tokens() -> None:
    assert answer_in_text("HBU was founded in 1960.", ("1960",))
    assert not answer_in_text("It was founded in 19601.", ("1960",))
    assert not answer_in_text("north of the river", ("no",))
    assert answer_in_text("Arthur Henry Ward, better known as Sax Rohmer", ("Sax Rohmer", "x"))
    assert not answer_in_text("anything", ("", "  "))


def _play(env: SearchJudgeEnv, task_id: str, actions: list[str]) -> tuple[str, dict[str, Any]]:
    env.reset(options={"task_id": task_id})
    observation, info = "", dict[str, Any]()
    for action in actions:
        observation, _, _, _, info = env.step(action)
    return observation, info


def test_an_alias_answer_scores_em_through_the_env() -> None:
    with_aliases = SearchJudgeEnv(tasks=SPECS["2wiki"], split="all")
    actions = ["<search>Albert Prince Consort</search>", "<judge>Yes</judge>", "<answer>Ernest I</answer>"]
    observation, info = _play(with_aliases, "c6d2fa3e0bdd11eba7f7acde48001122", actions)
    assert observation == "Correct." and info["answer_em"] == 1.0
    without = SearchJudgeEnv(tasks=f"2wiki:{TWOWIKI}", split="all")
    _, info = _play(without, "c6d2fa3e0bdd11eba7f7acde48001122", actions)
    assert info["answer_em"] == 0.0 and 0 < info["answer_f1"] < 1
    musique = SearchJudgeEnv(tasks=SPECS["musique"], split="all", answer_metric="f1")
    actions = ["<search>Houston</search>", "<judge>Yes</judge>", "<answer>USA</answer>"]
    _, info = _play(musique, "3hop1__9285_5188_23307", actions)
    assert info["answer_em"] == 1.0 and info["answer_f1"] == 1.0


def test_searchr1_information_is_useful_when_it_holds_an_answer() -> None:
    env = SearchJudgeEnv(tasks=SPECS["searchr1"], split="all", top_k=1)
    env.reset(options={"task_id": "test_0"})
    observation, *_ = env.step("<search>Houston Baptist University founded</search>")
    assert "1960" in observation and env.episode.retrievals[-1].useful
    env.step("<judge>Yes</judge>")
    observation, *_ = env.step("<search>Blind Shaft coal mines film</search>")
    assert "1960" not in observation and not env.episode.retrievals[-1].useful


# ------------------------------------------------------------------------------------ the expert


@pytest.mark.parametrize(
    ("name", "solved"),
    [
        ("2wiki", {"a5fd2a4a0bdd11eba7f7acde48001122", "b1c54e1e0bdd11eba7f7acde48001122"}),
        ("musique", {"2hop__252311_366220"}),
        ("searchr1", {"dev_1", "test_2"}),
    ],
)
def test_expert_plays_each_format_by_the_rules(name: str, solved: set[str]) -> None:
    """Every episode ends by the rules; the expert answers exactly the questions its parser can follow."""
    dataset = load_search_data(SPECS[name])
    recipe = EnvRecipe("SearchJudge-v0", {"tasks": SPECS[name], "split": "all", "task_order": "by_seed"})
    with RolloutEngine(recipe, expert_for("SearchJudge-v0"), concurrency=2, progress=False) as engine:
        episodes = engine.run_sync(len(dataset.tasks))
    assert Counter(e.task_id for e in episodes) == Counter(t.id for t in dataset.tasks)
    assert all(e.termination_reason == "terminated" for e in episodes)
    assert not any(step.error for e in episodes for step in e.steps)
    assert {e.task_id for e in episodes if e.success} == solved
    for episode in episodes:
        assert episode.steps[-1].info["answer_em"] == (1.0 if episode.task_id in solved else 0.0)


def test_rollout_command_plays_each_format(tmp_path: Path) -> None:
    for name, spec in SPECS.items():
        kwargs = json.dumps({"tasks": spec, "split": "all", "task_order": "by_seed"})
        out = str(tmp_path / f"{name}.jsonl")
        command = [sys.executable, "-m", "horizongym", "rollout", "SearchJudge-v0", "--policy", "expert", "-n", "3"]
        result = subprocess.run(
            [*command, "--quiet", "--out", out, "--env-kwargs", kwargs],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert "SearchJudge-v0  expert  3 " in result.stdout, result.stdout
        assert len((tmp_path / f"{name}.jsonl").read_text().splitlines()) == 3
        if name == "musique":
            assert "skipped 1 unanswerable questions of 4" in result.stderr
