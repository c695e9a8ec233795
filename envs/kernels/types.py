"""A kernel task in KernelBench's format: a reference ``Model``, ``get_inputs()`` and ``get_init_inputs()``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEVICES = ("cpu", "cuda")
HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


@dataclass(frozen=True)
class KernelTask:
    """One operator to speed up.

    ``source`` is the body of a KernelBench-style reference file: a ``class Model(nn.Module)``,
    ``get_inputs()`` and ``get_init_inputs()``, written in terms of module-level size constants.
    ``sizes`` maps each device (``cpu``, ``cuda``) to the values of those constants, so one task
    runs at full size on a GPU and at a size that times well in a second on a CPU core.
    A task loaded from a KernelBench file has its constants inline and empty ``sizes``.
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
        """The complete reference file for ``device``: imports, size constants, then the body."""
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        constants = self.sizes.get(device) or self.sizes.get("cpu") or {}
        lines = [f"{name} = {value!r}" for name, value in constants.items()]
        body = self.source.strip("\n")
        has_imports = body.startswith("import") or "\nimport torch" in body
        prefix = "" if has_imports else HEADER + "\n"
        return prefix + ("\n".join(lines) + "\n\n" if lines else "") + body + "\n"
