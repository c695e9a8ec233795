"""Load tasks from a checkout of KernelBench (or any folder in its layout), the built-in tasks included.

The layout is one folder per level, ``level1/``, ``level2/``, ..., each holding reference files
named ``<number>_<Title>.py`` (``level1/1_Square_matrix_multiplication_.py``). A file is a
complete program: its own imports, inline size constants, ``class Model(nn.Module)``,
``get_inputs()`` and ``get_init_inputs()``. A loaded task keeps the file as its ``source`` with
empty ``sizes``, so :meth:`KernelTask.render` returns it unchanged for every device.

A level folder may also hold ``tasks.toml`` (the built-in tasks have one), with a table per file
stem giving any of::

    ["1_add"]
    name = "add"                       # the task name (default: the stem in snake_case, "1_add")
    description = "Elementwise sum."   # default: the stem's title, "add"
    cpu = { BATCH = 1024, DIM = 1024 } # size constants that take other values on a CPU

A file with a ``cpu`` table is loaded as a sized task: its top-level number constants
(``BATCH = 4096``) leave the source and become ``sizes["cuda"]``, and ``sizes["cpu"]`` is the
same constants with the table's values, so the task renders at GPU size on a GPU and at a size
that times well on one CPU core.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from horizongym.envs.kernels.types import KernelTask

METADATA_FILE = "tasks.toml"
"""The optional per-level file of task names, descriptions and CPU sizes."""
METADATA_FIELDS = ("name", "description", "cpu")

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


def _read_metadata(folder: Path) -> dict[str, dict[str, Any]]:
    """``folder/tasks.toml`` as {file stem: fields}, or {} without one; ``ValueError`` names a bad entry."""
    path = folder / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        tables = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from error
    for stem, fields in tables.items():
        if not isinstance(fields, dict):
            raise ValueError(f'{path}: {stem!r} must be a table (["{stem}"] followed by its fields)')
        unknown = sorted(set(fields) - set(METADATA_FIELDS))
        if unknown:
            raise ValueError(f"{path}: [{stem!r}] has unknown fields {unknown}; allowed: {list(METADATA_FIELDS)}")
        name = fields.get("name")
        if name is not None and (not isinstance(name, str) or not name or task_name(name) != name):
            raise ValueError(f"{path}: [{stem!r}] name must be snake_case (like {task_name(stem)!r}), got {name!r}")
        if not isinstance(fields.get("description", ""), str):
            raise ValueError(f"{path}: [{stem!r}] description must be a string")
        if not isinstance(fields.get("cpu", {}), dict):
            raise ValueError(f"{path}: [{stem!r}] cpu must be a table of constants, like cpu = {{ BATCH = 1024 }}")
    return tables


def _size_constants(path: Path, text: str) -> tuple[dict[str, int | float], str]:
    """The file's top-level number constants (``BATCH = 4096``) and the text without those lines."""
    try:
        module = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise ValueError(f"{path} does not parse: {error}") from error
    constants: dict[str, int | float] = {}
    dropped: set[int] = set()
    for statement in module.body:
        if not (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            continue
        try:
            value = ast.literal_eval(statement.value)
        except (ValueError, TypeError):  # not a literal
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            constants[statement.targets[0].id] = value
            dropped.update(range(statement.lineno, (statement.end_lineno or statement.lineno) + 1))
    lines = text.split("\n")
    return constants, "\n".join(line for number, line in enumerate(lines, 1) if number not in dropped)


def _sized(path: Path, text: str, cpu: Mapping[str, Any]) -> tuple[str, dict[str, dict[str, int | float]]]:
    """The source without its size constants, and ``sizes`` for both devices (``cpu`` overriding the file's)."""
    constants, source = _size_constants(path, text)
    unknown = sorted(set(cpu) - set(constants))
    if unknown:
        raise ValueError(
            f"{path}: cpu sizes {unknown} are not top-level number constants of the file (it has {sorted(constants)})"
        )
    for name, value in cpu.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{path}: cpu size {name} must be a number, got {value!r}")
    return source, {"cpu": {name: cpu.get(name, value) for name, value in constants.items()}, "cuda": constants}


def _load_level(folder: Path, level: int) -> list[KernelTask]:
    """The tasks of one level folder, by leading number; ``tasks.toml`` (if any) names and sizes them."""
    metadata = _read_metadata(folder)
    paths = [path for path in sorted(folder.glob("*.py"), key=_sort_key) if not path.name.startswith("_")]
    orphans = sorted(set(metadata) - {path.stem for path in paths})
    if orphans:
        raise ValueError(f"{folder / METADATA_FILE} describes files that are not in {folder}: {orphans}")
    tasks: list[KernelTask] = []
    seen: dict[str, Path] = {}
    for path in paths:
        fields = metadata.get(path.stem, {})
        name = fields.get("name") or task_name(path.stem)
        if name in seen:
            raise ValueError(f"{path} and {seen[name]} both give the task name {name!r}")
        seen[name] = path
        text = path.read_text()
        _check(path, text)
        source, sizes = _sized(path, text, fields["cpu"]) if "cpu" in fields else (text, {})
        description = fields.get("description") or _title(path.stem)
        tasks.append(KernelTask(name=name, level=level, source=source, sizes=sizes, description=description))
    return tasks


def load_kernelbench(root: str | Path, levels: Iterable[int] | None = None) -> list[KernelTask]:
    """The tasks under ``root`` (``root/level<N>/*.py``), sorted by level then leading number.

    ``levels`` keeps only those levels (all found levels by default). Raises ``FileNotFoundError``
    when ``root`` or a requested level folder is missing or nothing is found, and ``ValueError``
    for a file without ``class Model``, ``get_inputs`` or ``get_init_inputs``, for two files
    of one level with the same task name, or for a bad ``tasks.toml``.
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
    tasks = [task for level in wanted for task in _load_level(found[level], level)]
    if not tasks:
        raise FileNotFoundError(f"no reference files (level<N>/*.py) under {base}")
    return tasks
