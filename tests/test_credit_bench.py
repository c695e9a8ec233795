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
)


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
    assert {(p["advantage"], p.get("hindsight"), p["seed"]) for p in steps} == {
        (adv, hind, seed)
        for adv, hind in (("grpo", None), ("hcapo", "head"), ("hcapo", "uniform"))
        for seed in (0, 1, "mean")
    }
    assert all(f["value"] <= TINY.decisive_updates for f in figures if f["metric"] == "steps_to_threshold")
