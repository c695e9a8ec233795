"""The embedded demo: a tiny byte-level model learns SearchJudge-v0, first by SFT, then by RL (EAPO).

``python -m horizongym.training.demo [--seeds N] [--out runs/demo] [--workers W] [--quick]`` (``make demo``).

Pipeline: one SFT run, then RL from the SFT model once per seed (the seed fixes RL's rollout
sampling), so that the spread over seeds is the spread of RL itself and every seed's RL
starts from the same, measured SFT model. (Three SFT runs to a competent model do not fit the
demo's budget of 20 minutes on 2 CPU cores; one SFT run with all cores does.)

1. **Model.** :func:`~horizongym.agents.tiny.build_tiny_model` writes a random
   ``LlamaForCausalLM`` (weights fixed by ``sft_seed``) with the byte-level tokenizer (nothing
   is downloaded). The SearchJudge protocol is plain tags (``<search>``, ``<judge>``,
   ``<answer>``), so the tokenizer gets a plain ChatML template that does not render the tool
   schemas: they would add ~1,400 byte tokens to every prompt and teach nothing here.
2. **Data.** The default fictional world (5,000 documents) is exported as a JSONL corpus and
   question file and loaded through ``tasks="jsonl:CORPUS:QUESTIONS"``: the same documents, the
   same BM25 retrieval, the same protocol and rewards as ``tasks="fictional"``. The questions are
   the world's single-hop questions with its own split (160 train, 40 held-out test) plus
   ``extra_questions`` (8,000) single-hop train questions that the world's own task builder
   generates with another seed, none of them naming an entity that a test question is about
   (160 questions are far too few for a tiny model to learn to copy names rather than
   memorise them). The test questions are exactly the world's 40. Env kwargs, identical for
   SFT data, RL and evaluation except ``split``: ``top_k=1`` (one document per search),
   ``max_observation_chars=160`` (the page's first sentences, which state the asked attribute
   for most questions), ``max_searches=2``, ``instructions=False`` (the first message is the
   ``Question: …`` line without the protocol paragraph, which the model learns from the
   episodes instead of reading ~560 bytes of it every round) and ``task_order="by_seed"``
   (seed ``i`` is task ``i`` of the split).
3. **Expert episodes.** The honest scripted expert plays every train question once; its
   successful episodes are the SFT data.
4. **Evaluation** (``before_sft``, ``after_sft``, ``after_rl``): greedy decoding on every
   held-out test question (seeds ``0..39``), the same episode settings at all three stages;
   success is the env's ``success`` (exact match of the answer).
5. **SFT** with :mod:`~horizongym.training.curriculum`, one AdamW run (warmup, cosine decay)
   through three phases. ``repeat``: a segment of a corpus page, a newline and the segment
   again, loss on the second copy (the pages of held-out questions are left out). This is where
   the model forms induction heads, the circuit that copies from its context; without it a tiny
   byte-level model does not learn to copy the answer out of the page in the time the demo has
   (``python -m horizongym.bench.copy_probe``: held-out answer exact match 0.81 after 600 repeat
   and 1,500 answer steps, 0 without the repeat steps). Then the successful expert episodes,
   each one sequence with the loss on the action tokens (``context_weight`` on the other tokens,
   0 by default): ``question`` (the first turn only) and ``episodes`` (whole episodes). The SFT
   length is set by the time budget, not trained to convergence. The SFT run is saved to
   ``sft/model`` and reused by a later run whose settings and data hash the same
   (:meth:`DemoSettings.sft_key`), so changing only RL settings skips it.
6. **RL** with the :class:`~horizongym.training.trainer.Trainer`, ``advantage="eapo"`` with a
   std floor (``min_std`` 0.1: a group whose episodes all end with the same reward differs only
   by the discount, which plain normalisation would blow up to advantages of ±1): a fixed number
   of steps, each ``tasks_per_step`` train questions × ``group_size`` sampled episodes
   (temperature 1), one PPO-clip epoch per step in AdamW steps of 4 micro-batches of 8 samples
   (about 5 optimizer steps per RL step).

SFT runs in the main process with all cores. The RL seeds run in parallel worker processes (all
at once by default, ``--workers``), the cores shared out among them as torch threads. Measured
with ``python -m horizongym.training.demo --seeds 3`` on 2 cores: 838 s in all (SFT 490 s, the
three RL seeds side by side about 327 s, 60 steps of 8 × 8 episodes each); held-out success 0
before SFT, 0.625 after SFT, 0.675 / 0.625 / 0.650 after RL (seeds 0, 1, 2), a gain of 0.025
that is not larger than the spread over seeds (0.025).

Outputs under ``--out``: ``summary.json`` (``results``: one ``{"seed", "stage", "success",
"mean_reward", "episodes"}`` per seed and stage, the two SFT stages the shared run's, plus the
verdict, settings, env kwargs, SFT losses, RL curves, timings and wall time),
``learning_curve.png`` (training reward per RL step per seed; held-out success at the three
stages), ``expert_sft.jsonl`` (the expert episodes), ``sft/`` (``eval_before_sft.jsonl``,
``eval_after_sft.jsonl``, ``sft.json``, the model), ``seed<k>/eval_after_rl.jsonl`` and
``seed<k>/rl/`` (the trainer's ``episodes.jsonl``, ``metrics.jsonl``, TensorBoard logs and
final checkpoint). A table of success per stage and RL seed, with the mean and sample
standard deviation over seeds, is printed at the end.

``--quick`` runs toy sizes (a few tasks, one RL step) to check the pipeline in under a minute;
its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
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
    """Everything that defines a demo run besides the RL seeds."""

    hops: tuple[int, ...] = (1,)
    extra_questions: int = 8000
    """Single-hop train questions generated over the same world, on top of its own train split."""
    top_k: int = 1
    max_observation_chars: int = 160
    max_searches: int = 2
    instructions: bool = False
    """Whether the first message carries the env's protocol paragraph (``SearchJudgeEnv``)."""
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    max_new_tokens: int = 64
    sft_seed: int = 0
    """Fixes the model's initial weights and SFT's example order."""
    sft_tasks: int | None = None
    """Train questions the expert plays (None: all of them)."""
    sft_repeat_steps: int = 1000
    """Phase 1: copying a page segment (induction heads, see ``curriculum.repeat_rows``).

    With 500 steps whether the copy skill formed depended on the seed (held-out success after SFT
    0.025 with ``sft_seed`` 0); with 1,000 it was 0.625 and 0.500 with ``sft_seed`` 0 and 1."""
    sft_repeat_batch_size: int = 32
    sft_question_steps: int = 200
    """Phase 2: the first turn only (question → search)."""
    sft_question_batch_size: int = 32
    sft_episode_steps: int = 2400
    """Phase 3: whole episodes."""
    sft_batch_size: int = 16
    sft_lr: float = 3e-3
    context_weight: float = 0.0
    eval_tasks: int | None = None
    """Held-out questions evaluated (None: all of them)."""
    rl_steps: int = 60
    tasks_per_step: int = 8
    group_size: int = 8
    rl_lr: float = 1e-4
    rl_micro_batch_size: int = 8
    rl_grad_accumulation: int | None = 4
    """Micro-batches per optimizer step (None: one optimizer step on all of an RL step's samples)."""
    rl_ppo_epochs: int = 1
    eapo_min_std: float = 0.1
    """EAPO's std floor (``training.advantages.eapo``): a group whose episodes all end alike stays quiet."""
    temperature: float = 1.0
    concurrency: int = 8

    def env_kwargs(self, data: str, split: str) -> dict[str, Any]:
        return {
            "tasks": data,
            "split": split,
            "top_k": self.top_k,
            "max_observation_chars": self.max_observation_chars,
            "max_searches": self.max_searches,
            "instructions": self.instructions,
            "task_order": "by_seed",
        }

    def sft_key(self, data: str) -> str:
        """A content hash of everything the SFT checkpoint depends on (settings and data files)."""
        digest = hashlib.sha256()
        fields = {k: v for k, v in asdict(self).items() if k not in RL_FIELDS}
        digest.update(json.dumps(fields, sort_keys=True).encode())
        for path in data.split(":")[1:]:
            digest.update(Path(path).read_bytes())
        return digest.hexdigest()[:16]


