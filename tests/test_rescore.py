"""``horizongym replay --rescore``: rewards recomputed from the recorded reward events, no tool run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from horizongym.agents import Policy, RandomPolicy, expert_for
from horizongym.cli import main
from horizongym.envs.email.store import EmailStore
from horizongym.envs.search.bm25 import BM25Retriever
from horizongym.tools import ToolSet
from horizongym.training.rollouts import EnvRecipe, Episode, EpisodeStore, RolloutEngine, read_episodes
from horizongym.training.rollouts.rescore import RescoreError, rescore_episodes

SEARCH_LIKE_THE_DEMO = {
    "top_k": 1,
    "max_observation_chars": 160,
    "max_searches": 2,
    "instructions": False,
    "task_order": "by_seed",
}

CASES = [
    ("KeyChain-v0", {}, {"format_penalty": -0.5}),
    ("LongChain-v0", {"min_length": 2, "max_length": 6}, {"format_penalty": -1.0}),
    (
        "SearchJudge-v0",
        SEARCH_LIKE_THE_DEMO,
        {
            "judge_weight": 2.0,
            "answer_weight": 0.5,
            "answer_metric": "f1",
            "judge_rewards": {"correct": 0.5, "wrong_yes": -1.0, "useful_yes_correct_answer": 0.9},
            "format_penalty": -0.25,
        },
    ),
    ("SearchJudge-v0", {}, {"judge_rewards": "symmetric", "validation": True}),
    ("EmailInbox-v0", {}, {"rewards": {"correct": 2.0, "wrong": -0.5, "partial": 0.2, "malformed_call": -1.0}}),
]


def rollout(
    path: Path, env_id: str, policy: Policy, *, env_kwargs: dict[str, Any] | None = None, tasks: int = 4, group: int = 2
) -> list[Episode]:
    """Episodes of ``policy`` on ``env_id``, stored at ``path`` as ``horizongym rollout`` stores them."""
    with (
        EpisodeStore(path) as store,
        RolloutEngine(
            EnvRecipe(env_id, env_kwargs or {}), policy, concurrency=4, store=store, progress=False
        ) as engine,
    ):
        engine.run_sync(tasks, group)
    return read_episodes(path)


@pytest.fixture
def tool_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Counts every tool call, every search of the BM25 index and every search or read of the mail store."""
    counts = {"tools": 0, "retriever": 0, "mail": 0}

    def counting(name: str, method: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return method(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(ToolSet, "invoke", counting("tools", ToolSet.invoke))
    monkeypatch.setattr(BM25Retriever, "search", counting("retriever", BM25Retriever.search))
    monkeypatch.setattr(EmailStore, "search", counting("mail", EmailStore.search))
    monkeypatch.setattr(EmailStore, "read", counting("mail", EmailStore.read))
    yield counts


def rescore_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["replay", *args, "--rescore"])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rewards(episodes: list[Episode]) -> dict[tuple[int, int], tuple[float, list[float], list[dict[str, float]]]]:
    return {
        e.key: (e.total_reward, [s.reward for s in e.steps], [s.reward_components for s in e.steps]) for e in episodes
    }


def played(path: Path, env_id: str, env_kwargs: dict[str, Any]) -> list[Episode]:
    """The expert's and the random policy's episodes (seeds 0-3, two samples each), in one run file."""
    policies: list[Policy] = [expert_for(env_id), RandomPolicy()]
    episodes = []
    for number, policy in enumerate(policies):
        episodes += sorted(
            rollout(path.with_suffix(f".{number}.jsonl"), env_id, policy, env_kwargs=env_kwargs), key=lambda e: e.key
        )
    path.write_text("".join(e.model_dump_json() + "\n" for e in episodes))
    return read_episodes(path)


@pytest.mark.parametrize(("env_id", "env_kwargs", "changed"), CASES)
def test_rescore_reproduces_stored_rewards_and_gives_a_rerun_s_rewards_with_new_settings(
    env_id: str,
    env_kwargs: dict[str, Any],
    changed: dict[str, Any],
    tool_runs: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    recorded = played(tmp_path / "run.jsonl", env_id, env_kwargs)
    assert any(step.reward_events for e in recorded for step in e.steps)
    assert tool_runs["tools"] > 0
    tool_runs.update(dict.fromkeys(tool_runs, 0))

    code, out, err = rescore_cli(capsys, str(tmp_path / "run.jsonl"), "--out", str(tmp_path / "same.jsonl"))
    assert code == 0, err
    assert out.startswith(f"rescore: {len(recorded)} episodes with the recorded settings")
    same = read_episodes(tmp_path / "same.jsonl")
    assert [e.model_dump() for e in same] == [e.model_dump() for e in recorded]  # to the last bit, all of it

    arguments = ("--reward-kwargs", json.dumps(changed), "--out", str(tmp_path / "new.jsonl"))
    code, out, err = rescore_cli(capsys, str(tmp_path / "run.jsonl"), *arguments)
    assert code == 0, err
    assert tool_runs == {"tools": 0, "retriever": 0, "mail": 0}
    new = read_episodes(tmp_path / "new.jsonl")
    assert rewards(new) != rewards(recorded)
    for before, after in zip(recorded, new, strict=True):
        assert after.env_kwargs == {**before.env_kwargs, **changed}
        assert after.model_dump(exclude={"steps", "total_reward", "env_kwargs"}) == before.model_dump(
            exclude={"steps", "total_reward", "env_kwargs"}
        )
        for old_step, new_step in zip(before.steps, after.steps, strict=True):
            kept = {"reward", "reward_components"}
            assert new_step.model_dump(exclude=kept) == old_step.model_dump(exclude=kept)

    # the same policies played again with the new settings, every tool run: the same rewards
    rerun = played(tmp_path / "rerun.jsonl", env_id, {**env_kwargs, **changed})
    assert tool_runs["tools"] > 0
    assert [(e.policy, e.key) for e in rerun] == [(e.policy, e.key) for e in new]
    assert [[s.action for s in e.steps] for e in rerun] == [[s.action for s in e.steps] for e in new]
    assert rewards(new) == rewards(rerun)


def test_envs_whose_rewards_are_not_all_events_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for env_id in ("SWE-v0", "KernelGen-v0"):
        run = tmp_path / f"{env_id}.jsonl"
        run.write_text(Episode(env_id=env_id, seed=0).model_dump_json() + "\n")
        code, out, err = rescore_cli(capsys, str(run), "--out", str(tmp_path / "new.jsonl"))
        assert code == 2 and out == "" and len(err.splitlines()) == 1
        assert f"{env_id}'s rewards are not all reward events" in err
        rescorable = err.partition("envs that can be rescored: ")[2].strip().split(", ")
        assert {"EmailInbox-v0", "KeyChain-v0", "LongChain-v0", "SearchJudge-v0"} <= set(rescorable)
        assert not {"SWE-v0", "KernelGen-v0"} & set(rescorable)
    assert not (tmp_path / "new.jsonl").exists()


@pytest.mark.parametrize(
    ("reward_kwargs", "fragment"),
    [
        ({"max_turns": 3}, "--reward-kwargs ['max_turns'] are not reward settings of KeyChain-v0"),
        ({"format_penalty": "a lot"}, "cannot build KeyChain-v0"),
    ],
)
def test_keywords_that_are_not_reward_settings_are_refused(
    reward_kwargs: dict[str, Any], fragment: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rollout(tmp_path / "run.jsonl", "KeyChain-v0", RandomPolicy())
    arguments = ("--reward-kwargs", json.dumps(reward_kwargs), "--out", str(tmp_path / "new.jsonl"))
    code, _, err = rescore_cli(capsys, str(tmp_path / "run.jsonl"), *arguments)
    assert code == 2 and fragment in err and len(err.splitlines()) == 1
    assert not (tmp_path / "new.jsonl").exists()


def test_unknown_reward_values_are_named() -> None:
    episode = Episode(env_id="SearchJudge-v0", seed=0)
    with pytest.raises(RescoreError, match=r"judge_rewards has no value \['bogus'\]"):
        rescore_episodes([episode], {"judge_rewards": {"bogus": 1.0}})
    with pytest.raises(RescoreError, match=r"rewards has no value \['right'\]"):
        rescore_episodes([Episode(env_id="EmailInbox-v0", seed=0)], {"rewards": {"right": 1.0}})


def test_a_record_without_reward_events_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    episodes = rollout(tmp_path / "run.jsonl", "KeyChain-v0", expert_for("KeyChain-v0"))
    old = [
        e.model_copy(update={"steps": [s.model_copy(update={"reward_events": ()}) for s in e.steps]}) for e in episodes
    ]
    (tmp_path / "old.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in old))
    code, _, err = rescore_cli(capsys, str(tmp_path / "old.jsonl"), "--out", str(tmp_path / "new.jsonl"))
    assert code == 2 and "has reward components {'answer': 1.0} but no reward events" in err
    assert not (tmp_path / "new.jsonl").exists()


def test_rescore_needs_a_new_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = tmp_path / "run.jsonl"
    rollout(run, "KeyChain-v0", RandomPolicy(), tasks=1, group=1)
    code, _, err = rescore_cli(capsys, str(run))
    assert code == 2 and "give it with --out NEW.jsonl" in err
    (tmp_path / "taken.jsonl").write_text("something\n")
    code, _, err = rescore_cli(capsys, str(run), "--out", str(tmp_path / "taken.jsonl"))
    assert code == 2 and "already exists" in err and (tmp_path / "taken.jsonl").read_text() == "something\n"
