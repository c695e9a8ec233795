"""The embedded demo: a tiny byte-level model learns SearchJudge-v0, first by SFT, then by RL (EAPO).

``python -m horizongym.training.demo [--seeds N] [--out runs/demo] [--workers W] [--quick]`` (``make demo``).

Pipeline, for each seed (the seed fixes the model's initial weights, SFT's example order and
the RL sampling):

1. **Model.** :func:`~horizongym.agents.tiny.build_tiny_model` writes a random
   ``LlamaForCausalLM`` with the byte-level tokenizer (nothing is downloaded). The SearchJudge
   protocol is plain tags (``<search>``, ``<judge>``, ``<answer>``) that the env's prompt
   describes, so the tokenizer gets a plain ChatML template that does not render the tool
   schemas: they would add ~1,400 byte tokens to every prompt and teach nothing here.
2. **Data.** The default fictional world (5,000 documents) is exported as a JSONL corpus and
   question file and loaded through ``data="jsonl:CORPUS:QUESTIONS"``: the same documents, the
   same BM25 retrieval, the same protocol and rewards as ``data="fictional"``. The questions are
   the world's single-hop questions with its own split (160 train, 40 held-out test) plus
   ``extra_questions`` (8,000) single-hop train questions that the world's own task builder
   generates with another seed, none of them naming an entity that a test question is about
   (160 questions are far too few for a tiny model to learn to copy names rather than
   memorise them). The test questions are exactly the world's 40. Env kwargs, identical for
   SFT data, RL and evaluation except ``split``: ``top_k=1`` (one document per search),
   ``max_observation_chars=160`` (the page's first sentences, which state the asked attribute
   for most questions), ``max_searches=2`` and ``task_order="by_seed"`` (seed ``i`` is task
   ``i`` of the split).
3. **Expert episodes.** The honest scripted expert plays every train question once; its
   successful episodes are the SFT data (shared by all seeds).
4. **Evaluation** (``before_sft``, ``after_sft``, ``after_rl``): greedy decoding on every
   held-out test question (seeds ``0..39``), the same episodes settings at all three stages;
   success is the env's ``success`` (exact match of the answer).
5. **SFT** with :mod:`~horizongym.training.curriculum`, one AdamW run (warmup, cosine decay)
   through four phases. ``repeat``: a segment of a corpus page, a newline and the segment again,
   loss on the second copy (the pages of held-out questions are left out). This is where the
   model forms induction heads, the circuit that copies from its context; without it a tiny
   byte-level model does not learn to copy the answer out of the page in the time the demo has
   (``python -m horizongym.bench.copy_probe``: held-out answer exact match 0.81 after 600 repeat
   and 1,500 answer steps, 0 without the repeat steps). Then the successful expert episodes,
   each one sequence with the loss on the action tokens (``context_weight`` on the other tokens,
   0 by default): ``question`` (the first turn only, the env's instruction paragraph cut from
   the prompt), ``short`` (whole episodes, the paragraph cut) and ``full`` (whole episodes
   exactly as the policy sees them). The SFT length is set by the time budget (``make demo``:
   3 seeds in under 20 minutes on 2 CPU cores), not trained to convergence.
6. **RL** with the :class:`~horizongym.training.trainer.Trainer`, ``advantage="eapo"`` with a
   std floor (``min_std`` 0.1: a group whose episodes all end with the same reward differs only
   by the discount, which plain normalisation would blow up to advantages of ±1): a fixed number
   of steps, each ``tasks_per_step`` train questions × ``group_size`` sampled episodes
   (temperature 1), one PPO-clip epoch per step.

Seeds run in parallel worker processes (all at once by default, ``--workers``), the CPU cores
shared out among them as torch threads. The machine's throughput is shared too: on 2 cores,
3 seeds at once train about as many tokens per second in all as one seed alone (~35k), so each
seed gets a third of it; ``--seeds 3`` took 1,114 s.

Outputs under ``--out``: ``summary.json`` (``results``: one ``{"seed", "stage", "success",
"mean_reward", "episodes"}`` per seed and stage, plus the verdict, settings, env kwargs, SFT
and RL curves, timings and wall time), ``learning_curve.png`` (training reward per RL step per seed; held-out success at
the three stages), ``expert_sft.jsonl`` (the expert episodes), ``seed<k>/eval_<stage>.jsonl``
(evaluation episodes) and ``seed<k>/rl/`` (the trainer's ``episodes.jsonl``, ``metrics.jsonl``,
TensorBoard logs and final checkpoint). A table of success per stage and seed, with the mean
and sample standard deviation over seeds, is printed at the end.

``--quick`` runs toy sizes (a few tasks, one RL step) to check the pipeline in under a minute;
its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STAGES = ("before_sft", "after_sft", "after_rl")
ENV_ID = "SearchJudge-v0"

CHATML_TEMPLATE = """\
{%- for message in messages -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""
"""ChatML without the tool schemas: the SearchJudge protocol is tags the env's prompt explains."""


@dataclass(frozen=True)
class DemoSettings:
    """Everything that defines a demo run besides the seeds."""

    hops: tuple[int, ...] = (1,)
    extra_questions: int = 8000
    """Single-hop train questions generated over the same world, on top of its own train split."""
    top_k: int = 1
    max_observation_chars: int = 160
    max_searches: int = 2
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    max_new_tokens: int = 64
    sft_tasks: int | None = None
    """Train questions the expert plays (None: all of them)."""
    sft_repeat_steps: int = 400
    """Phase 0: copying a page segment (induction heads, see ``curriculum.repeat_rows``)."""
    sft_repeat_batch_size: int = 32
    sft_question_steps: int = 200
    """Phase 1: the first turn only (question → search), the instruction paragraph cut away."""
    sft_question_batch_size: int = 32
    sft_short_steps: int = 850
    """Phase 2: whole episodes, the instruction paragraph cut away."""
    sft_full_steps: int = 100
    """Phase 3: whole episodes exactly as the policy sees them."""
    sft_batch_size: int = 16
    sft_lr: float = 3e-3
    context_weight: float = 0.0
    eval_tasks: int | None = None
    """Held-out questions evaluated (None: all of them)."""
    rl_steps: int = 12
    tasks_per_step: int = 4
    group_size: int = 8
    rl_lr: float = 1e-4
    eapo_min_std: float = 0.1
    """EAPO's std floor (``training.advantages.eapo``): a group whose episodes all end alike stays quiet."""
    temperature: float = 1.0
    concurrency: int = 8

    def env_kwargs(self, data: str, split: str) -> dict[str, Any]:
        return {
            "data": data,
            "split": split,
            "top_k": self.top_k,
            "max_observation_chars": self.max_observation_chars,
            "max_searches": self.max_searches,
            "task_order": "by_seed",
        }


QUICK = DemoSettings(
    extra_questions=20,
    hidden_size=32,
    num_layers=1,
    num_heads=2,
    max_new_tokens=12,
    sft_tasks=6,
    sft_repeat_steps=2,
    sft_repeat_batch_size=4,
    sft_question_steps=2,
    sft_question_batch_size=4,
    sft_short_steps=2,
    sft_full_steps=2,
    sft_batch_size=2,
    eval_tasks=3,
    rl_steps=1,
    tasks_per_step=2,
    group_size=2,
)


# ----- data ----------------------------------------------------------------------------
def extra_questions(count: int, exclude: set[str], seed: int = 1) -> list[Any]:
    """``count`` new single-hop questions over the default world that name no entity in ``exclude``.

    They come from the world's own task builder with another seed, so they read like its
    questions. A question the world already asks is skipped, and so is one whose text holds an
    excluded name anywhere (also inside another name, as a place in a novel's title).
    """
    from horizongym.envs.search.world import _TaskBuilder, default_world

    world = default_world()
    builder = _TaskBuilder(world._gen, seed)
    builder.seen.update(t.question for t in world.tasks)
    questions: list[Any] = []
    while len(questions) < count:
        task = builder.chain(1)
        if task is not None and not any(name in task.question for name in exclude):
            questions.append(task)
    return questions


def export_world(folder: Path, hops: Sequence[int], extra: int) -> str:
    """Write the default world's corpus and questions as JSONL; return the data spec.

    The questions are the world's ``hops``-hop questions with its own train/test split
    (comparison questions are left out: they always need two pages), plus ``extra`` generated
    single-hop train questions that name no entity a test question is about. Files are
    rewritten only when their content changes, so the env's corpus and index caches (keyed by
    content) are reused.
    """
    from horizongym.envs.search.world import default_world

    world = default_world()
    folder.mkdir(parents=True, exist_ok=True)
    corpus = "".join(json.dumps({"id": d.id, "title": d.title, "text": d.text}) + "\n" for d in world.iter_documents())
    own = [t for t in world.tasks if t.hops in hops and t.kind != "comparison"]
    tested = {t.meta["chain"][0] for t in own if t.meta["split"] == "test"}
    rows = [(t.id, t, t.meta["split"]) for t in own]
    rows += [(f"extra-{i:05d}", t, "train") for i, t in enumerate(extra_questions(extra, tested))]
    questions = "".join(
        json.dumps(
            {
                "id": task_id,
                "question": t.question,
                "answers": list(t.answers),
                "gold_doc_ids": list(t.gold_doc_ids),
                "type": t.kind,
                "hops": t.hops,
                "split": split,
            }
        )
        + "\n"
        for task_id, t, split in rows
    )
    name = f"questions-hops{'-'.join(map(str, hops))}-extra{extra}.jsonl"
    corpus_path, questions_path = folder / "corpus.jsonl", folder / name
    for path, text in ((corpus_path, corpus), (questions_path, questions)):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return f"jsonl:{corpus_path.resolve()}:{questions_path.resolve()}"


def copy_pages(data: str) -> list[str]:
    """The corpus texts for the copying phase, without the pages the held-out questions are about."""
    _, corpus_path, questions_path = data.split(":")
    held_out = {
        doc_id
        for line in Path(questions_path).read_text(encoding="utf-8").splitlines()
        if (row := json.loads(line))["split"] == "test"
        for doc_id in row["gold_doc_ids"]
    }
    rows = (json.loads(line) for line in Path(corpus_path).read_text(encoding="utf-8").splitlines())
    return [row["text"] for row in rows if row["id"] not in held_out]


def split_size(data: str, split: str) -> int:
    from horizongym.envs.search.data import load_search_data

    return len(load_search_data(data).split(split))


# ----- model ---------------------------------------------------------------------------
def build_model(folder: Path, settings: DemoSettings, seed: int) -> tuple[Any, Any]:
    """A fresh tiny model (weights fixed by ``seed``) and its byte-level tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from horizongym.agents.tiny import build_tiny_model

    build_tiny_model(
        folder,
        seed=seed,
        hidden_size=settings.hidden_size,
        num_layers=settings.num_layers,
        num_heads=settings.num_heads,
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHATML_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model, tokenizer


# ----- rollouts ------------------------------------------------------------------------
def expert_episodes(data: str, settings: DemoSettings, path: Path, split: str = "train") -> list[Any]:
    """The scripted expert on the ``split`` questions (``sft_tasks`` of them), stored at ``path``."""
    from horizongym.agents.scripted import expert_for
    from horizongym.training.rollout import EnvRecipe, RolloutEngine
    from horizongym.training.store import EpisodeStore

    path.unlink(missing_ok=True)
    count = split_size(data, split) if settings.sft_tasks is None else min(settings.sft_tasks, split_size(data, split))
    with (
        EpisodeStore(path) as store,
        RolloutEngine(
            EnvRecipe(ENV_ID, settings.env_kwargs(data, split)),
            expert_for(ENV_ID),
            concurrency=settings.concurrency,
            store=store,
            progress=False,
        ) as engine,
    ):
        return sorted(engine.run_sync(count, 1, seed=0), key=lambda e: e.seed)


def evaluate(model: Any, tokenizer: Any, data: str, settings: DemoSettings, path: Path) -> dict[str, Any]:
    """Greedy episodes on the held-out questions (seeds ``0..n-1``), stored at ``path``."""
    import numpy as np

    from horizongym.agents.hf import TransformersPolicy
    from horizongym.training.rollout import EnvRecipe, RolloutEngine
    from horizongym.training.store import EpisodeStore

    path.unlink(missing_ok=True)
    count = split_size(data, "test") if settings.eval_tasks is None else settings.eval_tasks
    policy = TransformersPolicy(
        model,
        tokenizer,
        max_new_tokens=settings.max_new_tokens,
        temperature=0.0,
        max_batch_size=settings.concurrency,
    )

    async def run(engine: RolloutEngine) -> list[Any]:
        try:
            return await engine.run(count, 1, seed=0)
        finally:
            await policy.aclose()

    with (
        EpisodeStore(path) as store,
        RolloutEngine(
            EnvRecipe(ENV_ID, settings.env_kwargs(data, "test")),
            policy,
            concurrency=settings.concurrency,
            store=store,
            progress=False,
        ) as engine,
    ):
        episodes = asyncio.run(run(engine))
    return {
        "success": float(np.mean([bool(e.success) for e in episodes])),
        "mean_reward": float(np.mean([e.total_reward for e in episodes])),
        "episodes": len(episodes),
        "episodes_path": str(path),
    }


# ----- one seed ------------------------------------------------------------------------
def sft(
    model: Any, tokenizer: Any, expert: list[Any], pages: list[str], settings: DemoSettings, seed: int, log: Any
) -> Any:
    """The four SFT phases: copying ``pages``, then the successful expert episodes (module docstring)."""
    from horizongym.training.curriculum import Phase, episode_rows, repeat_rows, train_phases, trim_first_message

    cut = trim_first_message("Question:")
    weight = settings.context_weight
    repeat = settings.sft_repeat_steps * settings.sft_repeat_batch_size
    phases = [
        Phase(
            "repeat",
            repeat_rows(tokenizer, pages, repeat, seed=seed),
            settings.sft_repeat_steps,
            settings.sft_repeat_batch_size,
        ),
        Phase(
            "question",
            episode_rows(tokenizer, expert, edit=cut, turns=1, context_weight=weight),
            settings.sft_question_steps,
            settings.sft_question_batch_size,
        ),
        Phase(
            "short",
            episode_rows(tokenizer, expert, edit=cut, context_weight=weight),
            settings.sft_short_steps,
            settings.sft_batch_size,
        ),
        Phase(
            "full",
            episode_rows(tokenizer, expert, context_weight=weight),
            settings.sft_full_steps,
            settings.sft_batch_size,
        ),
    ]
    return train_phases(model, phases, lr=settings.sft_lr, seed=seed, pad_token_id=int(tokenizer.pad_token_id), log=log)


def run_seed(
    seed: int, data: str, expert_path: str, settings: DemoSettings, out: str, threads: int = 0
) -> dict[str, Any]:
    """Before SFT, SFT, after SFT, RL, after RL for one seed; returns its results and curves.

    ``threads`` > 0 sets torch's intra-op threads (for a worker process).
    """
    import torch

    from horizongym.training.store import read_episodes
    from horizongym.training.trainer import TrainConfig, Trainer

    if threads > 0:
        torch.set_num_threads(threads)

    def log(line: str) -> None:
        print(f"[seed {seed}] {line}", flush=True)

    folder = Path(out) / f"seed{seed}"
    if folder.exists():
        shutil.rmtree(folder)
    model, tokenizer = build_model(folder / "init", settings, seed)
    expert = [e for e in read_episodes(expert_path) if e.success]
    results: list[dict[str, Any]] = []

    def stage(name: str) -> None:
        result = {
            "seed": seed,
            "stage": name,
            **evaluate(model, tokenizer, data, settings, folder / f"eval_{name}.jsonl"),
        }
        log(f"{name}: held-out success {result['success']:.3f}, mean reward {result['mean_reward']:.3f}")
        results.append(result)

    timings: dict[str, float] = {}
    start = time.perf_counter()
    stage("before_sft")
    log(f"SFT on {len(expert)} successful expert episodes")
    sft_start = time.perf_counter()
    losses = sft(model, tokenizer, expert, copy_pages(data), settings, seed, log)
    timings["sft_seconds"] = time.perf_counter() - sft_start
    stage("after_sft")
    log(f"RL (EAPO), {settings.rl_steps} steps")
    rl_start = time.perf_counter()
    config = TrainConfig(
        env_id=ENV_ID,
        env_kwargs=settings.env_kwargs(data, "train"),
        advantage="eapo",
        advantage_options={"min_std": settings.eapo_min_std},
        group_size=settings.group_size,
        tasks_per_step=settings.tasks_per_step,
        steps=settings.rl_steps,
        lr=settings.rl_lr,
        micro_batch_size=8,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        concurrency=settings.concurrency,
        eval_every=0,
        seed=seed,
        out_dir=str(folder / "rl"),
        deterministic=False,
        device="cpu",
    )
    records = Trainer(config, model, tokenizer, progress=False).train()
    timings["rl_seconds"] = time.perf_counter() - rl_start
    log("RL reward per step " + " ".join(f"{r['reward_mean']:.2f}" for r in records))
    stage("after_rl")
    timings["seconds"] = time.perf_counter() - start
    return {
        "results": results,
        "sft_losses": losses,
        "rl_reward": [r["reward_mean"] for r in records],
        "rl_success": [r["success_rate"] for r in records],
        "timings": timings,
    }


# ----- reporting -----------------------------------------------------------------------
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


def plot(path: Path, runs: dict[int, dict[str, Any]]) -> None:
    """Training reward per RL step per seed, and held-out success at the three stages."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for seed, run in runs.items():
        steps = range(1, len(run["rl_reward"]) + 1)
        left.plot(steps, run["rl_reward"], marker="o", markersize=3, label=f"seed {seed}")
    left.set(xlabel="RL step", ylabel="mean training reward", title="RL (EAPO) on train questions")
    left.grid(alpha=0.3)
    left.legend()
    for seed, run in runs.items():
        values = [next(r["success"] for r in run["results"] if r["stage"] == s) for s in STAGES]
        right.plot(range(len(STAGES)), values, marker="o", alpha=0.6, label=f"seed {seed}")
    means = [
        statistics.fmean(next(r["success"] for r in run["results"] if r["stage"] == s) for run in runs.values())
        for s in STAGES
    ]
    right.plot(range(len(STAGES)), means, color="black", linewidth=2.5, marker="s", label="mean")
    right.set_xticks(range(len(STAGES)), list(STAGES))
    right.set(ylabel="success (exact match)", title="held-out questions, greedy", ylim=(-0.02, 1.02))
    right.grid(alpha=0.3)
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ----- entry point ---------------------------------------------------------------------
def run_demo(
    seeds: int = 3, out: str | Path = "runs/demo", *, quick: bool = False, workers: int | None = None
) -> dict[str, Any]:
    """Run the whole demo for seeds ``0..seeds-1``; write and return the summary.

    Seeds run in ``workers`` processes (default: all seeds at once), the CPU cores shared out
    among them as torch threads (at least one each); ``workers=1`` runs them one after another
    in this process.
    """
    start = time.perf_counter()
    settings = QUICK if quick else DemoSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print("== data: the fictional world's single-hop questions and generated train questions, as JSONL", flush=True)
    data = export_world(out / "data", settings.hops, settings.extra_questions)
    print(f"   {split_size(data, 'train')} train and {split_size(data, 'test')} held-out test questions", flush=True)
    print("== expert episodes on the train questions (SFT data)", flush=True)
    expert_path = out / "expert_sft.jsonl"
    expert = expert_episodes(data, settings, expert_path)
    print(f"   {len(expert)} episodes, success {sum(bool(e.success) for e in expert) / len(expert):.3f}", flush=True)
    workers = seeds if workers is None else max(1, min(workers, seeds))
    print(f"== {seeds} seed(s), {workers} at a time", flush=True)
    jobs = [(seed, data, str(expert_path), settings, str(out)) for seed in range(seeds)]
    if workers == 1:
        runs = {job[0]: run_seed(*job) for job in jobs}
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {job[0]: pool.submit(run_seed, *job, threads) for job in jobs}
            runs = {seed: future.result() for seed, future in futures.items()}
    results = [r for run in runs.values() for r in run["results"]]
    seed_list = list(runs)
    check = verdict(results, seed_list)
    summary: dict[str, Any] = {
        "results": results,
        "verdict": check,
        "seeds": seed_list,
        "quick": quick,
        "settings": asdict(settings),
        "env_id": ENV_ID,
        "env_kwargs": {split: settings.env_kwargs(data, split) for split in ("train", "test")},
        "curves": {
            str(seed): {k: run[k] for k in ("sft_losses", "rl_reward", "rl_success", "timings")}
            for seed, run in runs.items()
        },
        "workers": workers,
        "wall_seconds": time.perf_counter() - start,
    }
    plot(out / "learning_curve.png", runs)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print()
    print("Success on held-out questions (greedy):")
    print(table(results, seed_list))
    print(
        f"RL − SFT: {check['rl_minus_sft']:+.3f}; seed spread (largest std): {check['seed_spread']:.3f}; "
        f"RL beats SFT beyond the spread: {'yes' if check['rl_beats_sft_beyond_spread'] else 'no'} "
        f"({check['seeds_improved']} of {len(seed_list)} seeds improved)"
    )
    print(f"Wall time {summary['wall_seconds']:.0f} s. Wrote {out / 'summary.json'} and {out / 'learning_curve.png'}.")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m horizongym.training.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1), default 3")
    parser.add_argument("--out", default="runs/demo", help="output folder, default runs/demo")
    parser.add_argument("--quick", action="store_true", help="toy sizes, to check the pipeline in under a minute")
    parser.add_argument("--workers", type=int, default=None, help="seeds run at once (default: all)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    run_demo(args.seeds, args.out, quick=args.quick, workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
