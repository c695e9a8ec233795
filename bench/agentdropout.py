"""AgentDropout on a controlled team: does learned node + edge dropout spend fewer tokens without losing accuracy?

Hypothesis (AgentDropout, Wang et al., ACL 2025, arXiv 2503.18891): dropping the least useful
agents per round (node dropout) and the least useful messages (edge dropout) cuts a team's prompt
tokens at no loss of accuracy, and does so better than dropping the same number of agents and
edges at random. Measured here, whichever way it comes out.

Setup (:mod:`horizongym.bench.agentdropout_team`, skills picked once there and not tuned): a
generated quiz with one right option of 8, five scripted members of known skill (expert 0.85, an
aggregator voting over its inbox, noisy 0.35, a redundant copy of the expert, a persuasive
adversary worth 2 votes with a 90-word message), run as the real
:class:`~horizongym.agents.team.policy.TeamPolicy` (weighted majority decision, token accounts in
words), trained by the real :mod:`horizongym.training.agentdropout` functions through a
``play(graph, query)`` that runs ``team.with_graph(graph).act(...)`` and scores the decision.
Each seed draws its own quiz, member luck, graph samples, training samples and auditor luck; it
trains on queries ``0..39`` (the authors' schedule: node dropout 2 × 20, edge dropout 4 × 10) and
tests on 100 queries from ``100000`` on, which no method saw in training.

Methods (T = 2 unless named):

- ``full_T1``, ``full_T2``: the fixed full graph (every agent, every edge);
- ``edge_only``: edge dropout from the full graph (:func:`train_edge_dropout`);
- ``node_only``: node dropout alone (:func:`train_node_dropout`), played with every surviving
  edge (``mode: fixed``; its edge logits are untrained, so sampling them means nothing);
- ``node_edge_faithful`` / ``node_edge_principled``: node then edge dropout
  (:func:`train_agentdropout`) with the authors' pseudo-likelihood node estimator or the REINFORCE
  one; ``node_edge_faithful_x4``: the faithful one with four times the batches of both phases on
  four times the queries (``0..159``), the training budget as a lever;
- ``random_budget`` (``matched_to`` one of the two above, same ``mode``): per test query, the
  agent and edge counts of the graph the learned method played there, the agents and edges chosen
  uniformly at random (:mod:`horizongym.bench.agentdropout_control`);
- ``oracle``: the known-bad agents (adversary and noisy) dropped, every other edge kept;
- ``firewall_v2``: the full graph with AgentDropoutV2's :class:`AuditingFirewall`, a
  :class:`ScriptedAuditor` (flags a wrong answer with probability 0.8, a right one with 0.1), a
  three-indicator pool; a rewrite is the member's second draw.

Learned methods are evaluated in both inference modes, ``sampled`` (a fresh graph per query, the
authors') and ``deterministic`` (edges with σ(θ) > 0.5), through :func:`evaluate`.

Figures (``{"bench": "agentdropout", "metric", "value", "unit", "params"}``, one JSON line each,
last). Per method, mode and seed: ``accuracy``, ``prompt_tokens``, ``completion_tokens`` (per test
query). Over seeds (``seed: "mean"``, ``ci95`` = mean ± t_{0.975, n−1} · sd / √n over the seeds,
Student's t): the same three plus ``calls`` (per query); ``training_plays`` and
``training_tokens`` (prompt + completion of all training plays, reported apart from the test);
``drop_rate`` (params ``method``, ``role``: the share of rounds node dropout dropped that role);
``adversary_drop_rate``; for each node + edge method and mode ``token_reduction``
(1 − prompt / prompt of ``full_T2``) and ``accuracy_delta`` (accuracy − ``full_T2``'s), per-seed
differences averaged; ``gain_vs_random_budget`` (accuracy − its matched random control's) and
``random_budget_token_ratio`` (the control's prompt tokens over the method's: how well the
budget matched); ``principled_minus_faithful`` (accuracy and prompt tokens). ``OUT/agentdropout.json``
holds every figure, every per-seed row and the settings; ``OUT/agentdropout.png`` plots accuracy
against prompt tokens per method with the intervals.

    python -m horizongym.bench.agentdropout [--quick] [--seeds N] [--out DIR]

``--quick``: 3 seeds; the full run: 20 seeds (the same sizes otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from horizongym.agents.team.graph import GraphParameters, Mode
from horizongym.bench.agentdropout_control import random_budget_graph
from horizongym.bench.agentdropout_team import (
    ADVERSARY,
    NOISY,
    ROLE_NAMES,
    ROLES,
    CodeQuiz,
    QuizPlayer,
    quiz_firewall,
    quiz_team,
)
from horizongym.training.agentdropout import (
    AgentDropoutConfig,
    Trained,
    evaluate,
    train_agentdropout,
    train_edge_dropout,
    train_node_dropout,
)
from horizongym.training.agentdropout.node_dropout import drop_agents
from horizongym.training.agentdropout.play import PlayResult
from horizongym.training.agentdropout.trainer import play_all

N_AGENTS = len(ROLES)
NODE_EDGE = ("node_edge_faithful", "node_edge_principled", "node_edge_faithful_x4")
"""The node + edge methods: the authors' schedule with either node estimator, and the faithful one
trained four times as long on four times as many queries (the schedule is a lever; the test is the same)."""
LONG_SCALE = 4
TEST_START = 100_000
"""Test queries are ``TEST_START ..``: disjoint from the training queries of every schedule."""
LEARNED_MODES: tuple[Mode, ...] = ("sampled", "deterministic")
T_975: tuple[float, ...] = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179)
T_975 += (2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052)
T_975 += (2.048, 2.045, 2.042)
"""Student's t 0.975 quantiles for 1..30 degrees of freedom; 1.96 beyond."""
PER_SEED = (("accuracy", "fraction"), ("prompt_tokens", "tokens"), ("completion_tokens", "tokens"))


