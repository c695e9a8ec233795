"""Runtime guard: record every PyTorch operator a candidate's ``forward`` dispatches.

A :class:`torch.utils._python_dispatch.TorchDispatchMode` sees each ATen operator below
autograd, whether it comes from Python (``x.relu()``, ``torch.matmul``) or from C++ code
inside an extension. A candidate may allocate and lay out memory; any operator that computes
(``relu``, ``mm``, ``softmax``, ...) means the reference did the work, and the candidate
scores 0 (KernelBench's "calls the PyTorch op" exploit, and a try/except fallback to it).
"""

from __future__ import annotations

from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

LAYOUT_OPS = frozenset(
    {
        "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
        "new_zeros", "zero_", "fill_", "view", "_unsafe_view", "reshape", "_reshape_alias", "as_strided",
        "t", "transpose", "permute", "expand", "unsqueeze", "squeeze", "flatten", "contiguous", "clone",
        "copy_", "_to_copy", "detach", "alias", "lift_fresh", "slice", "select", "split", "chunk", "narrow",
        "unbind", "resize_", "unfold", "view_as", "expand_as", "squeeze_", "unsqueeze_", "t_", "transpose_",
    }
)  # fmt: skip
"""Operators that only allocate, fill with a constant, copy or re-view memory."""


class OperatorGuard(TorchDispatchMode):
    """Runs every operator as usual and remembers those outside :data:`LAYOUT_OPS`."""

    def __init__(self) -> None:
        super().__init__()
        self.computing: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        if name not in LAYOUT_OPS and len(self.computing) < 20:
            self.computing.append(f"aten.{name}")
        return func(*args, **(kwargs or {}))
