"""The JSONL episode store: one line per episode, torn tails tolerated, resume by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from horizongym.training.rollouts import Episode, EpisodeStore, Step, read_episodes


def _episode(seed: int, sample: int = 0) -> Episode:
    return Episode(
        env_id="KeyChain-v0",
        seed=seed,
        sample=sample,
        task_id=f"t{seed}",
        steps=[Step(turn=1, action="a", observation="o", reward=1.0, reward_components={"answer": 1.0})],
        total_reward=1.0,
        termination_reason="terminated",
        terminated=True,
    )


def test_one_line_per_episode_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "episodes.jsonl"
    with EpisodeStore(path) as store:
        for seed in range(3):
            store.append(_episode(seed))
    assert len(path.read_bytes().splitlines()) == 3
    assert read_episodes(path) == [_episode(0), _episode(1), _episode(2)]


def test_torn_last_line_is_skipped_and_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    with EpisodeStore(path) as store:
        store.append(_episode(0))
    whole = _episode(1).model_dump_json()
    with open(path, "ab") as handle:
        handle.write(whole[: len(whole) // 2].encode())
    with pytest.warns(UserWarning, match=r"episodes\.jsonl:2: skipped a torn last line"):
        assert [e.seed for e in read_episodes(path)] == [0]
    with pytest.warns(UserWarning, match="torn"), EpisodeStore(path) as store:
        assert store.finished_keys() == {(0, 0)}
        store.append(_episode(2))
    assert [e.seed for e in read_episodes(path)] == [0, 2]
    assert path.read_bytes().endswith(b"\n")


def test_a_bad_line_in_the_middle_warns(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    path.write_text(_episode(0).model_dump_json() + "\n{oops\n" + _episode(1).model_dump_json() + "\n")
    with pytest.warns(UserWarning, match=r"episodes\.jsonl:2: skipped not JSON \(Expecting property name"):
        assert [e.seed for e in read_episodes(path)] == [0, 1]


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    assert read_episodes(tmp_path / "none.jsonl") == []
    assert EpisodeStore(tmp_path / "none.jsonl").finished_keys() == set()