@dataclass(frozen=True)
class Settings:
    """The run's sizes: seeds, training and test queries, and the AgentDropout schedule."""

    seeds: int
    train_queries: int = 40
    test_queries: int = 100
    node_batches: int = 2
    node_batch_size: int = 20
    edge_batches: int = 4
    edge_batch_size: int = 10

    def config(self, seed: int, estimator: str = "faithful", scale: int = 1) -> AgentDropoutConfig:
        """The AgentDropout settings; ``scale`` multiplies the number of batches of both phases."""
        return AgentDropoutConfig(
            node_batches=self.node_batches * scale,
            node_batch_size=self.node_batch_size,
            edge_batches=self.edge_batches * scale,
            edge_batch_size=self.edge_batch_size,
            estimator=estimator,  # type: ignore[arg-type]
            seed=seed,
        )


QUICK = Settings(seeds=3)
FULL = Settings(seeds=20)


@dataclass
class Row:
    """One method in one inference mode on one seed's test queries (means per query)."""

    method: str
    mode: str
    seed: int
    accuracy: float
    prompt_tokens: float
    completion_tokens: float
    calls: float
    matched_to: str | None = None
    training_plays: int = 0
    training_prompt_tokens: int = 0
    training_completion_tokens: int = 0
    dropped: dict[str, float] = field(default_factory=dict)
    """Per role: the share of rounds node dropout dropped it (learned node methods only)."""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.method, self.matched_to or "", self.mode


# ----- one seed ----------------------------------------------------------------------------------


