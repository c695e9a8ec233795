"""Static checks on a candidate file, run before any of its code executes.

A candidate is Python that builds a kernel library and wraps it in ``ModelNew``. Most ways of
gaming the reward need something a kernel never needs: importing a module that reaches the
host (``os``, ``time``, ``numpy``), the reference's ``torch.nn.functional``, a ``try`` that
falls back to PyTorch, introspection (dunder attributes, frames, ``getattr``, ``globals``),
reaching other modules through torch's submodules (``torch.serialization.sys``), patching an
attribute of anything but ``self`` (``torch.cuda.Event = ...``), or state kept on ``self``
between calls. So module attributes are an allowlist (:func:`allowed_module_path`: allocation,
dtypes, random initialisation, ``nn`` layer classes, ``nn.init``, ``math``), and everything
else a candidate writes is checked against the rules below. Each finding is a
:class:`Violation` with a code and the line; the runtime checks in
:mod:`horizongym.envs.kernels.worker` catch what static analysis cannot see. A KernelBench-form
file (``from torch.utils.cpp_extension import load_inline``) is read by
:mod:`horizongym.envs.kernels.inline_source`: its sources, functions and flags are checked too.
"""

from __future__ import annotations

import ast

from horizongym.envs.kernels.inline_source import BUILDERS, EXTENSION_MODULE, extract_calls
from horizongym.envs.kernels.violations import Violation

__all__ = ["Violation", "allowed_module_path", "check_source"]

ALLOWED_IMPORTS = frozenset({"torch", "torch.nn", "math", "typing", "__future__", "horizongym.envs.kernels.api"})
FORBIDDEN_NAMES = frozenset(
    {
        "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr",
        "delattr", "breakpoint", "input", "memoryview", "help", "exit", "quit",
    }
)  # fmt: skip
HOST_ESCAPES = frozenset(
    {
        "numpy", "tolist", "item", "data_ptr", "untyped_storage", "storage", "share_memory_", "apply_", "map_",
        "map2_",
    }
)  # fmt: skip
TORCH_ALLOWED = frozenset(
    {
        "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like",
        "arange", "randn", "rand", "randint", "randn_like", "rand_like", "tensor", "float32", "float", "float16",
        "half", "bfloat16", "float64", "double", "int64", "long", "int32", "int", "int16", "int8", "uint8", "bool",
        "no_grad", "inference_mode", "is_tensor", "contiguous_format", "channels_last", "preserve_format",
        "get_default_dtype", "Tensor", "Size", "dtype", "device",
    }
)  # fmt: skip
NN_INIT_ALLOWED = frozenset(
    {
        "normal_", "uniform_", "zeros_", "ones_", "constant_", "xavier_uniform_", "xavier_normal_",
        "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "orthogonal_", "calculate_gain",
    }
)  # fmt: skip
MODULE_PATHS = frozenset(
    {
        "torch", "torch.nn", "torch.nn.init", "math", "typing", "horizongym", "horizongym.envs",
        "horizongym.envs.kernels", "horizongym.envs.kernels.api",
    }
)  # fmt: skip
"""Modules a candidate may name, only ever as the base of an attribute (never as a value: a module
object in a variable would open every attribute path)."""
"""What a candidate may use from ``torch`` itself: allocation, dtypes, random initialisation."""
INTROSPECTION_PREFIXES = ("gi_", "cr_", "ag_", "f_", "co_", "tb_")
"""Frame, code and traceback attributes (``gen.gi_frame.f_globals`` reaches every module)."""


def allowed_module_path(path: str) -> bool:
    """Whether a candidate may use the module attribute ``path`` (``torch.empty``, ``torch.nn.Linear``, ...)."""
    if path in MODULE_PATHS:
        return True
    module, _, name = path.rpartition(".")
    if module == "math":
        return not name.startswith("_")
    if module == "typing":
        return name[:1].isupper()
    if module == "torch.nn.init":
        return name in NN_INIT_ALLOWED
    if module == "torch.nn":
        return name[:1].isupper()
    if module == "torch":
        return name in TORCH_ALLOWED
    return path == "horizongym.envs.kernels.api.load_kernel"


