"""Tree rollouts: a trunk forked into branches at chosen turns, stored and resumed as a tree, trained once per turn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import pytest

import horizongym as hg
from horizongym.agents.base import Action, Message
from horizongym.agents.scripted import RandomPolicy, ScriptedPolicy, expert_for
from horizongym.cli import main
from horizongym.failures import InfrastructureError
from horizongym.training.rollouts import EpisodeStore, RolloutEngine, RolloutError, policy_seed, read_episodes
from horizongym.training.rollouts.store import EpisodeFileWarning
from horizongym.training.rollouts.trajectory import Episode
from horizongym.training.rollouts.tree import ForkPoints, parse_branch_at


class NoisyExpert(ScriptedPolicy):
    """KeyChain's expert most of the time, a random action otherwise (drawn from the turn's seed);
    records every seed it is asked to act with."""

    name = "noisy-expert"

    def __init__(self, noise: float = 0.3) -> None:
        self.noise = noise
        self.expert = expert_for("KeyChain-v0")
        self.random = RandomPolicy()
        self.seeds: list[int | None] = []

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        self.seeds.append(seed)
        if random.Random(seed).random() < self.noise:
            return self.random.decide(messages, tools, seed)
        return self.expert.decide(messages, tools, seed)


def play(
    tree: int, branch_at: Any, *, tasks: int = 4, group: int = 2, sampling_seed: int = 0
) -> tuple[list[Episode], RolloutEngine]:
    with RolloutEngine(
        "KeyChain-v0",
        NoisyExpert(),
        tree=tree,
        branch_at=branch_at,
        progress=False,
        concurrency=3,
        sampling_seed=sampling_seed,
    ) as engine:
        return engine.run_sync(tasks, group, seed=11), engine


def trees(episodes: list[Episode]) -> dict[tuple[int, int], list[Episode]]:
    """Each job's episodes, trunk first, then its branches in branch order."""
    out: dict[tuple[int, int], list[Episode]] = {}
    for episode in sorted(episodes, key=lambda e: (e.seed, e.sample, e.branch)):
        out.setdefault(episode.key, []).append(episode)
    return out


def comparable(episode: Episode) -> dict[str, Any]:
    """An episode's record less what depends on timing."""
    data = episode.model_dump(exclude={"started_at", "seconds"})
    for step in data["steps"]:
        step.pop("policy_seconds")
        step.pop("env_seconds")
    return data


# ----- the records of a tree -----------------------------------------------------------------
def test_branches_record_parent_fork_turn_and_the_trunks_prefix() -> None:
    episodes, engine = play(3, "all")
    forked = 0
    for members in trees(episodes).values():
        trunk, branches = members[0], members[1:]
        assert (trunk.branch, trunk.parent_branch, trunk.fork_turn) == (0, None, 0)
        assert [b.branch for b in branches] == list(range(1, len(branches) + 1))
        # all: K-1 = 2 branches after each turn t in 1..T-1, in the order forked
        assert [b.fork_turn for b in branches] == [t for t in range(1, trunk.num_turns) for _ in range(2)]
        for branch in branches:
            forked += 1
            t = branch.fork_turn
            assert branch.parent_branch == 0
            assert branch.num_turns > t
            assert [comparable_step(s) for s in branch.steps[:t]] == [comparable_step(s) for s in trunk.steps[:t]]
            opening = 1 + 2 * t  # the first observation, then an action and an answer per turn
            assert branch.messages[:opening] == trunk.messages[:opening]
            assert branch.total_reward == pytest.approx(sum(s.reward for s in branch.steps))
            assert branch.task_id == trunk.task_id
    assert forked > 0
    stats = engine.tree_stats
    assert stats.trunks == 8 and stats.branches == forked
    own = sum(e.num_turns - e.fork_turn for e in episodes)
    assert stats.env_steps == own
    assert "8 trunks" in stats.line() and f"{forked} branches" in stats.line()


def comparable_step(step: Any) -> dict[str, Any]:
    return step.model_dump(exclude={"policy_seconds", "env_seconds"})


