"""The credit-assignment benchmark's toys, its training loops and the figures it prints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from horizongym.bench import credit
from horizongym.bench.credit import (
    FORWARD,
    LONG,
    SHORTCUT,
    WAIT,
    WRONG,
    Config,
    DecisiveRound,
    Hindsight,
    ShortcutCorridor,
    TabularSoftmax,
    interval95,
    rollout_tree,
    steps_to_threshold,
    train,
    uniform_hindsight,
)

TINY = Config(
    seeds=2,
    corridor_updates=3,
    decisive_updates=3,
    group=4,
    eval_episodes=20,
    window=2,
    hindsight_steps=2,
    eapo_gammas=(0.995,),
    trunks=2,
    branches=2,
    corridor_env_steps=60,
    decisive_env_steps=300,
)


class CountingEnv:
    """Counts the steps taken through it."""

    def __init__(self, env: ShortcutCorridor | DecisiveRound) -> None:
        self.env, self.steps = env, 0
        self.num_states, self.num_actions = env.num_states, env.num_actions

    def legal(self) -> np.ndarray:
        return self.env.legal()

    def reset(self) -> int:
        return self.env.reset()

    def step(self, action: int) -> tuple[int, float, bool]:
        self.steps += 1
        return self.env.step(action)

    def snapshot(self) -> tuple[int, ...]:
        return self.env.snapshot()

    def restore(self, snapshot: tuple[int, ...]) -> None:
        self.env.restore(snapshot)


def play(env: ShortcutCorridor | DecisiveRound, actions: list[int]) -> list[tuple[int, float, bool]]:
    env.reset()
    return [env.step(a) for a in actions]


def test_corridor_paths() -> None:
    env = ShortcutCorridor()
    assert env.num_states == 9
    assert play(env, [SHORTCUT, FORWARD])[-1] == (1, 1.0, True)
    long_run = play(env, [LONG] + [FORWARD] * 7)
    assert [done for _, _, done in long_run] == [False] * 7 + [True]
    assert long_run[-1][1] == 1.0
    assert play(env, [WRONG]) == [(0, 0.0, True)]
    waited = play(env, [SHORTCUT, WAIT, FORWARD])
    assert waited[1] == (1, 0.0, False) and waited[2][1:] == (1.0, True)
    stalled = play(env, [LONG] + [WAIT] * 23)
    assert stalled[-1] == (2, 0.0, True) and not any(done for _, _, done in stalled[:-1])
    legal = env.legal()
    assert legal[0].all() and not legal[1:, WRONG].any()


def test_decisive_round() -> None:
    env = DecisiveRound()
    right = play(env, [1] * 32)
    assert right[-1][1:] == (1.0, True)
    assert all(reward == 0.0 and not done for _, reward, done in right[:-1])
    actions = [1] * 32
    actions[16] = 0
    assert play(env, actions)[-1][1] == 0.0
    others_wrong = [0] * 32
    others_wrong[16] = 1
    assert play(env, others_wrong)[-1][1] == 1.0
    assert [state for state, _, _ in right[:3]] == [1, 2, 3]


@pytest.mark.parametrize(
    ("env", "prefix", "rest"),
    [
        (ShortcutCorridor(), [LONG, FORWARD, WAIT], [WAIT, FORWARD] + [FORWARD] * 6),
        (DecisiveRound(), [0] * 16, [1] * 16),
        (DecisiveRound(), [0] * 17, [1] * 15),
    ],
)
def test_restore_replays_the_same_continuation(
    env: ShortcutCorridor | DecisiveRound, prefix: list[int], rest: list[int]
) -> None:
    play(env, prefix)
    snapshot = env.snapshot()
    first = [env.step(a) for a in rest]
    env.restore(snapshot)
    assert [env.step(a) for a in rest] == first
    env.restore(snapshot)
    other = [env.step(1 - a if isinstance(env, DecisiveRound) else WAIT) for a in rest]
    if isinstance(env, DecisiveRound):
        # the decisive round is round 17: forked before it, the continuations decide (1 wins, 0 loses);
        # forked after it, the prefix's wrong choice (0) has decided already and both lose
        expected = (0.0, 0.0) if len(prefix) >= 17 else (1.0, 0.0)
        assert (first[-1][1], other[-1][1]) == expected
    else:
        assert other[-1][1] == 0.0 and first[-1][1] == 1.0


@pytest.mark.parametrize("make", [ShortcutCorridor, DecisiveRound])
def test_tree_rollout_shares_the_prefix_and_counts_own_steps(make: type) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        env = CountingEnv(make())
        cumulative = np.cumsum(TabularSoftmax(env.legal()).probs(), axis=1)
        tree = rollout_tree(env, cumulative, rng, branches=4, trunk_index=8)
        trunk, branches = tree[0], tree[1:]
        assert trunk.parent is None and trunk.fork_turn == 0 and len(branches) == 3
        assert sum(ep.env_steps for ep in tree) == env.steps
        for branch in branches:
            k = branch.fork_turn
            assert branch.parent == 8 and 0 <= k < trunk.rounds
            assert branch.states[:k] == trunk.states[:k] and branch.actions[:k] == trunk.actions[:k]
            assert branch.env_steps == branch.rounds - k
            if make is DecisiveRound:
                assert branch.rounds == 32
                if k >= 17:
                    assert branch.reward == trunk.reward


def test_tree_training_trains_each_distinct_round_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rounds: list[int] = []
    scales: list[float] = []
    original = TabularSoftmax.update

    def update(
        self: TabularSoftmax, states: np.ndarray, actions: np.ndarray, adv: np.ndarray, lr: float, n: float
    ) -> None:
        assert len(states) == len(actions) == len(adv)
        rounds.append(len(states))
        scales.append(n)
        original(self, states, actions, adv, lr, n)

    monkeypatch.setattr(TabularSoftmax, "update", update)
    env = CountingEnv(DecisiveRound())
    log = train(env, "tree", 2, updates=4, group=2, lr=0.5, branches=3)
    assert log.env_steps[-1] == env.steps == sum(rounds)
    assert log.env_steps == list(np.cumsum(rounds))
    # every group has 6 episodes of 32 rounds: n = own rounds · 6 / (6 · 32)
    assert scales == pytest.approx([r / 32 for r in rounds])
    again = train(DecisiveRound(), "tree", 2, updates=4, group=2, lr=0.5, branches=3)
    np.testing.assert_array_equal(again.policy.theta, log.policy.theta)
    budgeted = train(DecisiveRound(), "grpo", 2, updates=100, group=2, lr=0.5, max_env_steps=100)
    assert budgeted.env_steps == [64, 128]


def test_interval95() -> None:
    # [1, 2, 3]: mean 2, s 1, t(2 df) 4.303 -> 2 ± 4.303 / √3 = 2 ± 2.484339
    low, high = interval95([1.0, 2.0, 3.0])
    assert low == pytest.approx(2 - 2.484339, abs=1e-5) and high == pytest.approx(2 + 2.484339, abs=1e-5)
    assert interval95([5.0]) == (5.0, 5.0)


def test_tabular_softmax_update() -> None:
    policy = TabularSoftmax(ShortcutCorridor().legal())
    probs = policy.probs()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs[1, WRONG] == 0.0 and probs[0, WRONG] == pytest.approx(1 / 3)
    policy.update(np.array([0, 1]), np.array([SHORTCUT, WAIT]), np.array([1.0, -1.0]), lr=1.0, episodes=1)
    after = policy.probs()
    assert after[0, SHORTCUT] > probs[0, SHORTCUT] and after[1, WAIT] < probs[1, WAIT]
    assert after[1, WRONG] == 0.0


def test_steps_to_threshold() -> None:
    assert steps_to_threshold([0.5, 1.0, 0.7, 1.0, 1.0], window=2, threshold=0.9) == 5
    assert steps_to_threshold([1.0, 0.9], window=2, threshold=0.9) == 2
    assert steps_to_threshold([1.0], window=2, threshold=0.9) is None


@pytest.mark.parametrize("advantage", ["grpo", "eapo"])
def test_corridor_training_is_deterministic(advantage: str) -> None:
    runs = [train(ShortcutCorridor(), advantage, 3, updates=4, group=4, lr=0.5) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].policy.theta, runs[1].policy.theta)
    assert runs[0].success == runs[1].success and len(runs[0].success) == 4
    assert np.isfinite(runs[0].policy.theta).all()


def test_decisive_training_with_hindsight_is_deterministic() -> None:
    thetas = []
    for _ in range(2):
        torch.manual_seed(1)
        hindsight = Hindsight(32, 2, window=2, steps=2)
        log = train(DecisiveRound(), "hcapo", 1, updates=3, group=4, lr=0.5, hindsight=hindsight)
        thetas.append(log.policy.theta)
        assert len(hindsight.buffer) == 2
    np.testing.assert_array_equal(thetas[0], thetas[1])
    stopped = train(
        DecisiveRound(), "hcapo", 1, updates=5, group=4, lr=0.5, hindsight=uniform_hindsight, stop=lambda _: True
    )
    assert len(stopped.success) == 1


def test_quick_run_prints_the_figures(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(credit, "QUICK", TINY)
    credit.main(["--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = []
    for line in reversed(lines):
        if not line.startswith("{"):
            break
        figures.append(json.loads(line))
    assert all(f["bench"] == "credit" and set(f) == {"bench", "metric", "value", "unit", "params"} for f in figures)
    by_metric: dict[str, list[dict]] = {}
    for f in figures:
        by_metric.setdefault(f["metric"], []).append(f["params"])

    assert {(p["mode"], p["round"]) for p in by_metric["context_tokens"]} == {
        (mode, r) for mode in ("workspace", "history") for r in (8, 64, 512)
    }
    assert {p["mode"] for p in by_metric["context_ratio_512_vs_8"]} == {"workspace", "history"}
    for metric in ("mean_rounds_at_success", "final_success"):
        assert sorted(p["advantage"] for p in by_metric[metric]) == ["eapo", "grpo"]
        for p in by_metric[metric]:
            assert p["seeds"] == [0, 1] and len(p["per_seed"]) == 2
    steps = by_metric["steps_to_threshold"]
    assert {(p["advantage"], p.get("hindsight"), p["task"], p["seed"]) for p in steps} == {
        (adv, hind, "decisive", seed)
        for adv, hind in (("grpo", None), ("hcapo", "head"), ("hcapo", "uniform"))
        for seed in (0, 1, "mean")
    } | {("tree", None, task, seed) for task in ("decisive", "corridor") for seed in (0, 1, "mean")}
    assert all(
        f["value"] <= TINY.decisive_updates
        for f in figures
        if f["metric"] == "steps_to_threshold" and f["params"]["advantage"] != "tree"
    )
    budgets = {"decisive": TINY.decisive_env_steps, "corridor": TINY.corridor_env_steps}
    equal = [f for f in figures if f["metric"] == "env_steps_to_threshold"]
    assert sorted((f["params"]["advantage"], f["params"]["task"]) for f in equal) == sorted(
        (adv, task) for adv in ("tree", "grpo", "hcapo") for task in ("decisive", "corridor")
    )
    for f in equal:
        p = f["params"]
        assert p["budget"] == budgets[p["task"]] and p["seeds"] == [0, 1] and 0 <= p["reached"] <= 2
        assert all(0 < v <= p["budget"] for v in p["per_seed"])
        assert f["value"] == pytest.approx(sum(p["per_seed"]) / 2, abs=1e-3)
        assert p["ci95"][0] <= f["value"] <= p["ci95"][1]
    # the decisive round cannot be learnt in 300 env steps (a couple of updates): nobody reaches the threshold
    assert all(f["params"]["reached"] == 0 and f["value"] == 300 for f in equal if f["params"]["task"] == "decisive")