RL_FIELDS = frozenset(
    {
        "rl_steps",
        "tasks_per_step",
        "group_size",
        "rl_lr",
        "rl_micro_batch_size",
        "rl_grad_accumulation",
        "rl_ppo_epochs",
        "eapo_min_std",
        "temperature",
    }
)
"""The settings only RL reads: changing them keeps the SFT checkpoint."""

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
    sft_episode_steps=2,
    sft_batch_size=2,
    eval_tasks=3,
    rl_steps=1,
    tasks_per_step=2,
    group_size=2,
)


# ----- data ----------------------------------------------------------------------------
def extra_questions(count: int, exclude: set[str], seed: int = 1) -> list[Any]:
    """``count`` new single-hop questions over the default world that name no entity in ``exclude``.

    They come from the world's own question builder with another seed, so they read like its
    questions. A question the world already asks is skipped, and so is one whose text holds an
    excluded name anywhere (also inside another name, as a place in a novel's title).
    """
    from horizongym.envs.search.world import default_world

    fresh = default_world().new_questions(seed, hops=1)
    return list(itertools.islice((t for t in fresh if not any(name in t.question for name in exclude)), count))


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
    from horizongym.envs.search.env import SearchJudgeEnv

    return len(SearchJudgeEnv(tasks=data, split=split).tasks)


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
    from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine
    from horizongym.training.rollouts.store import EpisodeStore

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
    from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine
    from horizongym.training.rollouts.store import EpisodeStore

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