def test_branches_sample_with_their_own_seeds_and_branch_zero_keeps_the_old_ones() -> None:
    # branch 0 draws the seeds of a run without trees (the formula before trees existed)
    for seed, sample, turn, run in [(0, 0, 0, 0), (11, 3, 7, 5), (10**6, 15, 200, 123)]:
        old = (((run * 1_000_003 + seed) * 100_003 + sample) * 1_009 + turn) % 2_147_483_647
        assert policy_seed(seed, sample, turn, run) == old == policy_seed(seed, sample, turn, run, branch=0)
    seeds = {policy_seed(11, 1, 3, 0, branch) for branch in range(20)}
    assert len(seeds) == 20
    # the policy is asked with exactly the seeds of each episode's own turns, distinct per branch
    policy = NoisyExpert()
    with RolloutEngine("KeyChain-v0", policy, tree=3, branch_at=1, progress=False, concurrency=1) as engine:
        episodes = engine.run_sync(3, 1, seed=4)
    expected = [
        policy_seed(e.seed, e.sample, turn, 0, e.branch) for e in episodes for turn in range(e.fork_turn, e.num_turns)
    ]
    assert Counter(policy.seeds) == Counter(expected)
    assert len(set(policy.seeds)) == len(policy.seeds)
    # and the branches' own actions differ from the trunk's somewhere
    by_tree = trees(episodes)
    assert any(
        [s.action for s in b.steps[1:]] != [s.action for s in m[0].steps[1:]] for m in by_tree.values() for b in m[1:]
    )


def test_branch_at_n_forks_after_turn_n_and_counts_short_trunks() -> None:
    episodes, engine = play(2, 3, tasks=6)
    short = 0
    for members in trees(episodes).values():
        trunk = members[0]
        if trunk.num_turns >= 4:
            assert [(b.branch, b.fork_turn) for b in members[1:]] == [(1, 3)]
        else:
            assert len(members) == 1
            short += 1
    assert engine.tree_stats.unforked == short
    if short:
        assert f"{short} trunks not forked (fewer than 4 turns)" in engine.tree_stats.line()


def test_branch_at_random_forks_once_per_trunk_reproducibly() -> None:
    first, _ = play(3, "random", tasks=6)
    again, _ = play(3, "random", tasks=6)
    other, _ = play(3, "random", tasks=6, sampling_seed=9)
    turns = []
    for members in trees(first).values():
        trunk, branches = members[0], members[1:]
        if trunk.num_turns >= 2:
            assert len(branches) == 2 and branches[0].fork_turn == branches[1].fork_turn
            assert 1 <= branches[0].fork_turn <= trunk.num_turns - 1
            turns.append(branches[0].fork_turn)
    assert len(set(turns)) > 1, "every trunk forked at the same turn"
    assert [comparable(e) for e in sorted(first, key=_order)] == [comparable(e) for e in sorted(again, key=_order)]
    assert [comparable(e) for e in sorted(first, key=_order)] != [comparable(e) for e in sorted(other, key=_order)]


def _order(e: Episode) -> tuple[int, int, int]:
    return (e.seed, e.sample, e.branch)


def test_random_fork_point_is_uniform_with_one_snapshot_alive() -> None:
    """Reservoir sampling over turns 1..T-1 (T = 5): each kept with probability 1/4."""
    counts: Counter[int] = Counter()
    for seed in range(4000):
        points = ForkPoints("random", seed)
        for turn in range(1, 5):
            if points.wants(turn):
                replaced = points.keep(_point(turn))
                assert len(points.kept) == 1 and len(replaced) == (0 if turn == 1 else len(replaced))
        usable, unusable = points.usable(5)
        assert len(usable) == 1 and not unusable
        counts[usable[0].turn] += 1
    assert set(counts) == {1, 2, 3, 4}
    assert all(abs(n / 4000 - 0.25) < 0.03 for n in counts.values()), counts


def _point(turn: int) -> Any:
    from horizongym.training.rollouts.tree import ForkPoint

    return ForkPoint(turn, None, None, [], [], 0.0, None, [])  # type: ignore[arg-type]


def test_parse_branch_at() -> None:
    assert parse_branch_at("all") == "all" and parse_branch_at("3") == 3 and parse_branch_at(2) == 2
    for bad in ("0", 0, -1, "first", True, 1.5):
        with pytest.raises(ValueError, match="branch_at must be"):
            parse_branch_at(bad)
    with pytest.raises(ValueError, match="tree must be"):
        RolloutEngine("KeyChain-v0", NoisyExpert(), tree=0)