async def run_seed(seed: int, settings: Settings) -> list[Row]:
    """Every method on one seed: train on the training queries, score on the test queries."""
    quiz = CodeQuiz(seed)
    train = list(range(settings.train_queries))
    test = list(range(TEST_START, TEST_START + settings.test_queries))
    full = GraphParameters.full(N_AGENTS, 2)
    rows: list[Row] = []

    async def score(method: str, params: GraphParameters, mode: Mode, firewall: bool = False) -> QuizPlayer:
        team = quiz_team(quiz, params.rounds, quiz_firewall(quiz, seed) if firewall else None)
        player = QuizPlayer(quiz, team)
        result = (await evaluate(params, player.play, test, (mode,), seed=seed))[mode]
        calls = statistics.fmean(player.played[q].calls for q in test)
        rows.append(Row(method, mode, seed, result.accuracy, result.prompt_tokens, result.completion_tokens, calls))
        return player

    await score("full_T1", GraphParameters.full(N_AGENTS, 1), "fixed")
    await score("full_T2", full, "fixed")

    def trainer_play() -> Any:
        return QuizPlayer(quiz, quiz_team(quiz, 2)).play

    learned: list[tuple[str, Trained, tuple[Mode, ...]]] = [
        ("edge_only", await train_edge_dropout(full, trainer_play(), train, settings.config(seed)), LEARNED_MODES),
        ("node_only", await train_node_dropout(full, trainer_play(), train, settings.config(seed)), ("fixed",)),
    ]
    for method in NODE_EDGE:
        estimator, _, long = method.removeprefix("node_edge_").partition("_")
        scale = LONG_SCALE if long else 1
        config = settings.config(seed, estimator, scale)
        queries = list(range(settings.train_queries * scale))
        learned.append((method, await train_agentdropout(full, trainer_play(), queries, config), LEARNED_MODES))
    references: dict[tuple[str, str], QuizPlayer] = {}
    for method, trained, modes in learned:
        for mode in modes:
            references[method, mode] = await score(method, trained.params, mode)
            row = rows[-1]
            row.training_plays = trained.log.cost.plays
            row.training_prompt_tokens = trained.log.cost.prompt_tokens
            row.training_completion_tokens = trained.log.cost.completion_tokens
            if method != "edge_only":
                row.dropped = dropped_roles(trained.log.dropped, trained.params.rounds)

    for k, (method, mode) in enumerate((m, mode) for m in NODE_EDGE for mode in LEARNED_MODES):
        reference = references[method, mode]
        rng = np.random.default_rng([seed, 53, k])
        graphs = [random_budget_graph(reference.played[q].graph, rng) for q in test]
        player = QuizPlayer(quiz, quiz_team(quiz, 2))
        results = await play_all(player.play, graphs, test, 8)
        calls = statistics.fmean(player.played[q].calls for q in test)
        rows.append(control_row(mode, seed, results, calls, method))

    oracle = GraphParameters.full(N_AGENTS, 2)
    drop_agents(oracle, [[NOISY, ADVERSARY]] * 2)
    await score("oracle", oracle, "fixed")
    await score("firewall_v2", full, "fixed", firewall=True)
    return rows


def control_row(mode: str, seed: int, results: Sequence[PlayResult], calls: float, matched_to: str) -> Row:
    """The random-budget control's row: its means per test query, matched to the method ``matched_to``."""
    return Row(
        "random_budget",
        mode,
        seed,
        statistics.fmean(r.utility for r in results),
        statistics.fmean(r.prompt_tokens for r in results),
        statistics.fmean(r.completion_tokens for r in results),
        calls,
        matched_to=matched_to,
    )


def dropped_roles(dropped: Sequence[Sequence[int]], rounds: int) -> dict[str, float]:
    """Per role, the share of the ``rounds`` rounds in which node dropout dropped it."""
    return {name: sum(i in d for d in dropped) / rounds for i, name in enumerate(ROLE_NAMES)}


# ----- over seeds --------------------------------------------------------------------------------


def interval95(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): mean ± t_{0.975, n−1} · sd / √n; (mean, mean, mean) for one value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    t = T_975[len(values) - 2] if len(values) - 1 <= len(T_975) else 1.96
    half = t * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def figure(metric: str, value: float, unit: str, *, bench: str = "agentdropout", **params: Any) -> dict[str, Any]:
    """One figure line (``bench`` names the script that measured it)."""
    return {"bench": bench, "metric": metric, "value": round(float(value), 4), "unit": unit, "params": params}


def summary(
    metric: str, values: Sequence[float], unit: str, *, bench: str = "agentdropout", **params: Any
) -> dict[str, Any]:
    """A figure over seeds: the mean, with its 95% t interval in ``params.ci95`` when there are ≥ 2 seeds."""
    mean, low, high = interval95(values)
    interval = {"ci95": [round(low, 4), round(high, 4)]} if len(values) >= 2 else {}
    return figure(metric, mean, unit, bench=bench, seed="mean", seeds=len(values), **interval, **params)


def method_params(key: tuple[str, str, str]) -> dict[str, Any]:
    method, matched_to, mode = key
    return {"method": method, "mode": mode, **({"matched_to": matched_to} if matched_to else {})}