# ----- SFT, once ------------------------------------------------------------------------
def sft_phases(tokenizer: Any, expert: list[Any], pages: list[str], settings: DemoSettings) -> list[Any]:
    """The three SFT phases: copying ``pages``, then the successful expert episodes (module docstring)."""
    from horizongym.training.curriculum import Phase, episode_rows, repeat_rows

    weight = settings.context_weight
    repeat = settings.sft_repeat_steps * settings.sft_repeat_batch_size
    return [
        Phase(
            "repeat",
            repeat_rows(tokenizer, pages, repeat, seed=settings.sft_seed),
            settings.sft_repeat_steps,
            settings.sft_repeat_batch_size,
        ),
        Phase(
            "question",
            episode_rows(tokenizer, expert, turns=1, context_weight=weight),
            settings.sft_question_steps,
            settings.sft_question_batch_size,
        ),
        Phase(
            "episodes",
            episode_rows(tokenizer, expert, context_weight=weight),
            settings.sft_episode_steps,
            settings.sft_batch_size,
        ),
    ]


def load_model(folder: Path) -> tuple[Any, Any]:
    """A model and tokenizer saved with ``save_pretrained`` (the SFT checkpoint)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHATML_TEMPLATE
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), tokenizer


def run_sft(data: str, expert_path: Path, settings: DemoSettings, out: Path) -> dict[str, Any]:
    """Before SFT, SFT, after SFT; the model is saved to ``out/sft/model``.

    A finished SFT run whose :meth:`DemoSettings.sft_key` matches is reused as it is.
    """
    from horizongym.training.curriculum import train_phases
    from horizongym.training.rollouts.store import read_episodes

    folder = out / "sft"
    key = settings.sft_key(data)
    record_path = folder / "sft.json"
    if record_path.exists():
        record: dict[str, Any] = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("key") == key and (folder / "model").is_dir():
            print(f"   reusing the SFT run in {folder} (same settings and data, key {key})", flush=True)
            return record
    if folder.exists():
        shutil.rmtree(folder)

    def log(line: str) -> None:
        print(f"[sft] {line}", flush=True)

    model, tokenizer = build_model(folder / "init", settings, settings.sft_seed)
    expert = sorted((e for e in read_episodes(expert_path) if e.success), key=lambda e: e.seed)
    start = time.perf_counter()
    before = evaluate(model, tokenizer, data, settings, folder / "eval_before_sft.jsonl")
    log(f"before_sft: held-out success {before['success']:.3f}, mean reward {before['mean_reward']:.3f}")
    log(f"SFT on {len(expert)} successful expert episodes")
    sft_start = time.perf_counter()
    phases = sft_phases(tokenizer, expert, copy_pages(data), settings)
    pad = int(tokenizer.pad_token_id)
    losses = train_phases(
        model, phases, lr=settings.sft_lr, seed=settings.sft_seed, pad_token_id=pad, log=log, progress=True
    )
    sft_seconds = time.perf_counter() - sft_start
    after = evaluate(model, tokenizer, data, settings, folder / "eval_after_sft.jsonl")
    log(f"after_sft: held-out success {after['success']:.3f}, mean reward {after['mean_reward']:.3f}")
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    record = {
        "key": key,
        "results": {"before_sft": before, "after_sft": after},
        "sft_losses": losses,
        "timings": {"sft_seconds": sft_seconds, "seconds": time.perf_counter() - start},
    }
    record_path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


# ----- RL, per seed --------------------------------------------------------------------
def run_rl(
    seed: int, data: str, checkpoint: str, settings: DemoSettings, out: str, threads: int = 0, progress: bool = True
) -> dict[str, Any]:
    """RL from the SFT checkpoint with ``seed`` (its rollout sampling), then after RL; returns figures and curves.

    ``threads`` > 0 sets torch's intra-op threads (for a worker process); ``progress`` shows
    the trainer's bar (one seed's among parallel workers, as they keep pace).
    """
    import torch

    from horizongym.training.config import TrainConfig
    from horizongym.training.trainer import Trainer

    if threads > 0:
        torch.set_num_threads(threads)
    folder = Path(out) / f"seed{seed}"
    if folder.exists():
        shutil.rmtree(folder)
    model, tokenizer = load_model(Path(checkpoint))
    print(f"[seed {seed}] RL (EAPO), {settings.rl_steps} steps", flush=True)
    start = time.perf_counter()
    config = TrainConfig(
        env_id=ENV_ID,
        env_kwargs=settings.env_kwargs(data, "train"),
        advantage="eapo",
        advantage_options={"min_std": settings.eapo_min_std},
        group_size=settings.group_size,
        tasks_per_step=settings.tasks_per_step,
        steps=settings.rl_steps,
        lr=settings.rl_lr,
        micro_batch_size=settings.rl_micro_batch_size,
        grad_accumulation=settings.rl_grad_accumulation,
        ppo_epochs=settings.rl_ppo_epochs,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        concurrency=settings.concurrency,
        eval_every=0,
        seed=seed,
        out_dir=str(folder / "rl"),
        deterministic=False,
        device="cpu",
    )
    records = Trainer(config, model, tokenizer, progress=progress).train()
    rl_seconds = time.perf_counter() - start
    print(f"[seed {seed}] RL reward per step " + " ".join(f"{r['reward_mean']:.2f}" for r in records), flush=True)
    result = {
        "seed": seed,
        "stage": "after_rl",
        **evaluate(model, tokenizer, data, settings, folder / "eval_after_rl.jsonl"),
    }
    print(
        f"[seed {seed}] after_rl: held-out success {result['success']:.3f}, mean reward {result['mean_reward']:.3f}",
        flush=True,
    )
    return {
        "result": result,
        "rl_reward": [r["reward_mean"] for r in records],
        "rl_success": [r["success_rate"] for r in records],
        "timings": {"rl_seconds": rl_seconds, "seconds": time.perf_counter() - start},
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


# ----- entry point ---------------------------------------------------------------------
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
    data = export_world(out / "data", settings.hops, settings.extra_questions)
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
    check = verdict(results, seed_list)
    summary: dict[str, Any] = {
        "results": results,
        "verdict": check,
        "seeds": seed_list,
        "sft_shared": True,
        "quick": quick,
        "settings": asdict(settings),
        "env_id": ENV_ID,
        "env_kwargs": {split: settings.env_kwargs(data, split) for split in ("train", "test")},
        "sft": {"key": sft["key"], "sft_losses": sft["sft_losses"], "timings": sft["timings"]},
        "curves": {
            str(seed): {k: run[k] for k in ("rl_reward", "rl_success", "timings")} for seed, run in runs.items()
        },
        "workers": workers,
        "wall_seconds": time.perf_counter() - start,
    }
    plot(out / "learning_curve.png", results, {seed: run["rl_reward"] for seed, run in runs.items()})
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print()
    print("Success on held-out questions (greedy; one SFT run, RL seeds in columns):")
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