# ----- refusals ------------------------------------------------------------------------------
class PlainEnv(gym.Env[str, str]):
    """A Gymnasium env that keeps its state to itself (no snapshot)."""

    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Text(100)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        return "go", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return "done", 0.0, True, False, {}


hg.register("PlainUnforkable-v0", PlainEnv)


def test_an_env_that_cannot_fork_is_refused_before_any_episode(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    refused = pytest.raises(RolloutError, match=r"PlainUnforkable-v0 cannot be forked .*PlainEnv cannot snapshot")
    with (
        EpisodeStore(out) as store,
        RolloutEngine("PlainUnforkable-v0", NoisyExpert(), tree=2, store=store) as e,
        refused,
    ):
        e.run_sync(2, 1)
    assert not out.exists() or out.stat().st_size == 0


def test_cli_tree_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.jsonl"
    args = ["rollout", "KeyChain-v0", "--policy", "random", "-n", "3", "--quiet", "--out", str(out)]
    assert main([*args, "--tree", "3", "--branch-at", "1"]) == 0
    printed = capsys.readouterr().out
    stored = read_episodes(out)
    branches = [e for e in stored if e.branch]
    assert branches and all(e.fork_turn == 1 for e in branches)
    assert f"trees: 3 trunks, {len(branches)} branches" in printed
    steps = sum(e.num_turns - e.fork_turn for e in stored)
    assert main(["show", str(out)]) == 0
    assert f"trees: 3 trunks, {len(branches)} branches, {steps} env steps" in capsys.readouterr().out
    for extra, message in [
        (["--tree", "0"], "--tree: must be K >= 2"),
        (["--tree", "2", "--branch-at", "0"], "--branch-at: must be all, random or a turn N >= 1"),
        (["--branch-at", "all"], "--branch-at goes with --tree K"),
        (["--tree", "2", "--backend", "ray"], "--tree runs with --backend asyncio"),
    ]:
        assert main([*args[:-1], str(tmp_path / "other.jsonl"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    refused = ["rollout", "PlainUnforkable-v0", "--policy", "random", "--tree", "2", "--quiet", "--out"]
    assert main([*refused, str(tmp_path / "plain.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "PlainUnforkable-v0 cannot be forked" in err and len(err.strip().splitlines()) == 1


# ----- the store holds whole trees -------------------------------------------------------------
KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import horizongym
    from horizongym.agents import expert_for
    from horizongym.envs.keychain import KeyChainEnv
    from horizongym.training.rollouts import EpisodeStore, RolloutEngine

    class SlowKeyChain(KeyChainEnv):
        blocking = True

        def step(self, action):
            time.sleep(0.02)
            return super().step(action)

    horizongym.register("SlowKeyChain-v0", SlowKeyChain)
    with EpisodeStore(sys.argv[1]) as store:
        engine = RolloutEngine(
            "SlowKeyChain-v0", expert_for("KeyChain-v0"), concurrency=3, store=store, progress=False, tree=2,
            branch_at="all",
        )
        engine.run_sync(8, 2, seed=3, resume=True)
    print("finished")
    """
)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


def test_kill_mid_run_then_resume_stores_every_tree_once(tmp_path: Path) -> None:
    script, reference, out = tmp_path / "run.py", tmp_path / "reference.jsonl", tmp_path / "episodes.jsonl"
    script.write_text(KILL_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(reference)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = _rows(reference)
    assert any(row["branch"] for row in expected)

    process = subprocess.Popen([sys.executable, str(script), str(out)], start_new_session=True)
    deadline = time.monotonic() + 60
    while sum(1 for row in (_rows(out) if out.exists() else []) if row["branch"] == 0) < 3:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no trees were written"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    stored = {(r["seed"], r["sample"]) for r in _rows(out) if r["branch"] == 0}
    assert len(stored) < 16, "kill came too late to test resuming"
    # a kill in the middle of a tree's write: some of its branches, and no trunk after them
    unfinished = next(
        (r["seed"], r["sample"]) for r in expected if r["branch"] and (r["seed"], r["sample"]) not in stored
    )
    cut_short = [r for r in expected if (r["seed"], r["sample"]) == unfinished and r["branch"]]
    with open(out, "a") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in cut_short)

    resumed = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"cut off the last {len(cut_short)} branch episodes" in resumed.stderr

    with warnings.catch_warnings():
        warnings.simplefilter("error", EpisodeFileWarning)  # no duplicate, no bad line
        episodes = read_episodes(out)
    identity = Counter((e.seed, e.sample, e.branch) for e in episodes)
    assert identity == Counter((r["seed"], r["sample"], r["branch"]) for r in expected)
    assert max(identity.values()) == 1
    # and every tree is on file branches first, trunk last
    rows = _rows(out)
    for index, row in enumerate(rows):
        if row["branch"]:
            later = rows[index + 1 :]
            assert any(r["branch"] == 0 and (r["seed"], r["sample"]) == (row["seed"], row["sample"]) for r in later)


def _episode(seed: int, branch: int = 0) -> Episode:
    return Episode(env_id="KeyChain-v0", seed=seed, branch=branch, parent_branch=0 if branch else None)


def test_append_many_then_a_tree_cut_short_is_cut_on_open(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with EpisodeStore(path) as store:
        store.append_many([_episode(1, 1), _episode(1, 2), _episode(1)])
        store.append_many([_episode(2, 1), _episode(2)])
    assert EpisodeStore(path).finished_keys() == {(1, 0), (2, 0)}
    with open(path, "a") as handle:  # a later branch of a stored trunk, then a tree cut short
        handle.write(_episode(1, 3).model_dump_json() + "\n")
        handle.write(_episode(3, 1).model_dump_json() + "\n")
        handle.write(_episode(3, 2).model_dump_json() + "\n")
    assert EpisodeStore(path).finished_keys() == {(1, 0), (2, 0)}  # branches are no finished job
    with pytest.warns(EpisodeFileWarning, match="cut off the last 2 branch episodes"), EpisodeStore(path) as store:
        store.append_many([_episode(3, 1), _episode(3)])
    kept = [(e.seed, e.branch) for e in read_episodes(path)]
    assert kept == [(1, 1), (1, 2), (1, 0), (2, 1), (2, 0), (1, 3), (3, 1), (3, 0)]
    with warnings.catch_warnings():  # a file that ends with a trunk is left alone
        warnings.simplefilter("error", EpisodeFileWarning)
        with EpisodeStore(path) as store:
            store.append(_episode(4))


def test_a_later_branch_of_another_policy_is_kept_on_open(tmp_path: Path) -> None:
    """``play --from`` appends a person's branch (policy ``human``) to a trunk of another policy: it
    belongs to that trunk's tree, and the next open of the file must not cut it as a tree cut short."""
    path = tmp_path / "run.jsonl"
    with EpisodeStore(path) as store:
        store.append_many([_episode(1, 1), _episode(1)])
    human = _episode(1, 2).model_copy(update={"policy": "human", "fork_turn": 0})
    with EpisodeStore(path) as store:
        store.append(human)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EpisodeFileWarning)
        with EpisodeStore(path) as store:
            store.append(_episode(2))
    kept = [(e.seed, e.branch, e.policy) for e in read_episodes(path)]
    assert kept == [(1, 1, ""), (1, 0, ""), (1, 2, "human"), (2, 0, "")]


# ----- the trainer -----------------------------------------------------------------------------
class TreeToyEnv(hg.TextEnv):
    """Three turns of free text, rewarded by its variety (so the branches' returns differ)."""

    blocking = False
    max_turns = 3

    def new_task(self, options: dict[str, Any]) -> hg.Task:
        return hg.Task(id=f"toy-{int(self.np_random.integers(100))}", prompt="Say hi.")

    def on_text(self, text: str) -> str:
        self.add_reward("variety", (len(set(text)) % 4) / 3)
        if self.state.turn >= 3:
            self.end_episode(success=len(set(text)) % 2 == 0)
        return "Again."


hg.register("TreeToy-v0", TreeToyEnv)


class RestoreFailsEnv(TreeToyEnv):
    """TreeToy whose restore raises: every branch fails before its first own turn."""

    def restore(self, snapshot: Any) -> None:
        raise RuntimeError("the snapshot store is gone")


hg.register("TreeToyRestoreFails-v0", RestoreFailsEnv)


class Chatter(ScriptedPolicy):
    name = "chatter"

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        return Action(text=f"hi {seed}")


def test_a_branch_whose_restore_raises_is_a_whole_record_that_says_restore() -> None:
    with RolloutEngine(
        "TreeToyRestoreFails-v0", Chatter(), tree=2, branch_at=1, progress=False, max_attempts=1
    ) as engine:
        episodes = engine.run_sync(1, 1, seed=3)
    trunk, branch = sorted(episodes, key=lambda e: e.branch)
    assert (trunk.outcome, trunk.num_turns, branch.branch, branch.fork_turn) == ("completed", 3, 1, 1)
    assert branch.outcome == "env_error" and branch.error is not None
    assert branch.error.startswith("restore: RuntimeError: the snapshot store is gone"), branch.error
    # still a complete record: the shared prefix (turn 1, the task) as every branch holds it
    assert branch.task_id == trunk.task_id and branch.steps == trunk.steps[:1]
    assert branch.messages == trunk.messages[:3] and branch.total_reward == trunk.steps[0].reward
    assert engine.tree_stats.env_steps == 3  # the trunk's; the branch played no turn of its own


class CountedSnapshotsEnv(TreeToyEnv):
    """TreeToy that notes the turn of every snapshot taken and released (a stand-in for a committed image)."""

    taken: ClassVar[list[int]] = []
    released: ClassVar[list[int]] = []

    def snapshot(self) -> Any:
        taken = super().snapshot()
        self.taken.append(taken.turn)
        return taken

    def release_snapshot(self, snapshot: Any) -> None:
        self.released.append(snapshot.turn)


hg.register("TreeToyCounted-v0", CountedSnapshotsEnv)


class StuckAtTurn3(ScriptedPolicy):
    """Chats, then never answers at the trunk's third turn (an LLM call that hangs)."""

    name = "stuck"

    def __init__(self) -> None:
        self.stuck = asyncio.Event()

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        if sum(m["role"] == "assistant" for m in messages) == 2:
            self.stuck.set()
            await asyncio.Event().wait()
        return Action(text=f"hi {seed}")


def test_a_cancelled_tree_releases_the_snapshots_it_holds() -> None:
    CountedSnapshotsEnv.taken.clear()
    CountedSnapshotsEnv.released.clear()
    policy = StuckAtTurn3()
    engine = RolloutEngine("TreeToyCounted-v0", policy, tree=2, branch_at="all", progress=False)

    async def cancel_mid_trunk() -> None:
        run = asyncio.create_task(engine.run(1, 1))
        await policy.stuck.wait()  # the trunk holds its snapshots after turns 1 and 2
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run

    asyncio.run(cancel_mid_trunk())
    engine.close()
    engine._closer.shutdown(wait=True)  # what the engine handed to its closing thread is done
    assert CountedSnapshotsEnv.taken == [1, 2]
    assert sorted(CountedSnapshotsEnv.released) == [1, 2]


def test_train_config_tree_options() -> None:
    from horizongym.training.config import TrainConfig

    config = TrainConfig(env_id="TreeToy-v0", tree=3, branch_at=2)  # type: ignore[arg-type]
    assert config.branch_at == "2"
    assert TrainConfig.model_validate(config.model_dump(mode="json")) == config  # as a checkpoint saves it
    bad_settings: list[tuple[dict[str, Any], str]] = [
        ({"tree": 0}, "greater than or equal to 1"),
        ({"tree": 2, "branch_at": "0"}, "branch_at must be"),
        ({"branch_at": "all"}, "is used only with tree >= 2"),
        ({"tree": 2, "backend": "ray"}, "run with backend asyncio"),
    ]
    for bad, message in bad_settings:
        with pytest.raises(ValueError, match=message):
            TrainConfig(env_id="TreeToy-v0", **bad)


@pytest.mark.parametrize("advantage", ["grpo", "tree"])
def test_trainer_groups_name_parents_and_shared_turns_are_trained_once(
    advantage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from horizongym.agents.tiny import build_tiny_model
    from horizongym.training import trainer as trainer_module
    from horizongym.training.config import TrainConfig
    from horizongym.training.trainer import Trainer

    groups: list[list[Any]] = []
    real = trainer_module.estimate

    def spy(name: str, group: Any, **options: Any) -> Any:
        groups.append(list(group))
        return real(name, group, **options)

    monkeypatch.setattr(trainer_module, "estimate", spy)
    updated: list[list[Any]] = []
    real_update = trainer_module.Trainer.update

    def spy_update(self: Any, samples: Any) -> Any:
        updated.append(list(samples))
        return real_update(self, samples)

    monkeypatch.setattr(trainer_module.Trainer, "update", spy_update)
    path = build_tiny_model(tmp_path / "tiny", seed=3, hidden_size=32, num_heads=2)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = TrainConfig(
        env_id="TreeToy-v0",
        group_size=2,
        tasks_per_step=1,
        steps=1,
        max_new_tokens=6,
        advantage=advantage,
        tree=3,
        branch_at="1",
        out_dir=str(tmp_path / "run"),
    )
    records = Trainer(config, model, tokenizer, progress=False).train()
    # 2 trunks of 3 turns, each forked after turn 1 into 2 branches with 2 turns of their own
    assert records[0]["branches"] == 4 and records[0]["shared_steps"] == 4
    assert records[0]["samples"] == 2 * 3 + 4 * 2
    (group,) = groups
    assert len(group) == 6
    parents = [credit.parent for credit in group]
    assert parents.count(None) == 2
    for credit in group:
        if credit.parent is not None:
            assert credit.fork_turn == 1 and group[credit.parent].parent is None
    (samples,) = updated
    owned = Counter((s.episode, s.branch, s.turn) for s in samples)
    assert max(owned.values()) == 1
    assert all(s.turn >= 1 for s in samples if s.branch)  # a branch's turn 0 (turn 1) is its trunk's
    stored = read_episodes(tmp_path / "run" / "episodes.jsonl")
    assert [e.branch for e in stored] == [1, 2, 0, 1, 2, 0]
    if advantage == "tree":  # a branch's own turns are credited against its siblings at the fork
        advantages = trainer_module.estimate("tree", group)
        owned_values = [a for credit, row in zip(group, advantages, strict=True) for a in row[credit.fork_turn :]]
        assert sorted(s.advantage for s in samples) == pytest.approx(sorted(owned_values))


class FlakyOnceEnv(CountedSnapshotsEnv):
    """TreeToy (counting its snapshots) whose infrastructure fails once in the trunk's turn 2 and once in
    the first branch's first own turn: each is a retryable failure that a fresh env gets past."""

    failures: ClassVar[set[str]] = set()
    restored: bool = False

    def restore(self, snapshot: Any) -> None:
        super().restore(snapshot)
        self.restored = True

    def step(self, action: str) -> Any:
        where = "branch" if self.restored else f"trunk turn {self.state.turn + 1}"
        if where in ("branch", "trunk turn 2") and where not in self.failures:
            self.failures.add(where)
            raise InfrastructureError(f"the {where} lost its machine")
        return super().step(action)


hg.register("TreeToyFlaky-v0", FlakyOnceEnv)


def test_infrastructure_failures_retry_the_trunk_whole_and_a_branch_from_its_snapshot() -> None:
    FlakyOnceEnv.failures.clear()
    CountedSnapshotsEnv.taken.clear()
    CountedSnapshotsEnv.released.clear()
    with RolloutEngine("TreeToyFlaky-v0", Chatter(), tree=3, branch_at=1, progress=False, max_attempts=2) as engine:
        episodes = engine.run_sync(1, 1, seed=3)
    trunk, first, second = sorted(episodes, key=lambda e: e.branch)
    assert FlakyOnceEnv.failures == {"trunk turn 2", "branch"}
    # the trunk's failed try was played again whole; its snapshot (after turn 1) released with it
    assert [(a.termination_reason, a.turns) for a in trunk.attempts] == [("infra_error", 1)]
    assert trunk.outcome == "completed" and trunk.num_turns == 3
    # the first branch failed on its first own turn and was played again from the same snapshot
    assert [(a.termination_reason, a.turns) for a in first.attempts] == [("infra_error", 1)]
    assert not second.attempts
    for branch in (first, second):
        assert branch.outcome == "completed" and branch.fork_turn == 1 and branch.steps[:1] == trunk.steps[:1]
    # every snapshot taken (the failed try's and the kept one) is released, each once
    assert sorted(CountedSnapshotsEnv.taken) == sorted(CountedSnapshotsEnv.released) == [1, 1]
