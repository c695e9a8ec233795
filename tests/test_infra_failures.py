"""Infrastructure failures are typed, retried on a fresh env, and never trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

import horizongym as hg
from horizongym import Task, TextEnv
from horizongym.agents.base import Action, Message, Policy, PolicyError, PolicyUnavailable
from horizongym.failures import InfrastructureError, infrastructure_cause
from horizongym.training.failed_groups import settle_infra_failures
from horizongym.training.rollouts import EpisodeStore, RolloutEngine, read_episodes
from horizongym.training.rollouts.trajectory import Episode, Step


class FlakyEnv(TextEnv):
    """Two turns of text; the second step of the first ``failures[seed]`` tries of a task raises.

    ``failures`` maps a task seed to how many of its tries fail (shared by every instance, as a
    flaky machine would be); ``retryable`` is the flag the failure carries.
    """

    blocking = False
    max_turns = 2
    failures: ClassVar[dict[int, int]] = {}
    retryable: ClassVar[bool] = True
    builds: ClassVar[int] = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        type(self).builds += 1
        self.seed = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        self.seed = -1 if seed is None else seed
        return super().reset(seed=seed, options=options)

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id=f"flaky-{self.seed}", prompt="Say two things.")

    def on_text(self, text: str) -> str:
        if self.state.turn == 2:
            left = self.failures.get(self.seed, 0)
            if left:
                self.failures[self.seed] = left - 1
                raise InfrastructureError("the machine under the env went away", retryable=self.retryable)
            self.add_reward("length", len(text) % 3)
            self.end_episode(success=True)
        return "Go on."


hg.register("Flaky-v0", FlakyEnv)


class Talker(Policy):
    """Says ``words[i]`` on turn ``i`` of every sample (a different length per sample)."""

    name = "talker"

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        return Action(text="x" * (1 + (seed or 0) % 5))


@pytest.fixture(autouse=True)
def no_failures() -> Any:
    FlakyEnv.failures, FlakyEnv.retryable, FlakyEnv.builds = {}, True, 0
    yield
    FlakyEnv.failures, FlakyEnv.retryable = {}, True


def run(tmp_path: Path, num_tasks: int, *, policy: Policy | None = None, **engine: Any) -> list[Episode]:
    with (
        EpisodeStore(tmp_path / "run.jsonl") as store,
        RolloutEngine("Flaky-v0", policy or Talker(), store=store, progress=False, concurrency=2, **engine) as eng,
    ):
        eng.run_sync(num_tasks)
    return read_episodes(tmp_path / "run.jsonl")


def test_a_retryable_failure_is_played_again_on_a_fresh_env_and_stored_once(tmp_path: Path) -> None:
    FlakyEnv.failures = {1: 1}
    stored = run(tmp_path, 3)
    assert sorted(e.key for e in stored) == [(0, 0), (1, 0), (2, 0)]
    retried = next(e for e in stored if e.seed == 1)
    assert retried.outcome == "completed" and retried.success is True
    (attempt,) = retried.attempts
    assert attempt.termination_reason == "infra_error" and attempt.turns == 1
    assert attempt.error is not None and "InfrastructureError: the machine under the env went away" in attempt.error
    assert all(not e.attempts and e.outcome == "completed" for e in stored if e.seed != 1)
    assert FlakyEnv.builds == 3  # two workers' envs, and a fresh one for the retry


def test_exhausted_retries_leave_one_retryable_infra_error(tmp_path: Path) -> None:
    FlakyEnv.failures = {0: 5}
    (episode,) = run(tmp_path, 1, max_attempts=3)
    assert episode.outcome == "infra_error" and episode.retryable and not episode.trainable
    assert episode.termination_reason == "infra_error" and episode.success is None
    assert len(episode.attempts) == 2
    assert FlakyEnv.failures == {0: 2}


def test_a_failure_that_says_it_is_not_retryable_is_not_retried(tmp_path: Path) -> None:
    FlakyEnv.failures, FlakyEnv.retryable = {0: 5}, False
    (episode,) = run(tmp_path, 1)
    assert episode.outcome == "infra_error" and not episode.retryable and not episode.attempts
    assert FlakyEnv.failures == {0: 4}


class LosesItsServer(Talker):
    """Raises PolicyUnavailable on the first ``losses`` calls, then talks."""

    def __init__(self, losses: int) -> None:
        self.losses = losses

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        if self.losses:
            self.losses -= 1
            raise PolicyUnavailable("cannot reach http://127.0.0.1:9/v1/chat/completions: ConnectError")
        return await super().act(messages, tools, seed=seed)


class CannotParse(Talker):
    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        raise PolicyError("the model's reply holds no text")


def test_a_lost_policy_server_is_an_infrastructure_failure_and_a_bad_reply_is_the_policys(tmp_path: Path) -> None:
    (lost,) = run(tmp_path / "lost", 1, policy=LosesItsServer(1))
    assert lost.outcome == "completed" and lost.attempts[0].termination_reason == "infra_error"
    (bad,) = run(tmp_path / "bad", 1, policy=CannotParse())
    assert bad.outcome == "policy_error" and not bad.retryable and not bad.attempts


def test_infrastructure_cause_follows_the_chain_of_causes() -> None:
    try:
        try:
            raise InfrastructureError("engine gone", retryable=False)
        except InfrastructureError as inner:
            raise RuntimeError("step failed") from inner
    except RuntimeError as outer:
        cause = infrastructure_cause(outer)
    assert cause is not None and not cause.retryable
    assert infrastructure_cause(ValueError("no")) is None


def test_old_records_without_an_outcome_get_it_from_their_reason() -> None:
    line = '{"env_id": "X", "seed": 0, "termination_reason": "sandbox_died"}'
    assert Episode.model_validate_json(line).outcome == "infra_error"
    assert Episode.model_validate_json(line.replace("sandbox_died", "max_turns")).outcome == "truncated"


# ----- the trainer's side ---------------------------------------------------------------------
def episode(seed: int, sample: int, reward: float, outcome: str = "completed", turns: int = 2) -> Episode:
    steps = [Step(turn=t + 1, action="a", reward=reward if t == turns - 1 else 0.0) for t in range(turns)]
    reason = {"completed": "terminated", "infra_error": "infra_error", "env_error": "env_error"}[outcome]
    return Episode(
        env_id="Flaky-v0",
        seed=seed,
        sample=sample,
        steps=steps,
        total_reward=reward,
        success=reward > 0,
        termination_reason=reason,  # type: ignore[arg-type]
        outcome=outcome,  # type: ignore[arg-type]
    )


def test_settling_rerolls_a_failed_group_whole_then_drops_what_still_fails() -> None:
    first = [episode(0, 0, 1.0), episode(0, 1, 0.0), episode(1, 0, 1.0), episode(1, 1, 0.0, "infra_error")]
    calls: list[list[int]] = []

    def rerun(seeds: list[int]) -> list[Episode]:
        calls.append(seeds)
        return [episode(s, g, 0.5) for s in seeds for g in range(2)]

    settled = settle_infra_failures(first, rerun)
    assert calls == [[1]]
    kept = [(e.key, e.total_reward) for e in settled.kept]
    assert kept == [((0, 0), 1.0), ((0, 1), 0.0), ((1, 0), 0.5), ((1, 1), 0.5)]
    assert settled.counts() == {"infra_episodes": 1, "groups_rerolled": 1, "groups_dropped": 0}

    always = settle_infra_failures(first, lambda seeds: [episode(s, 0, 0.0, "infra_error") for s in seeds])
    assert [e.key for e in always.kept] == [(0, 0), (0, 1)]
    assert always.counts() == {"infra_episodes": 3, "groups_rerolled": 2, "groups_dropped": 1}

    dropped = settle_infra_failures(first, rerun, mode="drop")
    assert [e.key for e in dropped.kept] == [(0, 0), (0, 1)] and len(dropped.dropped) == 2
    assert dropped.counts() == {"infra_episodes": 1, "groups_rerolled": 0, "groups_dropped": 1}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from horizongym.agents.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("infra") / "tiny", seed=3, hidden_size=32, num_heads=2)


def trainer(model_dir: Path, out: Path, **overrides: Any) -> Any:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from horizongym.training.config import TrainConfig
    from horizongym.training.trainer import Trainer

    settings: dict[str, Any] = {
        "env_id": "Flaky-v0",
        "group_size": 2,
        "tasks_per_step": 2,
        "steps": 1,
        "max_new_tokens": 4,
        "out_dir": str(out),
        "eval_tasks": 0,
        **overrides,
    }
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return Trainer(TrainConfig(**settings), model, AutoTokenizer.from_pretrained(model_dir), progress=False)


@pytest.mark.parametrize("advantage", ["grpo", "eapo"])
def test_an_unearned_zero_reward_does_not_change_its_groups_advantages(
    model_dir: Path, tmp_path: Path, advantage: str
) -> None:
    learner = trainer(model_dir, tmp_path, advantage=advantage)
    healthy = [episode(0, 0, 1.0), episode(0, 1, 0.0), episode(0, 2, 0.5)]
    with_failures = [*healthy, episode(0, 3, 0.0, "infra_error"), episode(0, 4, 0.0, "env_error", turns=1)]
    alone = learner.advantages(healthy)
    mixed = learner.advantages(with_failures)
    assert mixed[:3] == alone and any(a != 0 for row in alone for a in row)
    assert mixed[3:] == [[0.0, 0.0], [0.0]]


def _run_step(model_dir: Path, out: Path, **overrides: Any) -> tuple[dict[str, Any], list[Episode]]:
    learner = trainer(model_dir, out, max_attempts=1, **overrides)
    records = learner.train()
    return records[-1], read_episodes(out / "episodes.jsonl")


def test_the_trainer_rerolls_a_group_whose_episode_lost_its_machine(model_dir: Path, tmp_path: Path) -> None:
    FlakyEnv.failures = {1: 1}
    record, stored = _run_step(model_dir, tmp_path)
    assert (record["infra_episodes"], record["groups_rerolled"], record["groups_dropped"]) == (1, 1, 0)
    assert sorted(e.key for e in stored) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(e.outcome == "completed" for e in stored)
    assert record["samples"] == 8  # two turns of four episodes


def test_a_group_that_keeps_failing_is_dropped_and_left_out_of_the_loss(model_dir: Path, tmp_path: Path) -> None:
    FlakyEnv.failures = {1: 100}
    record, stored = _run_step(model_dir, tmp_path)
    assert (record["groups_rerolled"], record["groups_dropped"]) == (2, 1)
    assert record["samples"] == 4  # the healthy group only
    assert sorted((e.key, e.outcome) for e in stored if e.seed == 1) == [
        ((1, 0), "infra_error"),
        ((1, 1), "infra_error"),
    ]
    assert sorted(e.key for e in stored) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    FlakyEnv.failures = {0: 1}
    record, _ = _run_step(model_dir, tmp_path / "drop", infra_failures="drop")
    assert (record["groups_rerolled"], record["groups_dropped"], record["samples"]) == (0, 1, 4)


def test_the_summary_counts_failures_by_outcome_and_averages_only_the_policys_episodes() -> None:
    from horizongym.training.rollouts.summary import format_table, summarize

    (summary,) = summarize([episode(0, 0, 1.0), episode(0, 1, 0.5), episode(1, 0, 0.0, "infra_error")])
    assert summary.mean_reward == 0.75 and summary.success_rate == 1.0 and summary.episodes == 3
    assert summary.outcomes == {"completed": 2, "infra_error": 1}
    assert "completed 2, infra_error 1" in format_table([summary])


class MachineGone(TextEnv):
    """A tool whose machine fails; ``retryable`` as given at construction."""

    blocking = False

    def __init__(self, *, retryable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retryable = retryable

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id="gone", prompt="Call run().")

    @hg.tool
    def run(self) -> str:
        """Run the thing."""
        raise InfrastructureError("the machine is gone", retryable=self.retryable)


hg.register("MachineGone-v0", MachineGone)


def test_an_infrastructure_failure_inside_a_tool_is_not_a_tool_error_charged_to_the_model() -> None:
    env = hg.make("MachineGone-v0")
    env.reset(seed=0)
    with pytest.raises(InfrastructureError, match="the machine is gone"):
        env.step('<tool_call>{"name": "run", "arguments": {}}</tool_call>')


class EndsOnDeadMachine(FlakyEnv):
    def on_text(self, text: str) -> str:
        self.truncate_episode("infra_error", "the evaluator died", retryable=self.retryable)
        return "The episode ends."


hg.register("EndsOnDeadMachine-v0", EndsOnDeadMachine)


@pytest.mark.parametrize("retryable", [True, False])
def test_an_env_that_ends_on_an_infrastructure_failure_says_whether_to_retry(
    retryable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(EndsOnDeadMachine, "retryable", retryable)
    with RolloutEngine("EndsOnDeadMachine-v0", Talker(), progress=False, max_attempts=3) as engine:
        (episode,) = engine.run_sync(1)
    assert episode.outcome == "infra_error" and episode.retryable is retryable
    assert len(episode.attempts) == (2 if retryable else 0)
    assert episode.termination_detail == "the evaluator died" and episode.num_turns == 1
