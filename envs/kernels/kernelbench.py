"""Load tasks from a checkout of KernelBench (or any folder in its layout).

The layout is one folder per level, ``level1/``, ``level2/``, ..., each holding reference files
named ``<number>_<Title>.py`` (``level1/1_Square_matrix_multiplication_.py``). A file is a
complete program: its own imports, inline size constants, ``class Model(nn.Module)``,
``get_inputs()`` and ``get_init_inputs()``. A loaded task keeps the file as its ``source`` with
empty ``sizes``, so :meth:`KernelTask.render` returns it unchanged for every device.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from horizongym.envs.kernels.types import KernelTask

_LEVEL_FOLDER = re.compile(r"level(\d+)")
_LEADING_NUMBER = re.compile(r"(\d+)")
_MODEL_CLASS = re.compile(r"^class Model\s*\(", re.MULTILINE)
_GET_INPUTS = re.compile(r"^def get_inputs\s*\(", re.MULTILINE)
_GET_INIT_INPUTS = re.compile(r"^def get_init_inputs\s*\(", re.MULTILINE)


def task_name(stem: str) -> str:
    """A file stem made snake_case: ``1_Square_matrix_multiplication_`` -> ``1_square_matrix_multiplication``."""
    return re.sub(r"[^0-9a-z]+", "_", stem.lower()).strip("_")


def _title(stem: str) -> str:
    """The human part of a stem: ``26_GELU_`` -> ``GELU``."""
    return re.sub(r"^\d+_+", "", stem).replace("_", " ").strip()


def _sort_key(path: Path) -> tuple[int, str]:
    match = _LEADING_NUMBER.match(path.stem)
    return (int(match.group(1)) if match else 1 << 30, path.stem.lower())


def _check(path: Path, text: str) -> None:
    """Raise ``ValueError`` if ``text`` is not a reference file (no ``Model`` or no input functions)."""
    missing = [
        what
        for what, pattern in (
            ("class Model", _MODEL_CLASS),
            ("def get_inputs", _GET_INPUTS),
            ("def get_init_inputs", _GET_INIT_INPUTS),
        )
        if not pattern.search(text)
    ]
    if missing:
        raise ValueError(f"{path} is not a KernelBench reference file: it lacks {', '.join(missing)}")


def load_kernelbench(root: str | Path, levels: Iterable[int] | None = None) -> list[KernelTask]:
    """The tasks under ``root`` (``root/level<N>/*.py``), sorted by level then leading number.

    ``levels`` keeps only those levels (all found levels by default). Raises ``FileNotFoundError``
    when ``root`` or a requested level folder is missing or nothing is found, and ``ValueError``
    for a file without ``class Model``, ``get_inputs`` or ``get_init_inputs``, or for two files
    of one level with the same name.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(f"KernelBench folder {base} does not exist")
    found: dict[int, Path] = {}
    for child in base.iterdir():
        match = _LEVEL_FOLDER.fullmatch(child.name)
        if child.is_dir() and match:
            found[int(match.group(1))] = child
    wanted = sorted(found) if levels is None else sorted(set(levels))
    missing = [level for level in wanted if level not in found]
    if missing:
        names = ", ".join(f"level{level}" for level in missing)
        raise FileNotFoundError(f"{base} has no {names} folder (found: {sorted(found) or 'none'})")
    tasks: list[KernelTask] = []
    for level in wanted:
        seen: dict[str, Path] = {}
        for path in sorted(found[level].glob("*.py"), key=_sort_key):
            if path.name.startswith("_"):
                continue
            name = task_name(path.stem)
            if name in seen:
                raise ValueError(f"{path} and {seen[name]} both give the task name {name!r}")
            seen[name] = path
            text = path.read_text()
            _check(path, text)
            tasks.append(KernelTask(name=name, level=level, source=text, sizes={}, description=_title(path.stem)))
    if not tasks:
        raise FileNotFoundError(f"no reference files (level<N>/*.py) under {base}")
    return tasks
