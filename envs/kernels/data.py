"""Task sources of the kernel environment, named by a short spec.

Specs (the ``tasks=`` option of ``KernelGen-v0`` and ``horizongym kernels tasks|eval --tasks``;
the env splits the tasks, see :mod:`horizongym.envs.tasklist`):

* ``catalog`` — the default: the built-in operators of :mod:`horizongym.envs.kernels.catalog`;
* ``kernelbench:PATH`` — the reference files of a KernelBench checkout
  (:mod:`horizongym.envs.kernels.kernelbench`).

``levels`` keeps only the tasks of those levels.
"""

from __future__ import annotations

from horizongym.envs.kernels.types import KernelTask


def load_kernel_tasks(tasks: str | list[KernelTask], levels: list[int] | None = None) -> list[KernelTask]:
    """The tasks named by ``tasks`` (see the module docstring) or ``tasks`` itself, at ``levels`` (all by default)."""
    if isinstance(tasks, list):
        chosen = tasks
    elif tasks == "catalog":
        from horizongym.envs.kernels.catalog import tasks_at

        chosen = tasks_at()
    elif tasks.startswith("kernelbench:"):
        from horizongym.envs.kernels.kernelbench import load_kernelbench

        chosen = load_kernelbench(tasks.removeprefix("kernelbench:"))
    else:
        raise ValueError(f"tasks must be 'catalog', 'kernelbench:PATH' or a list of KernelTask, got {tasks!r}")
    if levels is not None:
        chosen = [task for task in chosen if task.level in levels]
    if not chosen:
        raise ValueError(f"no tasks in {tasks if isinstance(tasks, str) else 'the list'!r} at levels {levels}")
    return chosen
