"""The demo end to end: data, expert episodes, one SFT run in this process, the RL seeds in parallel
worker processes, then the summary, table and plot; and its command line."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from horizongym.training.demo.data import export_world, split_size
from horizongym.training.demo.episodes import expert_episodes
from horizongym.training.demo.report import paired, plot, table, verdict, verdict_line
from horizongym.training.demo.rl import run_rl
from horizongym.training.demo.settings import ENV_ID, QUICK, STAGES, DemoSettings, with_overrides
from horizongym.training.demo.sft import run_sft


def run_demo(
    seeds: int = 3,
    out: str | Path = "runs/demo",
    *,
    quick: bool = False,
    workers: int | None = None,
    settings: DemoSettings | None = None,
) -> dict[str, Any]:
    """Run the whole demo: one SFT run, then RL from it for seeds ``0..seeds-1``; write and return the summary.

    SFT runs in this process with all CPU cores. The RL seeds run in ``workers`` processes
    (default: all seeds at once), the cores shared out among them as torch threads (at least
    one each); ``workers=1`` runs them one after another in this process. ``settings`` replaces
    the defaults (``QUICK`` with ``quick``).
    """
    start = time.perf_counter()
    settings = settings or (QUICK if quick else DemoSettings())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print("== data: the fictional world's single-hop questions and generated train questions, as JSONL", flush=True)
    data = export_world(out / "data", settings.hops, settings.extra_questions, settings.held_out)
    print(f"   {split_size(data, 'train')} train and {split_size(data, 'test')} held-out test questions", flush=True)
    print("== expert episodes on the train questions (SFT data)", flush=True)
    expert_path = out / "expert_sft.jsonl"
    expert = expert_episodes(data, settings, expert_path)
    print(f"   {len(expert)} episodes, success {sum(bool(e.success) for e in expert) / len(expert):.3f}", flush=True)
    print("== SFT (one run, all cores)", flush=True)
    sft = run_sft(data, expert_path, settings, out)
    workers = seeds if workers is None else max(1, min(workers, seeds))
    print(f"== RL from the SFT model, {seeds} seed(s), {workers} at a time", flush=True)
    jobs = [(seed, data, str(out / "sft" / "model"), settings, str(out)) for seed in range(seeds)]
    if workers == 1:
        runs = {job[0]: run_rl(*job) for job in jobs}
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {job[0]: pool.submit(run_rl, *job, threads, job[0] == 0) for job in jobs}
            runs = {seed: future.result() for seed, future in futures.items()}
    seed_list = list(runs)
    results = [
        {"seed": seed, "stage": stage, **sft["results"][stage]} for seed in seed_list for stage in STAGES[:2]
    ] + [run["result"] for run in runs.values()]
    test = paired(results, seed_list)
    check = verdict(results, seed_list, test)
    after_sft = sft["results"]["after_sft"]["success"]
    held_out = {
        seed: [
            (0, after_sft),
            *[p for p in run["held_out"] if p[0] < settings.rl_steps],
            (settings.rl_steps, run["result"]["success"]),
        ]
        for seed, run in runs.items()
    }
    kinds = stage_failure_kinds(out, data, seed_list)
    summary: dict[str, Any] = {
        "results": results,
        "failure_kinds": kinds,
        "paired": test,
        "verdict": check,
        "seeds": seed_list,
        "sft_shared": True,
        "quick": quick,
        "settings": asdict(settings),
        "env_id": ENV_ID,
        "env_kwargs": {
            **{split: settings.env_kwargs(data, split) for split in ("train", "test")},
            "rl": settings.rl_env_kwargs(data),
        },
        "sft": {"key": sft["key"], "sft_losses": sft["sft_losses"], "timings": sft["timings"]},
        "curves": {
            str(seed): {
                **{k: run[k] for k in ("rl_reward", "rl_success", "timings")},
                "held_out_success": held_out[seed],
            }
            for seed, run in runs.items()
        },
        "workers": workers,
        "wall_seconds": time.perf_counter() - start,
    }
    plot(out / "learning_curve.png", results, {seed: run["rl_reward"] for seed, run in runs.items()}, held_out)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print()
    print("Success on held-out questions (greedy; 95% Wilson intervals; one SFT run, RL seeds in columns):")
    print(table(results, seed_list))
    for seed in seed_list:
        row = test["per_seed"][str(seed)]
        print(
            f"seed {seed}: RL − SFT {row['delta']:+.3f} (McNemar exact p = {row['p_value']:.4f}; "
            f"{row['better']} questions gained, {row['worse']} lost)"
        )
    print(verdict_line(check, seed_list))
    from horizongym.training.demo.diagnose import FAILURE_KINDS

    print(f"Held-out failures by kind ({', '.join(FAILURE_KINDS)}; python -m horizongym.training.demo.diagnose):")
    for stage, row in kinds.items():
        print(f"  {stage:<10}" + " / ".join(str(row[k]) for k in FAILURE_KINDS))
    print(f"Wall time {summary['wall_seconds']:.0f} s. Wrote {out / 'summary.json'} and {out / 'learning_curve.png'}.")
    return summary


def stage_failure_kinds(out: Path, data: str, seeds: Sequence[int]) -> dict[str, dict[str, int]]:
    """The failure kinds (:mod:`~horizongym.training.demo.diagnose`) of the SFT model and of each RL seed."""
    from horizongym.training.demo.diagnose import failure_kinds, load_questions
    from horizongym.training.rollouts.store import read_episodes

    questions = load_questions(data)
    files = {"after_sft": out / "sft" / "eval_after_sft.jsonl"}
    files |= {f"seed{seed}": out / f"seed{seed}" / "eval_after_rl.jsonl" for seed in seeds}
    return {stage: failure_kinds(read_episodes(path), questions) for stage, path in files.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m horizongym.training.demo [--seeds N] [--out DIR] [--workers W] [--quick]``: run the demo."""
    from horizongym.training import demo

    description = (demo.__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m horizongym.training.demo", description=description)
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1), default 3")
    parser.add_argument("--out", default="runs/demo", help="output folder, default runs/demo")
    parser.add_argument("--quick", action="store_true", help="toy sizes, to check the pipeline in under a minute")
    parser.add_argument("--workers", type=int, default=None, help="seeds run at once (default: all)")
    parser.add_argument(
        "--advantage", default=None, help="RL's advantage estimator: grpo, eapo (default), eapo+hcapo, hcapo, hca, tree"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change one of DemoSettings' fields, e.g. --set rl_lr=2e-4 --set dynamic_sampling=false",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    try:
        settings = with_overrides(QUICK if args.quick else DemoSettings(), args.set)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    if args.advantage is not None:
        from horizongym.training.advantages import ESTIMATORS

        if args.advantage not in ESTIMATORS:
            parser.error(f"unknown --advantage {args.advantage!r}; choose from {', '.join(sorted(ESTIMATORS))}")
        settings = replace(settings, advantage=args.advantage)
    run_demo(args.seeds, args.out, quick=args.quick, workers=args.workers, settings=settings)
    return 0