def check_source(source: str) -> list[Violation]:
    """All static violations of ``source`` (empty when it may run). A syntax error is one violation."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return [Violation("syntax_error", f"line {error.lineno}: {error.msg}")]
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child.parent = parent  # type: ignore[attr-defined]
    checker = _Checker()
    checker.visit(tree)
    if checker.builders:
        checker.found.extend(extract_calls(tree, checker.builders)[1])
    if not any(isinstance(node, ast.ClassDef) and node.name == "ModelNew" for node in tree.body):
        checker.found.append(Violation("missing_model_new", "the file defines no top-level class ModelNew"))
    return checker.found


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[Violation] = []
        self.module_aliases: dict[str, str] = {}
        self.in_forward = False
        self.builders: dict[str, str] = {}
        """Local names of ``torch.utils.cpp_extension.load_inline`` / ``load`` (read by :mod:`.inline_source`)."""

    def flag(self, code: str, node: ast.AST, detail: str) -> None:
        self.found.append(Violation(code, f"line {getattr(node, 'lineno', '?')}: {detail}"))

    # ----- imports ---------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(alias.name, node)
            self.module_aliases[alias.asname or alias.name.split(".")[0]] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.flag("forbidden_import", node, "relative imports are not allowed")
            return
        for alias in node.names:
            if module == EXTENSION_MODULE and alias.name in BUILDERS:
                self.builders[alias.asname or alias.name] = alias.name
            elif alias.name == "*":
                self.flag("forbidden_import", node, f"'from {module} import *' is not allowed")
            elif module in ALLOWED_IMPORTS:
                path = f"{module}.{alias.name}"
                if allowed_module_path(path):
                    self.module_aliases[alias.asname or alias.name] = path
                else:
                    code = "torch_functional" if alias.name == "functional" else "forbidden_attribute"
                    self.flag(code, node, f"'from {module} import {alias.name}' is not allowed in a candidate")
            else:
                self._check_module(module, node)

    def _check_module(self, name: str, node: ast.AST) -> None:
        if name == EXTENSION_MODULE:
            self.flag("forbidden_import", node, f"use 'from {name} import load_inline' (the only form accepted)")
        elif name == "torch.nn.functional":
            self.flag("torch_functional", node, "torch.nn.functional computes the reference; write the kernel")
        elif name not in ALLOWED_IMPORTS:
            allowed = ", ".join(sorted(ALLOWED_IMPORTS - {"__future__", "typing"}))
            self.flag("forbidden_import", node, f"import of {name!r}; a candidate may import only {allowed}")

    # ----- statements ------------------------------------------------------------------
    def visit_Try(self, node: ast.Try) -> None:
        self.flag("try_except", node, "try/except is not allowed: a fallback path could hide a failing kernel")
        self.generic_visit(node)

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_Global(self, node: ast.Global) -> None:
        self.flag("global_state", node, "global statements are not allowed (state across calls)")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.flag("global_state", node, "nonlocal statements are not allowed (state across calls)")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if _is_dunder(node.name) and node.name != "__init__":
            self.flag("dunder", node, f"defining {node.name!r} is not allowed in a candidate")
        outer = self.in_forward
        self.in_forward = outer or node.name == "forward"
        self.generic_visit(node)
        self.in_forward = outer

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def _check_target(self, target: ast.expr) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._check_target(element)
            return
        if isinstance(target, ast.Attribute | ast.Subscript):
            root: ast.expr = target
            while isinstance(root, ast.Attribute | ast.Subscript):
                root = root.value
            if isinstance(root, ast.Name) and root.id in self.module_aliases:
                self.flag("module_patch", target, f"assigning into module {root.id!r} is not allowed")
            elif self.in_forward and isinstance(root, ast.Name) and root.id == "self":
                self.flag("state_in_forward", target, "forward must not store anything on self (results across calls)")
            elif isinstance(target, ast.Attribute) and not (isinstance(root, ast.Name) and root.id == "self"):
                self.flag("attribute_assignment", target, "only attributes of self may be assigned")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def _resolve(self, dotted: str | None) -> str:
        """The module path a dotted name refers to, through import aliases (``nn.init`` → ``torch.nn.init``)."""
        if not dotted:
            return ""
        root, _, rest = dotted.partition(".")
        module = self.module_aliases.get(root)
        if module is None:
            return ""
        return f"{module}.{rest}" if rest else module

    # ----- expressions -----------------------------------------------------------------
    def _check_module_use(self, node: ast.Name | ast.Attribute, path: str) -> None:
        """A module may only be the base of an attribute, never a value (see :data:`MODULE_PATHS`)."""
        parent = getattr(node, "parent", None)
        if path in MODULE_PATHS and not (isinstance(parent, ast.Attribute) and parent.value is node):
            self.flag("module_as_value", node, f"the module {path!r} may only be used as torch.X / nn.X / math.X")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.module_aliases and isinstance(node.ctx, ast.Load):
            self._check_module_use(node, self.module_aliases[node.id])
        if node.id in FORBIDDEN_NAMES:
            self.flag("forbidden_name", node, f"{node.id!r} is not allowed in a candidate")
        elif _is_dunder(node.id) and node.id != "__name__":
            self.flag("dunder", node, f"{node.id!r} is not allowed in a candidate")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        dotted = _dotted(node) or name
        on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        module_path = self._resolve(dotted) if _dotted(node) else ""
        if module_path and not allowed_module_path(module_path):
            code = "torch_functional" if module_path.startswith("torch.nn.functional") else "forbidden_attribute"
            self.flag(code, node, f"{dotted} is not allowed in a candidate")
            return  # one finding per chain
        if module_path:
            self._check_module_use(node, module_path)
        if _is_dunder(name) and name != "__init__":
            self.flag("dunder", node, f"attribute {name!r} is not allowed in a candidate")
        elif name in HOST_ESCAPES:
            self.flag("host_escape", node, f".{name} moves work or memory out of the kernel; not allowed")
        elif not on_self and name != "__init__" and name.startswith(("_", *INTROSPECTION_PREFIXES)):
            self.flag("forbidden_attribute", node, f"attribute {dotted!r} is not allowed in a candidate")
        self.generic_visit(node)
