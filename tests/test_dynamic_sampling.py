"""Dynamic sampling: groups whose episodes all end alike are played but not trained on, and the trainer
plays more rounds of new tasks to find groups that carry signal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import horizongym as hg
from horizongym import Task, TextEnv
from horizongym.training.config import TrainConfig
from horizongym.training.dynamic_sampling import signal_seeds, with_signal
from horizongym.training.rollouts import read_episodes
from horizongym.training.rollouts.trajectory import Episode, Step
from horizongym.training.trainer import Trainer


def _episode(seed: int, sample: int, reward: float, *, outcome: str | None = None) -> Episode:
    step = Step(turn=1, action="a", observation="o", reward=reward)
    fields: dict[str, Any] = {"outcome": outcome or "completed"}
    return Episode(env_id="X-v0", seed=seed, sample=sample, steps=[step], total_reward=reward, **fields)


def test_a_group_has_signal_only_when_its_trainable_rewards_differ() -> None:
    episodes = [
        *(_episode(0, s, 1.0) for s in range(3)),  # all solved: no signal
        _episode(1, 0, 0.0),
        _episode(1, 1, 1.0),  # differ: signal
        _episode(2, 0, 0.0),
        _episode(2, 1, 1.0, outcome="infra_error"),  # the differing one is not the policy's
        _episode(3, 0, 0.5),  # alone: nothing to compare
        _episode(4, 0, 0.2),
        _episode(4, 1, 0.7),
    ]
    assert signal_seeds(episodes) == {1, 4}
    assert {e.seed for e in with_signal(episodes)} == {1, 4}
    assert [(e.seed, e.sample) for e in with_signal(episodes, limit=1)] == [(1, 0), (1, 1)]


class SameRewardEnv(TextEnv):
    """One turn; every episode earns the same reward, so no group ever carries signal."""

    blocking = False
    max_turns = 1

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id="same", prompt="Say anything.")

    def on_text(self, text: str) -> str:
        self.add_reward("flat", 1.0)
        self.end_episode(success=True)
        return "Done."


class TextRewardEnv(SameRewardEnv):
    """One turn rewarded by the text's distinct characters, so sampled episodes of a task differ."""

    def on_text(self, text: str) -> str:
        self.add_reward("variety", (len(set(text)) % 5) / 4)
        self.end_episode(success=len(set(text)) % 2 == 0)
        return "Done."


hg.register("SameReward-v0", SameRewardEnv)
hg.register("TextReward-v0", TextRewardEnv)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from horizongym.agents.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("dynamic") / "tiny", seed=5, hidden_size=32, num_heads=2)


def _train(model_dir: Path, out: Path, env_id: str, **overrides: Any) -> tuple[list[dict[str, Any]], list[Episode]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = TrainConfig(
        env_id=env_id,
        group_size=3,
        tasks_per_step=2,
        steps=2,
        max_new_tokens=8,
        out_dir=str(out),
        dynamic_sampling=True,
        sampling_rounds=3,
        **overrides,
    )
    records = Trainer(config, model, AutoTokenizer.from_pretrained(model_dir), progress=False).train()
    return records, read_episodes(out / "episodes.jsonl")


def test_groups_without_signal_are_stored_not_trained_and_more_rounds_are_played(tiny: Path, tmp_path: Path) -> None:
    records, stored = _train(tiny, tmp_path, "SameReward-v0")
    assert [r["sampling_rounds"] for r in records] == [3, 3]  # never filled: every round played
    assert [r["signal_groups"] for r in records] == [0, 0]
    assert all(r["samples"] == 0 and r["optimizer_steps"] == 0 for r in records)
    assert records[-1]["next_seed"] == 2 * 3 * 2  # steps x rounds x tasks_per_step: no task seed reused
    assert sorted({e.seed for e in stored}) == list(range(12)) and len(stored) == 12 * 3
    assert all(step.advantage is None for e in stored for step in e.steps)  # played, not learned from
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["sampling_rounds"] for line in lines] == [3, 3]


def test_training_takes_at_most_tasks_per_step_groups_with_signal(tiny: Path, tmp_path: Path) -> None:
    records, stored = _train(tiny, tmp_path, "TextReward-v0", temperature=1.5)
    for record in records:
        assert 1 <= record["sampling_rounds"] <= 3
        assert record["signal_groups"] <= 2
        assert record["samples"] == 3 * record["signal_groups"]  # one turn per episode of a kept group
    trained = [e for e in stored if any(step.advantage is not None for step in e.steps)]
    assert trained and signal_seeds(trained) == {e.seed for e in trained}
    assert len(stored) == sum(r["sampling_rounds"] for r in records) * 2 * 3


def test_the_held_out_seed_check_counts_every_sampling_round() -> None:
    with pytest.raises(ValueError, match="held-out range"):
        TrainConfig(env_id="TextReward-v0", steps=10, tasks_per_step=4, dynamic_sampling=True, eval_seed_start=100)
    TrainConfig(env_id="TextReward-v0", steps=10, tasks_per_step=4, eval_seed_start=100)  # 40 seeds fit


def test_a_task_list_env_may_evaluate_its_test_split_from_seed_zero() -> None:
    config = TrainConfig(
        env_id="SearchJudge-v0", env_kwargs={"split": "train"}, steps=10, tasks_per_step=4, eval_seed_start=0
    )
    assert config.eval_seed_start == 0
    with pytest.raises(ValueError, match="held-out range"):
        TrainConfig(
            env_id="SearchJudge-v0",
            env_kwargs={"split": "train"},
            eval_env_kwargs={"split": "train"},
            steps=10,
            tasks_per_step=4,
            eval_seed_start=0,
        )
