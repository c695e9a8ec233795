"""AgentDropout on a team of tiny transformers models trained on CPU to graded skill.

The scripted bench (:mod:`horizongym.bench.agentdropout`) with real models as members: does
learned node + edge dropout (AgentDropout, Wang et al., ACL 2025, arXiv 2503.18891) keep the
team's accuracy at fewer tokens, and beat dropping as many agents and edges at random?

Setup (:mod:`horizongym.bench.agentdropout_tiny_team`): a generated item-code task with one right
digit per query; an expert, a noisy model (the expert's fine-tuned on labels right 40% of the
time, sampled), a redundant copy of the expert's weights, a persuasive adversary trained on
``code + 1`` (worth 2 votes, longer message) and a scripted plurality aggregator; each of the three
models is a tiny ``LlamaForCausalLM`` with the byte tokenizer, trained once per size and cached, run greedily through
:class:`~horizongym.agents.hf.TransformersPolicy` as members of the real
:class:`~horizongym.agents.team.policy.TeamPolicy` (weighted majority decision), trained by the real
:func:`~horizongym.training.agentdropout.train_agentdropout` (the authors' faithful node estimator,
their schedule: node dropout 2 × 20, edge dropout 4 × 10 on queries ``0..39``) and scored on test
queries from ``100000`` on. Each member's accuracy alone is measured on 200 queries (``--accuracy-queries``) of seed
``10**6`` (empty inbox, round 1). Tokens are token ids: each call is charged the ids of its
prompt and of its reply.

Methods (fewer than the scripted bench's: no edge-only, node-only, principled or firewall runs):

- ``full_T1``, ``full_T2``: the fixed full graph with one and two rounds;
- ``node_edge_faithful``: node then edge dropout, played ``sampled`` (a graph per query, the
  authors') and ``deterministic`` (edges with σ(θ) > 0.5);
- ``random_budget`` (matched to ``node_edge_faithful`` in each mode): per test query the agent and
  edge counts of the graph the learned method played, the agents and edges uniformly at random
  (:mod:`horizongym.bench.agentdropout_control`);
- ``oracle``: the noisy agent and the adversary dropped, every other edge kept.

Figures (``{"bench": "agentdropout_tiny", "metric", "value", "unit", "params"}``, one JSON line
each, last), named as the scripted bench's: per method, mode and seed ``accuracy``,
``prompt_tokens``, ``completion_tokens``; over seeds (``seed: "mean"``, ``ci95`` = mean ±
t_{0.975, n−1} · sd / √n, none for one seed) the same plus ``calls``; ``training_plays``,
``training_tokens``; ``drop_rate`` per role and ``adversary_drop_rate``; per mode
``token_reduction`` and ``accuracy_delta`` (vs ``full_T2``), ``gain_vs_random_budget`` and
``random_budget_token_ratio``; ``member_accuracy`` per role; ``decoded_prompts`` (distinct prompts
the models decoded; the rest were answered from the members' memo). ``OUT/agentdropout_tiny.json``
holds the figures, rows and settings.

    python -m horizongym.bench.agentdropout_tiny [--quick] [--seeds N] [--out DIR]

``--quick``: 1 seed, 30 test queries (a smoke run; its numbers carry no interval); the full run:
5 seeds of 100 test queries. Both use the same trained models (trained on first use, then cached).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from horizongym.agents.base import Policy
from horizongym.agents.team.graph import GraphParameters, Mode
from horizongym.bench.agentdropout import Row, control_row, must_show, table
from horizongym.bench.agentdropout import figure as shared_figure
from horizongym.bench.agentdropout import summary as shared_summary
from horizongym.bench.agentdropout_control import random_budget_graph
from horizongym.bench.agentdropout_tiny_team import (
    ADVERSARY,
    NOISY,
    ROLE_NAMES,
    ROLES,
    ItemCodes,
    MemberSizes,
    Models,
    TinyPlayer,
    member_accuracy,
    tiny_team,
)
from horizongym.training.agentdropout import AgentDropoutConfig, evaluate, train_agentdropout
from horizongym.training.agentdropout.node_dropout import drop_agents
from horizongym.training.agentdropout.trainer import play_all

BENCH = "agentdropout_tiny"
N_AGENTS = len(ROLES)
METHOD = "node_edge_faithful"
TEST_START = 100_000
ACCURACY_SEED = 10**6
LEARNED_MODES: tuple[Mode, ...] = ("sampled", "deterministic")
PER_SEED = (("accuracy", "fraction"), ("prompt_tokens", "tokens"), ("completion_tokens", "tokens"))


@dataclass(frozen=True)
class Settings:
    """The run's sizes: seeds, queries, the AgentDropout schedule and the members' training."""

    seeds: int
    test_queries: int
    train_queries: int = 40
    node_batches: int = 2
    node_batch_size: int = 20
    edge_batches: int = 4
    edge_batch_size: int = 10
    expert_steps: int = 150
    noisy_steps: int = 60
    noisy_right: float = 0.4
    noisy_temperature: float = 1.0
    member_batch: int = 16
    accuracy_queries: int = 200
    n_items: int = 8

    def config(self, seed: int) -> AgentDropoutConfig:
        return AgentDropoutConfig(
            node_batches=self.node_batches,
            node_batch_size=self.node_batch_size,
            edge_batches=self.edge_batches,
            edge_batch_size=self.edge_batch_size,
            estimator="faithful",
            seed=seed,
        )

    @property
    def sizes(self) -> MemberSizes:
        return MemberSizes(
            expert_steps=self.expert_steps,
            noisy_steps=self.noisy_steps,
            noisy_right=self.noisy_right,
            noisy_temperature=self.noisy_temperature,
            n_items=self.n_items,
            batch=self.member_batch,
        )


QUICK = Settings(seeds=1, test_queries=30)
FULL = Settings(seeds=5, test_queries=100)


# ----- one seed ----------------------------------------------------------------------------------


async def run_seed(seed: int, settings: Settings, members: Sequence[Policy], bar: Any = None) -> list[Row]:
    """Every method on one seed: train on the training queries, score on the test queries."""
    task = ItemCodes(seed, settings.n_items)
    test = list(range(TEST_START, TEST_START + settings.test_queries))
    full = GraphParameters.full(N_AGENTS, 2)
    rows: list[Row] = []

    def player(rounds: int = 2) -> TinyPlayer:
        return TinyPlayer(task, tiny_team(members, rounds))

    async def score(method: str, params: GraphParameters, mode: Mode) -> TinyPlayer:
        playing = player(params.rounds)
        result = (await evaluate(params, playing.play, test, (mode,), seed=seed, max_concurrency=16))[mode]
        calls = statistics.fmean(playing.played[q].calls for q in test)
        rows.append(Row(method, mode, seed, result.accuracy, result.prompt_tokens, result.completion_tokens, calls))
        if bar is not None:
            bar.update(1)
        return playing

    await score("full_T1", GraphParameters.full(N_AGENTS, 1), "fixed")
    await score("full_T2", full, "fixed")
    trained = await train_agentdropout(full, player().play, list(range(settings.train_queries)), settings.config(seed))
    if bar is not None:
        bar.update(1)
    references: dict[Mode, TinyPlayer] = {}
    for mode in LEARNED_MODES:
        references[mode] = await score(METHOD, trained.params, mode)
        row = rows[-1]
        row.training_plays = trained.log.cost.plays
        row.training_prompt_tokens = trained.log.cost.prompt_tokens
        row.training_completion_tokens = trained.log.cost.completion_tokens
        row.dropped = {
            name: sum(i in d for d in trained.log.dropped) / trained.params.rounds for i, name in enumerate(ROLE_NAMES)
        }
    for k, mode in enumerate(LEARNED_MODES):
        rng = np.random.default_rng([seed, 53, k])
        graphs = [random_budget_graph(references[mode].played[q].graph, rng) for q in test]
        control = player()
        results = await play_all(control.play, graphs, test, 16)
        rows.append(control_row(mode, seed, results, statistics.fmean(control.played[q].calls for q in test), METHOD))
        if bar is not None:
            bar.update(1)
    oracle = GraphParameters.full(N_AGENTS, 2)
    drop_agents(oracle, [[NOISY, ADVERSARY]] * 2)
    await score("oracle", oracle, "fixed")
    return rows


STAGES_PER_SEED = 8
"""Progress-bar steps per seed: full_T1, full_T2, training, two learned modes, two controls, oracle."""


# ----- figures -----------------------------------------------------------------------------------


figure = functools.partial(shared_figure, bench=BENCH)
summary = functools.partial(shared_summary, bench=BENCH)


def figures_of(
    rows: Sequence[Row], accuracies: dict[str, float], decoded: int, queries: int = 200
) -> list[dict[str, Any]]:
    """Every figure of the module docstring."""
    by_key: dict[tuple[str, str, str], dict[int, Row]] = {}
    for row in rows:
        by_key.setdefault(row.key, {})[row.seed] = row
    seeds = sorted({row.seed for row in rows})
    out = [figure("member_accuracy", acc, "fraction", role=role, queries=queries) for role, acc in accuracies.items()]

    def params_of(key: tuple[str, str, str]) -> dict[str, Any]:
        method, matched_to, mode = key
        return {"method": method, "mode": mode, **({"matched_to": matched_to} if matched_to else {})}

    for key, per_seed in by_key.items():
        for seed in seeds:
            for metric, unit in PER_SEED:
                out.append(figure(metric, getattr(per_seed[seed], metric), unit, **params_of(key), seed=seed))
    for key, per_seed in by_key.items():
        for metric, unit in (*PER_SEED, ("calls", "calls")):
            out.append(summary(metric, [getattr(per_seed[s], metric) for s in seeds], unit, **params_of(key)))
    ours_sampled = by_key[METHOD, "", "sampled"]
    plays = [ours_sampled[s].training_plays for s in seeds]
    tokens = [ours_sampled[s].training_prompt_tokens + ours_sampled[s].training_completion_tokens for s in seeds]
    out.append(summary("training_plays", plays, "plays", method=METHOD))
    out.append(summary("training_tokens", tokens, "tokens", method=METHOD))
    for role in ROLE_NAMES:
        out.append(
            summary("drop_rate", [ours_sampled[s].dropped[role] for s in seeds], "fraction", method=METHOD, role=role)
        )
    adversary = [ours_sampled[s].dropped["adversary"] for s in seeds]
    out.append(summary("adversary_drop_rate", adversary, "fraction", method=METHOD))
    full = by_key["full_T2", "", "fixed"]
    for mode in LEARNED_MODES:
        ours, control = by_key[METHOD, "", mode], by_key["random_budget", METHOD, mode]
        params = {"method": METHOD, "mode": mode}
        reduction = [1 - ours[s].prompt_tokens / full[s].prompt_tokens for s in seeds]
        out.append(summary("token_reduction", reduction, "fraction", **params, versus="full_T2"))
        out.append(
            summary(
                "accuracy_delta",
                [ours[s].accuracy - full[s].accuracy for s in seeds],
                "fraction",
                **params,
                versus="full_T2",
            )
        )
        out.append(
            summary(
                "gain_vs_random_budget", [ours[s].accuracy - control[s].accuracy for s in seeds], "fraction", **params
            )
        )
        ratio = [control[s].prompt_tokens / ours[s].prompt_tokens for s in seeds]
        out.append(summary("random_budget_token_ratio", ratio, "x", **params))
    out.append(figure("decoded_prompts", decoded, "prompts"))
    return out


def verdicts(figures: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per mode: node + edge cuts prompt tokens ≥ 20%, keeps accuracy, beats the random control."""
    found = {(f["metric"], f["params"].get("mode")): f for f in figures if f["params"].get("method") == METHOD}
    metrics = ("token_reduction", "accuracy_delta", "gain_vs_random_budget")
    return [must_show(mode, *(found[m, mode] for m in metrics)) for mode in LEARNED_MODES]


