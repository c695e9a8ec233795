"""The demo's RL run for one seed: EAPO with the trainer from the SFT checkpoint, then the held-out
evaluation after RL."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from horizongym.training.demo.episodes import evaluate
from horizongym.training.demo.model import load_model
from horizongym.training.demo.settings import ENV_ID, DemoSettings


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
