"""The demo's one SFT run: the model before SFT, three curriculum phases (copying, the first turn,
whole episodes), the model after SFT; reused when its settings and data hash the same."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from horizongym.training.demo.data import copy_pages
from horizongym.training.demo.episodes import evaluate
from horizongym.training.demo.model import build_model
from horizongym.training.demo.settings import DemoSettings


def sft_phases(tokenizer: Any, expert: list[Any], pages: list[str], settings: DemoSettings) -> list[Any]:
    """The three SFT phases: copying ``pages``, then the successful expert episodes (the package docstring)."""
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