# ----- the run -----------------------------------------------------------------------------------


def run(settings: Settings, progress: bool = True) -> tuple[list[Row], list[dict[str, Any]]]:
    """Train (or load) the members, measure each alone, run every seed, then the figures."""
    from tqdm import tqdm

    started = time.perf_counter()
    models = Models.load(settings.sizes)
    if progress:
        print(f"members ready in {time.perf_counter() - started:.1f} s: {', '.join(map(str, models.folders.values()))}")
    members = models.members()
    held_out = ItemCodes(ACCURACY_SEED, settings.n_items)
    queries = range(settings.accuracy_queries)
    accuracies = {r.name: asyncio.run(member_accuracy(members[i], i, held_out, queries)) for i, r in enumerate(ROLES)}
    rows: list[Row] = []
    decoded = 0
    with tqdm(total=settings.seeds * STAGES_PER_SEED, desc=BENCH, disable=not progress, file=sys.stderr) as bar:
        for seed in range(settings.seeds):
            before = _decoded(models)
            rows.extend(asyncio.run(run_seed(seed, settings, members, bar)))
            decoded += _decoded(models) - before
    return rows, figures_of(rows, accuracies, decoded, settings.accuracy_queries)


def _decoded(models: Models) -> int:
    """Requests the three models have decoded so far."""
    return sum(
        sum(n * count for n, count in p.batch_size_counts.items())
        for p in (models.expert, models.noisy, models.adversary)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 1-seed smoke run of 30 test queries")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (quick: 1, full: 5)")
    parser.add_argument("--train-queries", type=int, default=None, help="AgentDropout training queries per seed (40)")
    parser.add_argument("--test-queries", type=int, default=None, help="test queries per seed (quick: 30, full: 100)")
    parser.add_argument(
        "--expert-steps", type=int, default=None, help="training steps of the expert and adversary models (150)"
    )
    parser.add_argument(
        "--noisy-steps", type=int, default=None, help="fine-tuning steps of the noisy model from the expert (60)"
    )
    parser.add_argument("--accuracy-queries", type=int, default=None, help="queries measuring each member alone (200)")
    parser.add_argument("--member-batch", type=int, default=None, help="the models' training batch size (16)")
    parser.add_argument(
        "--noisy-temperature", type=float, default=None, help="the noisy member's sampling temperature, > 0 (1.0)"
    )
    parser.add_argument("--items", type=int, default=None, help="items in the task's table, 1..20 (8)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/agentdropout_tiny"), help="where the JSON goes")
    args = parser.parse_args(argv)
    changes: dict[str, Any] = {
        "seeds": args.seeds,
        "train_queries": args.train_queries,
        "test_queries": args.test_queries,
        "expert_steps": args.expert_steps,
        "noisy_steps": args.noisy_steps,
        "member_batch": args.member_batch,
        "accuracy_queries": args.accuracy_queries,
        "n_items": args.items,
    }
    for name, value in changes.items():
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-').replace('n-items', 'items')} must be at least 1, not {value}")
    if args.noisy_temperature is not None and not args.noisy_temperature > 0:
        parser.error(f"--noisy-temperature must be above 0, not {args.noisy_temperature}")
    if args.noisy_temperature is not None:
        changes["noisy_temperature"] = args.noisy_temperature
    if args.items is not None and args.items > 20:
        parser.error(f"--items must be at most 20, not {args.items}")
    base = QUICK if args.quick else FULL
    settings = Settings(**{**asdict(base), **{k: v for k, v in changes.items() if v is not None}})
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"cannot create the output folder {args.out}: {exc.strerror or exc}")
    torch.set_num_threads(1)
    started = time.perf_counter()
    rows, figures = run(settings)
    seconds = time.perf_counter() - started
    checks = verdicts(figures)
    for f in figures:
        if f["metric"] == "member_accuracy":
            print(f"member {f['params']['role']}: accuracy alone {f['value']:.3f}")
    print("\n".join(table(figures)))
    for check in checks:
        print(f"must show ({check['mode']}): " + ", ".join(f"{k}={v}" for k, v in list(check.items())[1:]))
    report = {
        "settings": asdict(settings),
        "seconds": round(seconds, 1),
        "must_show": checks,
        "figures": figures,
        "rows": [asdict(row) for row in rows],
    }
    (args.out / "agentdropout_tiny.json").write_text(json.dumps(report, indent=1))
    print(f"{BENCH} bench done in {seconds:.1f} s; wrote {args.out / 'agentdropout_tiny.json'}")
    for item in figures:
        print(json.dumps(item, ensure_ascii=False))


if __name__ == "__main__":
    main()
