"""A kernel task in KernelBench's format: a reference ``Model``, ``get_inputs()`` and ``get_init_inputs()``."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field

DEVICES = ("cpu", "cuda")
HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


@dataclass(frozen=True)
class KernelTask:
    """One operator to speed up.

    ``source`` is a KernelBench-style reference file, its imports optional: a ``class Model(nn.Module)``,
    ``get_inputs()`` and ``get_init_inputs()``, written in terms of module-level size constants.
    ``sizes`` maps each device (``cpu``, ``cuda``) to the values of those constants, so one task
    runs at full size on a GPU and at a size that times well in a second on a CPU core.
    A task loaded from a KernelBench file has its constants inline and empty ``sizes``; a built-in
    task's constants are in ``sizes`` (:mod:`horizongym.envs.kernels.kernelbench` moves them there).
    """

    name: str
    level: int
    source: str
    sizes: Mapping[str, Mapping[str, int | float]] = field(default_factory=dict)
    description: str = ""

    @property
    def id(self) -> str:
        """A stable id, ``L<level>/<name>``."""
        return f"L{self.level}/{self.name}"

    def render(self, device: str = "cpu") -> str:
        """The complete reference file for ``device``: imports, size constants, then the rest of the source.

        The imports are the source's own leading ones, or :data:`HEADER` for a source without any.
        """
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        constants = self.sizes.get(device) or self.sizes.get("cpu") or {}
        block = "\n".join(f"{name} = {value!r}" for name, value in constants.items())
        body = self.source.strip("\n")
        has_imports = body.startswith("import") or "\nimport torch" in body
        if not has_imports:
            return HEADER + "\n" + (block + "\n\n" if block else "") + body + "\n"
        if not block:
            return body + "\n"
        split = _end_of_leading_imports(body)
        head, rest = body[:split].rstrip("\n"), body[split:].lstrip("\n")
        return "\n\n".join(part for part in (head, block, rest) if part) + "\n"


def _end_of_leading_imports(source: str) -> int:
    """The offset in ``source`` just past its module docstring and leading imports (0 if it does not parse)."""
    try:
        statements = ast.parse(source).body
    except SyntaxError:
        return 0
    for index, statement in enumerate(statements):
        is_docstring = (
            index == 0
            and isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
        )
        if not (is_docstring or isinstance(statement, ast.Import | ast.ImportFrom)):
            return sum(len(line) + 1 for line in source.split("\n")[: statement.lineno - 1])
    return len(source)