def figures_of(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Every figure of the module docstring from the per-seed rows."""
    by_key: dict[tuple[str, str, str], dict[int, Row]] = {}
    for row in rows:
        by_key.setdefault(row.key, {})[row.seed] = row
    seeds = sorted({row.seed for row in rows})
    out = []
    for key, per_seed in by_key.items():
        for seed in seeds:
            row = per_seed[seed]
            for metric, unit in PER_SEED:
                out.append(figure(metric, getattr(row, metric), unit, **method_params(key), seed=seed))
    for key, per_seed in by_key.items():
        for metric, unit in (*PER_SEED, ("calls", "calls")):
            out.append(summary(metric, [getattr(per_seed[s], metric) for s in seeds], unit, **method_params(key)))
    for key, per_seed in by_key.items():
        method, _, mode = key
        if method in ("edge_only", "node_only", *NODE_EDGE) and mode != "deterministic":
            plays = [per_seed[s].training_plays for s in seeds]
            tokens = [per_seed[s].training_prompt_tokens + per_seed[s].training_completion_tokens for s in seeds]
            out.append(summary("training_plays", plays, "plays", method=method))
            out.append(summary("training_tokens", tokens, "tokens", method=method))
        if per_seed[seeds[0]].dropped and mode != "deterministic":
            for role in ROLE_NAMES:
                rates = [per_seed[s].dropped[role] for s in seeds]
                out.append(summary("drop_rate", rates, "fraction", method=method, role=role))
            adversary = [per_seed[s].dropped["adversary"] for s in seeds]
            out.append(summary("adversary_drop_rate", adversary, "fraction", method=method))
    full = by_key["full_T2", "", "fixed"]
    for method in NODE_EDGE:
        for mode in LEARNED_MODES:
            ours, control = by_key[method, "", mode], by_key["random_budget", method, mode]
            params = {"method": method, "mode": mode}
            reduction = [1 - ours[s].prompt_tokens / full[s].prompt_tokens for s in seeds]
            out.append(summary("token_reduction", reduction, "fraction", **params, versus="full_T2"))
            delta = [ours[s].accuracy - full[s].accuracy for s in seeds]
            out.append(summary("accuracy_delta", delta, "fraction", **params, versus="full_T2"))
            gain = [ours[s].accuracy - control[s].accuracy for s in seeds]
            out.append(summary("gain_vs_random_budget", gain, "fraction", **params))
            ratio = [control[s].prompt_tokens / ours[s].prompt_tokens for s in seeds]
            out.append(summary("random_budget_token_ratio", ratio, "x", **params))
    for mode in LEARNED_MODES:
        faithful, principled = by_key["node_edge_faithful", "", mode], by_key["node_edge_principled", "", mode]
        for metric, unit in (("accuracy", "fraction"), ("prompt_tokens", "tokens")):
            diff = [getattr(principled[s], metric) - getattr(faithful[s], metric) for s in seeds]
            out.append(summary("principled_minus_faithful", diff, unit, of=metric, mode=mode))
    return out


def verdicts(figures: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's "must show" for each node + edge method and mode: met on the seed means, and with intervals."""
    found = {
        (f["metric"], f["params"].get("method"), f["params"].get("mode")): f
        for f in figures
        if f["params"].get("seed") == "mean"
    }
    out = []
    for method in NODE_EDGE:
        for mode in LEARNED_MODES:
            cut = found["token_reduction", method, mode]
            delta = found["accuracy_delta", method, mode]
            gain = found["gain_vs_random_budget", method, mode]
            out.append({"method": method, **must_show(mode, cut, delta, gain)})
    return out


def must_show(mode: str, cut: dict[str, Any], delta: dict[str, Any], gain: dict[str, Any]) -> dict[str, Any]:
    """The issue's three checks on the seed means, and on the intervals where there are ≥ 2 seeds."""
    check: dict[str, Any] = {
        "mode": mode,
        "token_reduction_ge_20pct": cut["value"] >= 0.2,
        "accuracy_not_lower": delta["value"] >= 0,
        "beats_random_budget": gain["value"] > 0,
    }
    if "ci95" in cut["params"]:
        check["token_reduction_ge_20pct_ci"] = cut["params"]["ci95"][0] >= 0.2
        check["accuracy_not_lower_ci"] = delta["params"]["ci95"][1] >= 0
        check["beats_random_budget_ci"] = gain["params"]["ci95"][0] > 0
    return check


# ----- output ------------------------------------------------------------------------------------


def table(figures: Sequence[dict[str, Any]]) -> list[str]:
    """Method × accuracy / prompt / completion tokens / calls, mean [95% interval] over seeds."""
    cells: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for f in figures:
        p = f["params"]
        if p.get("seed") == "mean" and f["metric"] in ("accuracy", "prompt_tokens", "completion_tokens", "calls"):
            cells.setdefault((p["method"], p.get("matched_to", ""), p["mode"]), {})[f["metric"]] = f
    lines = [
        "| method | mode | accuracy | prompt tokens / query | completion tokens / query | calls / query |",
        "|---|---|---|---|---|---|",
    ]
    for (method, matched, mode), metrics in cells.items():
        name = f"{method} (matched to {matched})" if matched else method
        shown = [cell(metrics[m], d) for m, d in (("accuracy", 3), ("prompt_tokens", 0), ("completion_tokens", 0))]
        lines.append(f"| {name} | {mode} | {' | '.join(shown)} | {cell(metrics['calls'], 1)} |")
    return lines


def error_bar(f: dict[str, Any]) -> list[list[float]]:
    """Matplotlib's ``[[below], [above]]`` of a figure's interval (none for one seed)."""
    low, high = f["params"].get("ci95", (f["value"], f["value"]))
    return [[f["value"] - low], [high - f["value"]]]


def cell(f: dict[str, Any], digits: int) -> str:
    """``mean [low, high]`` of a figure over seeds (the mean alone for one seed)."""
    if "ci95" not in f["params"]:
        return f"{f['value']:.{digits}f}"
    low, high = f["params"]["ci95"]
    return f"{f['value']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def plot(figures: Sequence[dict[str, Any]], path: Path) -> None:
    """Accuracy against prompt tokens per method and mode, with the 95% intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points: dict[str, dict[str, dict[str, Any]]] = {}
    for f in figures:
        p = f["params"]
        if p.get("seed") == "mean" and f["metric"] in ("accuracy", "prompt_tokens"):
            label = p["method"] + (f" ~ {p['matched_to'].removeprefix('node_edge_')}" if "matched_to" in p else "")
            points.setdefault(f"{label} ({p['mode']})", {})[f["metric"]] = f
    fig, ax = plt.subplots(figsize=(9, 6))
    cmap = plt.get_cmap("tab20")
    for k, (label, point) in enumerate(points.items()):
        x, y = point["prompt_tokens"], point["accuracy"]
        xerr, yerr = error_bar(x), error_bar(y)
        marker, colour = "osD^v"[k % 5], cmap(k % 20)
        ax.errorbar(x["value"], y["value"], xerr=xerr, yerr=yerr, fmt=marker, color=colour, capsize=3, label=label)
    ax.set_xlabel("prompt tokens per query (words)")
    ax.set_ylabel("accuracy")
    seeds = next(iter(points.values()))["accuracy"]["params"]["seeds"]
    ax.set_title(f"AgentDropout on the scripted quiz team: mean and 95% t interval over {seeds} seeds")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(settings: Settings, progress: bool = True) -> tuple[list[Row], list[dict[str, Any]]]:
    """Every seed, then the figures."""
    rows: list[Row] = []
    for seed in range(settings.seeds):
        started = time.perf_counter()
        rows.extend(asyncio.run(run_seed(seed, settings)))
        if progress:
            print(f"seed {seed} done in {time.perf_counter() - started:.1f} s", flush=True)
    return rows, figures_of(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="under a minute: 3 seeds")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (quick: 3, full: 20)")
    parser.add_argument("--train-queries", type=int, default=None, help="training queries per seed (default 40)")
    parser.add_argument("--test-queries", type=int, default=None, help="test queries per seed (default 100)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/agentdropout"), help="where the JSON and PNG go")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    changes = {"seeds": args.seeds, "train_queries": args.train_queries, "test_queries": args.test_queries}
    for name, value in changes.items():
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    settings = Settings(**{**asdict(settings), **{k: v for k, v in changes.items() if v is not None}})
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"cannot create the output folder {args.out}: {exc.strerror or exc}")
    torch.set_num_threads(1)
    started = time.perf_counter()
    rows, figures = run(settings)
    seconds = time.perf_counter() - started
    checks = verdicts(figures)
    print("\n".join(table(figures)))
    for check in checks:
        met = ", ".join(f"{k}={v}" for k, v in list(check.items())[2:])
        print(f"must show, {check['method']} ({check['mode']}): {met}")
    report = {
        "settings": asdict(settings),
        "roles": [asdict(role) for role in ROLES],
        "seconds": round(seconds, 1),
        "must_show": checks,
        "figures": figures,
        "rows": [asdict(row) for row in rows],
    }
    (args.out / "agentdropout.json").write_text(json.dumps(report, indent=1))
    plot(figures, args.out / "agentdropout.png")
    print(f"agentdropout bench done in {seconds:.1f} s; wrote {args.out / 'agentdropout.json'} and agentdropout.png")
    for item in figures:
        print(json.dumps(item, ensure_ascii=False))


if __name__ == "__main__":
    main()
