"""The demo's report: the table of held-out success per stage and RL seed, the verdict (does RL beat
SFT beyond the spread over seeds), and the learning-curve plot."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from horizongym.training.demo.settings import STAGES


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def table(results: Sequence[dict[str, Any]], seeds: Sequence[int]) -> str:
    """Success per stage (rows) and seed (columns), with mean ± sample std over seeds."""
    header = f"{'stage':<12}" + "".join(f"{'seed ' + str(s):>9}" for s in seeds) + f"{'mean ± std':>18}"
    lines = [header, "-" * len(header)]
    for name in STAGES:
        values = [next(r["success"] for r in results if r["seed"] == s and r["stage"] == name) for s in seeds]
        mean, std = _mean_std(values)
        lines.append(f"{name:<12}" + "".join(f"{v:>9.3f}" for v in values) + f"{mean:>11.3f} ± {std:.3f}")
    return "\n".join(lines)


def verdict(results: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """Does RL beat SFT by more than the spread over seeds (the larger stage std)?"""
    sft = [next(r["success"] for r in results if r["seed"] == s and r["stage"] == "after_sft") for s in seeds]
    rl = [next(r["success"] for r in results if r["seed"] == s and r["stage"] == "after_rl") for s in seeds]
    margin = statistics.fmean(rl) - statistics.fmean(sft)
    spread = max(_mean_std(sft)[1], _mean_std(rl)[1])
    return {
        "rl_minus_sft": margin,
        "seed_spread": spread,
        "rl_beats_sft_beyond_spread": bool(len(seeds) > 1 and margin > spread),
        "seeds_improved": sum(b > a for a, b in zip(sft, rl, strict=True)),
    }


def plot(path: Path, results: Sequence[dict[str, Any]], rl_reward: dict[int, list[float]]) -> None:
    """Training reward per RL step per seed, and held-out success at the three stages."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for seed, rewards in rl_reward.items():
        left.plot(range(1, len(rewards) + 1), rewards, marker="o", markersize=3, label=f"RL seed {seed}")
    left.set(xlabel="RL step", ylabel="mean training reward", title="RL (EAPO) on train questions")
    left.grid(alpha=0.3)
    left.legend()
    for seed in rl_reward:
        values = [next(r["success"] for r in results if r["seed"] == seed and r["stage"] == s) for s in STAGES]
        right.plot(range(len(STAGES)), values, marker="o", alpha=0.6, label=f"RL seed {seed}")
    means = [statistics.fmean(r["success"] for r in results if r["stage"] == s) for s in STAGES]
    right.plot(range(len(STAGES)), means, color="black", linewidth=2.5, marker="s", label="mean")
    right.set_xticks(range(len(STAGES)), list(STAGES))
    right.set(ylabel="success (exact match)", title="held-out questions, greedy", ylim=(-0.02, 1.02))
    right.grid(alpha=0.3)
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
