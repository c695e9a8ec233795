"""``horizongym replay``: stored runs re-run on fresh envs match, and a changed env is caught where it changed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import pytest

import horizongym
from horizongym.agents import Action, Message, Policy, RandomPolicy, expert_for
from horizongym.agents.experts.swe import SWEExpert
from horizongym.cli import main
from horizongym.envs import UnicodeText, full_id
from horizongym.envs.base import REPLAY_COMPARES
from horizongym.envs.keychain import KeyChainEnv
from horizongym.envs.swe.env import SWEEnv
from horizongym.envs.workspace import make_workspace
from horizongym.tools import ToolCall
from horizongym.training.rollouts import EnvRecipe, Episode, EpisodeStore, RolloutEngine, read_episodes
from horizongym.training.rollouts.replay import replay_episodes, shorten

SEARCH_LIKE_THE_DEMO = {
    "top_k": 1,
    "max_observation_chars": 160,
    "max_searches": 2,
    "instructions": False,
    "task_order": "by_seed",
}


def rollout(
    path: Path,
    env_id: str,
    policy: Policy,
    *,
    env_kwargs: dict[str, Any] | None = None,
    tasks: int = 4,
    group: int = 2,
    factory: Callable[[], gym.Env[Any, Any]] | None = None,
) -> list[Episode]:
    """Episodes of ``policy`` on ``env_id``, stored at ``path`` as ``horizongym rollout`` stores them."""
    with (
        EpisodeStore(path) as store,
        RolloutEngine(
            EnvRecipe(env_id, env_kwargs or {}),
            policy,
            concurrency=4,
            store=store,
            progress=False,
            env_factory=factory,
        ) as engine,
    ):
        engine.run_sync(tasks, group)
    return read_episodes(path)


def replay_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """``horizongym replay ARGS`` in this process: its exit status, its output lines, its error output."""
    try:
        code = main(["replay", *args, "--quiet"])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("env_id", "env_kwargs"),
    [
        ("KeyChain-v0", {}),
        ("LongChain-v0", {"min_length": 2, "max_length": 12}),
        ("SearchJudge-v0", SEARCH_LIKE_THE_DEMO),
        ("EmailInbox-v0", {}),
    ],
)
@pytest.mark.parametrize("policy", ["expert", "random"])
def test_every_episode_of_a_deterministic_env_replays_exactly(
    env_id: str, env_kwargs: dict[str, Any], policy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    played = rollout(
        tmp_path / "run.jsonl",
        env_id,
        expert_for(env_id) if policy == "expert" else RandomPolicy(),
        env_kwargs=env_kwargs,
    )
    assert len(played) == 8 and all(e.rng_state and e.rng_state["bit_generator"] == "PCG64" for e in played)
    assert any(step.tool_results for e in played for step in e.steps)
    code, lines, err = replay_cli(capsys, str(tmp_path / "run.jsonl"), "--out", str(tmp_path / "report.jsonl"))
    assert code == 0, [*lines, err]
    assert lines == [f"replay: all 8 replayed episodes match; report: {tmp_path / 'report.jsonl'}"]
    verdicts = report(tmp_path / "report.jsonl")
    assert [v["status"] for v in verdicts] == ["match"] * 8
    assert [v["steps"] for v in verdicts] == [e.num_turns for e in played]


@pytest.mark.parametrize("policy", ["expert", "random"])
def test_workspace_episodes_replay_through_the_same_factory(policy: str, tmp_path: Path) -> None:
    def factory() -> gym.Env[Any, Any]:
        return make_workspace("LongChain-v0", length=5, disable_env_checker=True)

    chosen = expert_for("LongChain-v0") if policy == "expert" else RandomPolicy()
    played = rollout(tmp_path / "run.jsonl", "LongChain-v0", chosen, factory=factory)
    assert all(step.info.get("fresh_context") for e in played for step in e.steps)
    verdicts = list(replay_episodes(played, env_factory=factory))
    assert [v.status for v in verdicts] == ["match"] * len(played), [str(v.difference) for v in verdicts]
    assert sum(v.steps for v in verdicts) == sum(e.num_turns for e in played)


def test_an_episode_the_engine_ended_is_compared_up_to_its_last_step() -> None:
    with RolloutEngine("KeyChain-v0", expert_for("KeyChain-v0"), max_turns=2, progress=False) as engine:
        played = engine.run_sync(3)
    assert {e.termination_reason for e in played} == {"max_turns"} and all(e.num_turns == 2 for e in played)
    verdicts = list(replay_episodes(played))
    assert [(v.status, v.steps) for v in verdicts] == [("match", 2)] * 3
    assert verdicts[0].note == "ended by max_turns, outside the env: the steps before were compared"


# ----- a changed env is caught where it changed ------------------------------------------------
class DriftingKeyChain(KeyChainEnv):
    """KeyChain-v0, but a test can change what it answers from a given turn on (its observation,
    its reward, or its random draws), or make its third step raise."""

    drift_turn: ClassVar[int | None] = None
    """From this turn on the observation has a note appended; 0 changes the first observation."""
    drift_reward: ClassVar[bool] = False
    drift_draws: ClassVar[bool] = False
    crash: ClassVar[str | None] = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        observation, info = super().reset(seed=seed, options=options)
        return observation + (" (changed)" if self.drift_turn == 0 else ""), info

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        if self.crash is not None and self.state.turn == 2:
            raise RuntimeError(self.crash)
        if self.drift_draws and self.state.turn == 1:
            self.np_random.random()  # an extra draw that shows nowhere else
        observation, reward, terminated, truncated, info = super().step(action)
        if self.drift_turn and self.state.turn >= self.drift_turn:
            observation += " (changed)"
        return observation, reward, terminated, truncated, info

    def event_rewards(self, event: Any) -> dict[str, float]:
        values = super().event_rewards(event)
        return {name: value + 0.5 for name, value in values.items()} if self.drift_reward else values


@pytest.fixture
def drifting_run(registered: None, tmp_path: Path) -> tuple[Path, list[Episode]]:
    path = tmp_path / "run.jsonl"
    return path, rollout(path, "DriftingKeyChain-v0", expert_for("KeyChain-v0"))


@pytest.mark.parametrize(
    ("change", "step", "field"),
    [
        ({"drift_turn": 0}, 0, "observation"),
        ({"drift_turn": 2}, 2, "observation"),
        ({"drift_turn": 3}, 3, "observation"),
        ({"drift_reward": True}, -1, "reward"),
        ({"drift_draws": True}, -1, "random draws (generator state at the end)"),
    ],
)
def test_a_changed_env_is_caught_at_the_first_differing_step(
    change: dict[str, Any],
    step: int,
    field: str,
    drifting_run: tuple[Path, list[Episode]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    path, played = drifting_run
    for name, value in change.items():
        monkeypatch.setattr(DriftingKeyChain, name, value)
    code, lines, _ = replay_cli(capsys, str(path), "--out", str(tmp_path / "report.jsonl"))
    assert code == 1
    assert lines[-1] == f"replay: 8 of 8 episodes differ, 0 match; report: {tmp_path / 'report.jsonl'}"
    for episode, verdict, line in zip(played, report(tmp_path / "report.jsonl"), lines, strict=False):
        where = episode.num_turns if step == -1 else step
        assert verdict["status"] == "differs" and verdict["difference"]["step"] == where
        assert verdict["difference"]["field"] == field
        assert line.startswith(f"differs: DriftingKeyChain-v0 seed {episode.seed} sample {episode.sample}: ")
        assert (f"step {where}, " if where else "reset, ") + field in line
    first = report(tmp_path / "report.jsonl")[0]["difference"]
    if field == "observation":
        assert "(changed)" in first["replayed"] and "(changed)" not in first["recorded"]
        assert len(first["recorded"]) <= 90 and len(first["replayed"]) <= 90
    if field == "reward":
        assert (first["recorded"], first["replayed"]) == ("1.0", "1.5")


def test_a_step_that_raised_is_run_again_and_must_raise_the_same(
    registered: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(DriftingKeyChain, "crash", "disk on fire")
    path = tmp_path / "run.jsonl"
    played = rollout(path, "DriftingKeyChain-v0", expert_for("KeyChain-v0"))
    assert {e.outcome for e in played} == {"env_error"} and all(e.unfinished_action for e in played)
    assert all(e.num_turns == 2 for e in played)
    code, lines, _ = replay_cli(capsys, str(path))
    assert code == 0 and lines == ["replay: all 8 replayed episodes match"]
    monkeypatch.setattr(DriftingKeyChain, "crash", "disk flooded")
    code, lines, _ = replay_cli(capsys, str(path))
    assert code == 1 and "step 3, error: recorded " in lines[0] and "disk flooded" in lines[0]
    monkeypatch.setattr(DriftingKeyChain, "crash", None)
    code, lines, _ = replay_cli(capsys, str(path))
    assert code == 1 and lines[0].endswith("vs replayed '(the step returned)'")


# ----- any gymnasium.Env[str, str] -------------------------------------------------------------
class EchoEnv(gym.Env[str, str]):
    """Not a TextEnv: echoes each action with a random digit, rewards its length mod 3, ends after 3 steps."""

    def __init__(self) -> None:
        self.observation_space = UnicodeText(1000)
        self.action_space = UnicodeText(1000)
        self.turn = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.turn = 0
        return f"say something ({int(self.np_random.integers(100))})", {}

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        self.turn += 1
        digit = int(self.np_random.integers(10))
        return f"echo {action[:20]} {digit}", float(len(action) % 3), self.turn >= 3, False, {}


@pytest.fixture
def registered() -> Iterator[None]:
    """The test envs of this module in the registry, for this test only (other modules list every env)."""
    added = []
    for env_id, entry_point in (("DriftingKeyChain-v0", DriftingKeyChain), ("EchoText-v0", EchoEnv)):
        if env_id not in horizongym.registry:
            horizongym.register(env_id, entry_point)
            added.append(env_id)
    yield
    for env_id in added:
        del gym.registry[full_id(env_id)]


def test_an_env_that_is_not_a_text_env_replays_and_refuses_a_rescore(
    registered: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    played = rollout(tmp_path / "run.jsonl", "EchoText-v0", RandomPolicy())
    assert all(e.num_turns == 3 and e.rng_state for e in played)
    code, lines, _ = replay_cli(capsys, str(tmp_path / "run.jsonl"))
    assert code == 0 and lines == ["replay: all 8 replayed episodes match"]
    code, _, err = replay_cli(capsys, str(tmp_path / "run.jsonl"), "--rescore", "--out", str(tmp_path / "new.jsonl"))
    assert code == 2 and "EchoText-v0's rewards are not all reward events" in err
    assert "KeyChain-v0" in err and not (tmp_path / "new.jsonl").exists()


# ----- SWE-v0: the diff and the test results, not the commands' raw output ----------------------
class ClockThenExpert(SWEExpert):
    """Reads the clock first (output that differs on every run), then plays the expert."""

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        own = [m for m in messages if m.get("role") == "assistant"]
        if not own:
            return Action(tool_calls=[ToolCall("bash", {"command": "date +%s%N"})])
        return super().decide([m for m in messages if m is not own[0]], tools, seed)


def test_an_swe_episode_on_docker_replays_by_its_diff_and_test_results(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "swe.jsonl"
    (played,) = rollout(path, "SWE-v0", ClockThenExpert(), env_kwargs={"backend": "docker"}, tasks=1, group=1)
    assert played.success is True and played.steps[-1].info["patch"] and played.steps[-1].info["evaluation"]
    code, lines, _ = replay_cli(capsys, str(path))
    assert code == 0 and lines == ["replay: all 1 replayed episodes match"]
    monkeypatch.setattr(SWEEnv, "replay_compares", REPLAY_COMPARES)  # raw output compared: the clock differs
    code, lines, _ = replay_cli(capsys, str(path))
    assert code == 1 and "step 1, observation" in lines[0]


# ----- the command line -----------------------------------------------------------------------
def test_replay_from_the_command_line(tmp_path: Path) -> None:
    run = tmp_path / "run.jsonl"

    def horizongym_cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "horizongym", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    made = horizongym_cli("rollout", "KeyChain-v0", "--policy", "random", "-n", "3", "--out", str(run), "--quiet")
    assert made.returncode == 0, made.stderr
    replayed = horizongym_cli("replay", str(run))
    assert replayed.returncode == 0 and replayed.stdout.splitlines() == ["replay: all 3 replayed episodes match"]
    assert "replay: 100%" in replayed.stderr  # the progress bar
    changed = horizongym_cli("replay", str(run), "--env-kwargs", '{"store_size": 13}', "--quiet")
    assert changed.returncode == 1 and changed.stdout.splitlines()[-1] == "replay: 3 of 3 episodes differ, 0 match"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("{tmp}/none.jsonl",), "no episode file at"),
        (("{run}", "--env-kwargs", "{nope"), "--env-kwargs is not valid JSON"),
        (("{run}", "--env-kwargs", "[1]"), "--env-kwargs must be a JSON object"),
        (("{run}", "--env-kwargs", '{"bogus": 1}'), "cannot build KeyChain-v0 with {'bogus': 1}"),
        (("{run}", "--reward-kwargs", "{}"), "--reward-kwargs goes with --rescore"),
        (("{run}", "--out", "{run}"), "is the run being read"),
        (("{run}", "--out", "{tmp}"), "is a folder"),
        (("{empty}",), "holds no episodes"),
    ],
)
def test_replay_mistakes_get_one_clear_line_and_status_2(
    args: tuple[str, ...], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run.jsonl"
    rollout(run, "KeyChain-v0", RandomPolicy(), tasks=1, group=1)
    (tmp_path / "empty.jsonl").write_text("")
    values = {"{tmp}": str(tmp_path), "{run}": str(run), "{empty}": str(tmp_path / "empty.jsonl")}
    filled = []
    for arg in args:
        for key, value in values.items():
            arg = arg.replace(key, value)
        filled.append(arg)
    code, lines, err = replay_cli(capsys, *filled)
    assert code == 2 and lines == []
    assert err.startswith("horizongym: error: ") and fragment in err and len(err.splitlines()) == 1


def test_shorten_shows_where_two_long_texts_differ() -> None:
    recorded, replayed = shorten("x" * 500 + "abc" + "y" * 500, "x" * 500 + "abd" + "y" * 500)
    assert recorded.startswith("…") and recorded.endswith("…") and "abc" in recorded and "abd" in replayed
    assert len(recorded) <= 82
    assert shorten("short", "shorter") == ("short", "shorter")
