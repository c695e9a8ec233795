"""The demo's RL run for one seed: the trainer from the SFT checkpoint (EAPO by default), the
held-out success every ``eval_every`` steps, then the held-out evaluation after RL."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from horizongym.training.demo.data import split_size
from horizongym.training.demo.episodes import evaluate
from horizongym.training.demo.model import load_model
from horizongym.training.demo.settings import ENV_ID, DemoSettings


def run_rl(
    seed: int, data: str, checkpoint: str, settings: DemoSettings, out: str, threads: int = 0, progress: bool = True
) -> dict[str, Any]:
    """RL from the SFT checkpoint with ``seed``, then after RL; returns figures and curves.

    The seed fixes the rollouts' sampling and the order of the training questions: RL draws each
    task with the env's RNG (``task_order="random"``) from task seeds that start at
    ``seed * TASK_SEED_STRIDE``, so seeds see different questions in a different order.
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
    print(f"[seed {seed}] RL ({settings.advantage}), {settings.rl_steps} steps", flush=True)
    start = time.perf_counter()
    held_out = settings.env_kwargs(data, "test")
    options = {"min_std": settings.eapo_min_std} if settings.advantage == "eapo" else {}
    config = TrainConfig(
        env_id=ENV_ID,
        env_kwargs=settings.rl_env_kwargs(data),
        eval_env_kwargs=held_out,
        advantage=settings.advantage,
        advantage_options=options,
        group_size=settings.group_size,
        tasks_per_step=settings.tasks_per_step,
        steps=settings.rl_steps,
        lr=settings.rl_lr,
        warmup_steps=settings.rl_warmup_steps,
        micro_batch_size=settings.rl_micro_batch_size,
        grad_accumulation=settings.rl_grad_accumulation,
        ppo_epochs=settings.rl_ppo_epochs,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        dynamic_sampling=settings.dynamic_sampling,
        sampling_rounds=settings.sampling_rounds,
        eval_every=settings.eval_every,
        eval_tasks=split_size(data, "test") if settings.eval_tasks is None else settings.eval_tasks,
        eval_seed_start=0,
        task_seed_start=seed * TASK_SEED_STRIDE,
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
        f"[seed {seed}] after_rl: held-out success {result['success']:.3f} "
        f"[{result['ci_low']:.3f}, {result['ci_high']:.3f}], mean reward {result['mean_reward']:.3f}",
        flush=True,
    )
    return {
        "result": result,
        "rl_reward": [r["reward_mean"] for r in records],
        "rl_success": [r["success_rate"] for r in records],
        "held_out": [(r["step"], r["eval"]["success_rate"]) for r in records if "eval" in r],
        "timings": {"rl_seconds": rl_seconds, "seconds": time.perf_counter() - start},
    }


TASK_SEED_STRIDE = 1_000_000
"""Task seeds of RL seed ``s`` start at ``s * TASK_SEED_STRIDE`` (seed ranges never overlap)."""
