"""The demo's report: the table of held-out success per stage and RL seed with 95% intervals, the
paired RL-vs-SFT tests and the verdict, and the learning-curve plot."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from horizongym.training.demo.settings import STAGES, WORLD_TEST_QUESTIONS
from horizongym.training.paired_stats import mcnemar_exact, sign_flip_test

SIGNIFICANCE = 0.05
"""RL beats SFT when the pooled paired test's p-value is under this (and the gain clears the spread)."""


def _row(results: Sequence[dict[str, Any]], seed: int, stage: str) -> dict[str, Any]:
    return next(r for r in results if r["seed"] == seed and r["stage"] == stage)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def table(results: Sequence[dict[str, Any]], seeds: Sequence[int]) -> str:
    """Success per stage (rows) and seed (columns) with its 95% Wilson interval, the mean ± sample std
    over seeds, and the mean over seeds on the world's own test questions."""
    n = results[0]["n"]
    header = (
        f"{'stage':<11}"
        + "".join(f"{'seed ' + str(s):>22}" for s in seeds)
        + f"{'mean ± std':>16}{'world ' + str(WORLD_TEST_QUESTIONS):>10}"
    )
    lines = [f"held-out questions: {n}", header, "-" * len(header)]
    for name in STAGES:
        rows = [_row(results, s, name) for s in seeds]
        cells = "".join(f"{r['success']:>7.3f} [{r['ci_low']:.3f},{r['ci_high']:.3f}]" for r in rows)
        mean, std = _mean_std([r["success"] for r in rows])
        world = statistics.fmean(r["world_success"] for r in rows)
        lines.append(f"{name:<11}{cells}{mean:>9.3f} ± {std:.3f}{world:>10.3f}")
    return "\n".join(lines)


def paired(results: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """RL against SFT on the same held-out questions: exact McNemar per seed; pooled over seeds, the
    sign-flip test of each question's RL success averaged over seeds minus its SFT success.

    ``delta`` and ``p_value`` at the top are the pooled test's.
    """
    sft = [bool(o) for o in _row(results, seeds[0], "after_sft")["outcomes"]]
    per_seed = {}
    for seed in seeds:
        test = mcnemar_exact(sft, [bool(o) for o in _row(results, seed, "after_rl")["outcomes"]])
        per_seed[str(seed)] = {"delta": test.delta, "p_value": test.p_value, "better": test.better, "worse": test.worse}
    rl = [_row(results, seed, "after_rl")["outcomes"] for seed in seeds]
    by_question = zip(*rl, strict=True)
    differences = [statistics.fmean(column) - int(before) for before, column in zip(sft, by_question, strict=True)]
    pooled = sign_flip_test(differences)
    return {
        "delta": pooled.delta,
        "p_value": pooled.p_value,
        "test": "sign_flip over questions (RL success averaged over seeds minus SFT)",
        "n": pooled.n,
        "per_seed": per_seed,
        "per_seed_test": "mcnemar_exact",
    }


def verdict(results: Sequence[dict[str, Any]], seeds: Sequence[int], test: dict[str, Any]) -> dict[str, Any]:
    """Does RL beat SFT: pooled paired p < :data:`SIGNIFICANCE` and a gain over twice the spread over seeds
    (the sample std of the RL seeds' held-out success)?"""
    rl = [_row(results, s, "after_rl")["success"] for s in seeds]
    margin = test["delta"]
    spread = _mean_std(rl)[1]
    return {
        "rl_minus_sft": margin,
        "seed_spread": spread,
        "p_value": test["p_value"],
        "rl_beats_sft": bool(len(seeds) > 1 and margin > 0 and test["p_value"] < SIGNIFICANCE and margin > 2 * spread),
        "seeds_improved": sum(test["per_seed"][str(s)]["delta"] > 0 for s in seeds),
    }


def verdict_line(check: dict[str, Any], seeds: Sequence[int]) -> str:
    """The verdict in one line."""
    return (
        f"RL − SFT (paired, pooled over {len(seeds)} seeds): {check['rl_minus_sft']:+.3f}, p = {check['p_value']:.4f}; "
        f"seed spread (std) {check['seed_spread']:.3f}; RL beats SFT (p < {SIGNIFICANCE} and gain > 2 × spread): "
        f"{'yes' if check['rl_beats_sft'] else 'no'} ({check['seeds_improved']} of {len(seeds)} seeds improved)"
    )


def plot(
    path: Path,
    results: Sequence[dict[str, Any]],
    rl_reward: dict[int, list[float]],
    held_out: dict[int, list[tuple[int, float]]],
) -> None:
    """Three panels: training reward per RL step per seed; held-out success over RL steps per seed
    (step 0 the SFT model); held-out success at the three stages with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.2))
    for seed, rewards in rl_reward.items():
        left.plot(range(1, len(rewards) + 1), rewards, marker="o", markersize=2, linewidth=1, label=f"seed {seed}")
    left.set(xlabel="RL step", ylabel="mean training reward", title="RL on train questions (sampled)")
    left.grid(alpha=0.3)
    left.legend()
    for seed, points in held_out.items():
        middle.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=4, label=f"seed {seed}")
    middle.set(xlabel="RL step", ylabel="success (exact match)", title="held-out questions over RL (greedy)")
    middle.grid(alpha=0.3)
    middle.legend()
    for offset, seed in zip((-0.08, 0.0, 0.08, 0.16, -0.16), rl_reward, strict=False):
        rows = [_row(results, seed, s) for s in STAGES]
        values = [r["success"] for r in rows]
        errors = [[r["success"] - r["ci_low"] for r in rows], [r["ci_high"] - r["success"] for r in rows]]
        right.errorbar(
            [i + offset for i in range(len(STAGES))], values, yerr=errors, marker="o", capsize=3, label=f"seed {seed}"
        )
    right.set_xticks(range(len(STAGES)), list(STAGES))
    right.set(ylabel="success (exact match)", title="held-out questions by stage, 95% intervals", ylim=(-0.02, 1.02))
    right.grid(alpha=0.3)
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
