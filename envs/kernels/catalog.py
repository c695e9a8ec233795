"""The built-in KernelGen task catalog, in three levels of KernelBench's kind.

* **Level 1: single operators.** One PyTorch op per task: elementwise arithmetic, activations,
  reductions, softmax, normalisations, matrix products of several shapes, a convolution and a
  cumulative sum. A faster kernel here means beating one well-tuned ATen kernel.
* **Level 2: fused sequences.** Two to five ops in a row (a matmul and its epilogue, an
  elementwise chain, a norm and a residual, a reduction after elementwise work). Eager PyTorch
  runs each op as its own pass over memory, so fusing them into one kernel is where the wins are.
* **Level 3: small blocks.** A few layers of a network: an MLP, single-head self-attention,
  a pre-norm transformer block, a residual conv block and an RNN cell.

The tasks are files in KernelBench's layout under ``builtin/`` (``builtin/level1/1_add.py``),
loaded by the same :func:`~horizongym.envs.kernels.kernelbench.load_kernelbench` that loads a
KernelBench checkout. Each file holds the GPU sizes, KernelBench-like; its level's ``tasks.toml``
gives the task's name, description and CPU sizes, chosen so one reference forward takes roughly
0.2-5 ms on one CPU thread. All inputs are float32.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from horizongym.envs.kernels.kernelbench import load_kernelbench
from horizongym.envs.kernels.types import KernelTask

BUILTIN_ROOT = Path(__file__).resolve().parent / "builtin"
"""The built-in tasks' folder, in KernelBench's layout (``level<N>/<number>_<name>.py``)."""

TASKS: tuple[KernelTask, ...] = tuple(load_kernelbench(BUILTIN_ROOT))
"""Every built-in task, level 1 first."""

_BY_KEY: dict[str, KernelTask] = {key: task for task in TASKS for key in (task.name, task.id)}


def get_task(name_or_id: str) -> KernelTask:
    """The task called ``name_or_id`` (``relu`` or ``L1/relu``); a ``KeyError`` suggests close names."""
    task = _BY_KEY.get(name_or_id.strip())
    if task is not None:
        return task
    matches = difflib.get_close_matches(name_or_id.strip(), list(_BY_KEY), n=6, cutoff=0.5)
    close = list(dict.fromkeys(_BY_KEY[key].name for key in matches))[:3]
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known tasks: {', '.join(t.name for t in TASKS)}"
    raise KeyError(f"no kernel task {name_or_id!r}{hint}")


def tasks_at(level: int | None = None) -> list[KernelTask]:
    """The tasks of ``level`` (1, 2 or 3), or all of them with ``level=None``."""
    if level is None:
        return list(TASKS)
    if level not in (1, 2, 3):
        raise ValueError(f"level must be 1, 2 or 3, got {level!r}")
    return [task for task in TASKS if task.level == level]
