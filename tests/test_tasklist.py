"""The task-list envs (SearchJudge, EmailInbox, SWE, KernelGen): one ``tasks=``, split, order, reset options."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import horizongym
from horizongym.envs.tasklist import TaskListEnv, is_task_list_env


@dataclass(frozen=True)
class Family:
    """How a test builds a family's env cheaply, and one of its tools with valid arguments."""

    kwargs: dict[str, Any]
    tool: str
    arguments: dict[str, Any]
    with_list: dict[str, str] = field(default_factory=dict)
    """What a list of tasks needs beside it: keyword → the env attribute that holds it."""


FAMILIES = {
    "SearchJudge-v0": Family({}, "search", {"query": "founded"}, {"search_backend": "retriever"}),
    "EmailInbox-v0": Family({}, "read_email", {"message_id": "m-1"}, {"store": "store"}),
    "SWE-v0": Family({}, "bash", {"command": "ls"}),
    "KernelGen-v0": Family({"backend": "cpu"}, "submit", {"code": "print(1)"}),
}
ENV_IDS = sorted(FAMILIES)

_TEST_IDS = """
import json, horizongym
ids = {}
for env_id in %r:
    env = horizongym.make(env_id, split="test").unwrapped
    ids[env_id] = [env.task_id(t) for t in env.tasks]
print(json.dumps(ids))
"""


def build(env_id: str, **kwargs: Any) -> TaskListEnv[Any, Any]:
    env = horizongym.make(env_id, **{**FAMILIES[env_id].kwargs, **kwargs}).unwrapped
    assert isinstance(env, TaskListEnv)
    return env


@pytest.fixture
def opened() -> Iterator[list[TaskListEnv[Any, Any]]]:
    """Envs a test opens, closed at its end (an SWE episode holds a sandbox)."""
    envs: list[TaskListEnv[Any, Any]] = []
    yield envs
    for env in envs:
        env.close()


def ids_of(env: TaskListEnv[Any, Any]) -> list[str]:
    return [env.task_id(task) for task in env.tasks]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_train_and_test_partition_all_and_are_stable(env_id: str) -> None:
    splits = {name: ids_of(build(env_id, split=name)) for name in ("train", "test", "all")}
    assert splits["train"] and splits["test"]
    assert not set(splits["train"]) & set(splits["test"])
    assert sorted(splits["train"] + splits["test"]) == sorted(splits["all"])
    assert ids_of(build(env_id, split="test")) == splits["test"]
    assert build(env_id).split == "train"  # the same default in every family


def test_splits_are_the_same_in_another_process() -> None:
    here = {env_id: ids_of(build(env_id, split="test")) for env_id in ENV_IDS}
    result = subprocess.run(
        [sys.executable, "-c", _TEST_IDS % (ENV_IDS,)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == here


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_by_seed_plays_the_tasks_in_order(env_id: str, opened: list[TaskListEnv[Any, Any]]) -> None:
    env = build(env_id, split="test", task_order="by_seed")
    opened.append(env)
    ids = ids_of(env)
    seeds = [0, 1, len(ids)]  # the last wraps around to task 0
    assert [env.reset(seed=seed)[1]["task_id"] for seed in seeds] == [ids[0], ids[1 % len(ids)], ids[0]]
    assert env.task_id(env.current_task) == ids[0]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_options_pick_a_task_and_bad_ones_are_explained(env_id: str, opened: list[TaskListEnv[Any, Any]]) -> None:
    env = build(env_id)
    opened.append(env)
    wanted = ids_of(env)[-1]
    _, info = env.reset(seed=0, options={"task_id": wanted})
    assert info["task_id"] == wanted and env.task_id(env.current_task) == wanted
    assert env.reset(seed=0, options={"task_index": 0})[1]["task_id"] == ids_of(env)[0]
    with pytest.raises(ValueError, match="no task with id 'no-such-task' in split 'train'"):
        env.reset(seed=0, options={"task_id": "no-such-task"})
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['task'\]: pick a task with task_id"):
        env.reset(seed=0, options={"task": wanted})


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_tasks_is_one_keyword_only_option(env_id: str) -> None:
    family, source = FAMILIES[env_id], build(env_id, split="all")
    cls = type(source)
    beside = {name: getattr(source, attribute) for name, attribute in family.with_list.items()}
    chosen = source.tasks[:2]
    assert cls(tasks=chosen, split="all", **family.kwargs, **beside).tasks == chosen
    default = (cls.__init__.__kwdefaults__ or {})["tasks"]
    assert isinstance(default, str)
    assert ids_of(cls(tasks=default, split="all", **family.kwargs)) == ids_of(source)
    with pytest.raises(TypeError, match="positional"):
        cls(default)  # type: ignore[call-arg]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_tool_called_before_reset_raises_reset_needed(env_id: str) -> None:
    env, family = build(env_id), FAMILIES[env_id]
    with pytest.raises(gym.error.ResetNeeded, match="call reset"):
        getattr(env, family.tool)(**family.arguments)
    with pytest.raises(gym.error.ResetNeeded):
        _ = env.episode
    with pytest.raises(gym.error.ResetNeeded):
        env.step(f"<tool_call>{json.dumps({'name': family.tool, 'arguments': family.arguments})}</tool_call>")


def test_an_empty_split_is_a_clear_error() -> None:
    source = build("KernelGen-v0", split="train")
    with pytest.raises(ValueError, match=r"split 'test' is empty: of the 1 tasks, 1 are train and 0 test\. Pass"):
        type(source)(tasks=source.tasks[:1], split="test", backend="cpu")
    with pytest.raises(ValueError, match="split must be 'train', 'test' or 'all'"):
        build("KernelGen-v0", split="dev")
    with pytest.raises(ValueError, match="task_order must be 'random'"):
        build("KernelGen-v0", task_order="sorted")


def test_only_task_list_envs_say_so() -> None:
    assert all(is_task_list_env(env_id) for env_id in ENV_IDS)
    assert not is_task_list_env("KeyChain-v0") and not is_task_list_env("LongChain-v0")


def test_training_evaluates_on_test_split_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``horizongym train SWE-v0 --eval-tasks 2`` in API form: its eval episodes play test-split instances only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from horizongym.agents.tiny import build_tiny_model
    from horizongym.training.rollouts.trajectory import Episode
    from horizongym.training.trainer import TrainConfig, Trainer

    folder = build_tiny_model(tmp_path / "tiny", seed=0, hidden_size=32, num_heads=2)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    config = TrainConfig(
        env_id="SWE-v0",
        eval_tasks=2,
        steps=1,
        max_turns=1,
        max_new_tokens=4,
        out_dir=str(tmp_path / "run"),
    )
    played: list[Episode] = []
    run = Trainer._run

    def recording(*args: Any) -> list[Episode]:
        episodes = run(*args)
        played.extend(episodes)
        return episodes

    monkeypatch.setattr(Trainer, "_run", staticmethod(recording))
    trainer = Trainer(config, model, tokenizer, progress=False)
    try:
        metrics = trainer.evaluate(trainer.eval_seeds())
    finally:
        trainer.close()
    assert metrics["episodes"] == 2 and len(played) == 2
    held_out = set(ids_of(build("SWE-v0", split="test")))
    assert {episode.task_id for episode in played} <= held_out
