"""Training checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is a folder ``OUT/checkpoints/step-NNNNNNNN`` holding

* ``model.pt``: the model's state dict, or only the LoRA adapters' when the model is a
  ``peft`` model (the frozen base weights come from the initial model);
* ``trainer.pt``: optimizer and LR-scheduler state, every RNG state (Python ``random``,
  NumPy, torch CPU and each CUDA device, and the trainer's own ``random.Random``) and the
  data position (step, next task seed, episodes consumed);
* ``config.json`` and ``position.json``: the run's config and data position, readable;
* ``ranks.json``: how many data-parallel ranks trained the run (a resumed run must have as many).

The folder is written under a temporary name and renamed into place, so a crash never
leaves a half-written checkpoint under a ``step-*`` name. Files load with
``torch.load(weights_only=True)``: tensors and plain Python values only.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINTS = "checkpoints"
RANKS_FILE = "ranks.json"
_NAME = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class DataPosition:
    """Where the trainer is in its data: steps done, the next training task seed, episodes used."""

    step: int
    next_seed: int
    episodes_consumed: int


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` returns besides the state it restores in place."""

    path: Path
    position: DataPosition
    config: dict[str, Any]
    trainer_rng: tuple[Any, ...]


def is_lora(model: Any) -> bool:
    """Whether ``model`` is a ``peft`` model (its checkpoints then hold the adapters only)."""
    return hasattr(model, "peft_config")


def rng_states() -> dict[str, Any]:
    """The global RNG states, as tensors and plain values."""
    state = np.random.get_state(legacy=True)
    assert isinstance(state, tuple)
    key, pos, has_gauss, gauss = state[1:]
    return {
        "python": random.getstate(),
        "numpy": (torch.from_numpy(np.asarray(key, dtype=np.int64)), int(pos), int(has_gauss), float(gauss)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    random.setstate(_as_random_state(states["python"]))
    key, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state(("MT19937", key.numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_random_state(state: Any) -> tuple[Any, ...]:
    """``random.setstate`` wants tuples; a round trip may hand back lists."""
    version, internal, gauss = state
    return (int(version), tuple(int(x) for x in internal), gauss)


def checkpoint_dir(out_dir: str | os.PathLike[str], step: int) -> Path:
    return Path(out_dir) / CHECKPOINTS / f"step-{step:08d}"


def latest_checkpoint(out_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint folder of the highest step under ``out_dir``, or ``None``."""
    root = Path(out_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return max(found)[1] if found else None


def save_checkpoint(
    out_dir: str | os.PathLike[str],
    *,
    model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    position: DataPosition,
    config: dict[str, Any],
    trainer_rng: random.Random,
    world_size: int = 1,
) -> Path:
    """Write a checkpoint for ``position.step`` atomically; return its folder.

    ``world_size`` is the number of data-parallel ranks that trained the run.
    """
    final = checkpoint_dir(out_dir, position.step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    torch.save(_model_state(model), tmp / "model.pt")
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_states(),
            "trainer_rng": trainer_rng.getstate(),
            "position": asdict(position),
        },
        tmp / "trainer.pt",
    )
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
    (tmp / "position.json").write_text(json.dumps(asdict(position), indent=2) + "\n")
    (tmp / RANKS_FILE).write_text(json.dumps({"world_size": world_size}) + "\n")
    for file in tmp.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():
        stale = final.parent / f".{final.name}.old-{os.getpid()}"
        final.rename(stale)
        tmp.rename(final)
        shutil.rmtree(stale)
    else:
        tmp.rename(final)
    return final


def checkpoint_world_size(path: str | os.PathLike[str]) -> int:
    """The number of data-parallel ranks that trained the checkpoint ``path`` (1 when it does not say)."""
    file = Path(path) / RANKS_FILE
    if not file.is_file():
        return 1
    return int(json.loads(file.read_text())["world_size"])


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: Any,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    restore_rng: bool = True,
) -> Checkpoint:
    """Load the weights (and optimizer, scheduler and RNG states) of ``path`` in place."""
    path = Path(path)
    device = next(model.parameters()).device
    weights = torch.load(path / "model.pt", map_location=device, weights_only=True)
    if is_lora(model):
        from peft import set_peft_model_state_dict

        unexpected = list(getattr(set_peft_model_state_dict(model, weights), "unexpected_keys", None) or [])
        if unexpected:
            raise ValueError(f"{path}: adapter weights that the model lacks: {unexpected[:5]}")
    else:
        model.load_state_dict(weights)
    state = torch.load(path / "trainer.pt", map_location="cpu", weights_only=True)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng:
        set_rng_states(state["rng"])
    config = json.loads((path / "config.json").read_text())
    return Checkpoint(
        path=path,
        position=DataPosition(**state["position"]),
        config=config,
        trainer_rng=_as_random_state(state["trainer_rng"]),
    )


def _model_state(model: Any) -> dict[str, torch.Tensor]:
    if is_lora(model):
        from peft import get_peft_model_state_dict

        return dict(get_peft_model_state_dict(model))
    return dict(model.state_dict())
