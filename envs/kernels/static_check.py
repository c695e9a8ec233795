"""Static checks on a candidate file, run before any of its code executes.

A candidate is Python that builds a kernel library and wraps it in ``ModelNew``. Most ways of
gaming the reward need something a kernel never needs: importing a module that reaches the
host (``os``, ``time``, ``numpy``), the reference's ``torch.nn.functional``, a ``try`` that
falls back to PyTorch, introspection (dunder attributes, ``getattr``, ``globals``), patching a
module attribute (``torch.cuda.Event = ...``), or state kept on ``self`` between calls. Each
finding is a :class:`Violation` with a code and the line; the runtime checks in
:mod:`horizongym.envs.kernels.worker` catch what static analysis cannot see.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

ALLOWED_IMPORTS = frozenset({"torch", "torch.nn", "math", "typing", "__future__", "horizongym.envs.kernels.api"})
FORBIDDEN_NAMES = frozenset(
    {
        "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr",
        "delattr", "breakpoint", "input", "memoryview", "help", "exit", "quit",
    }
)  # fmt: skip
HOST_ESCAPES = frozenset({"numpy", "tolist", "item", "data_ptr", "untyped_storage", "storage", "share_memory_"})
FORBIDDEN_TORCH_ATTRIBUTES = frozenset(
    {
        "utils", "ops", "library", "overrides", "jit", "compile", "hub", "backends", "cuda", "multiprocessing",
        "distributed", "profiler", "testing", "load", "save", "from_file", "set_num_threads",
        "set_num_interop_threads", "manual_seed", "seed", "set_rng_state", "get_rng_state", "functional", "fx",
        "autograd", "func", "export", "compiler",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Violation:
    """A rule a candidate broke: a stable ``code`` and a sentence for the agent."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def check_source(source: str) -> list[Violation]:
    """All static violations of ``source`` (empty when it may run). A syntax error is one violation."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return [Violation("syntax_error", f"line {error.lineno}: {error.msg}")]
    checker = _Checker()
    checker.visit(tree)
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
            if alias.name == "*":
                self.flag("forbidden_import", node, f"'from {module} import *' is not allowed")
            elif f"{module}.{alias.name}" in ALLOWED_IMPORTS or module == "horizongym.envs.kernels.api":
                self.module_aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            elif module in ALLOWED_IMPORTS and module != "horizongym.envs.kernels.api":
                if alias.name in FORBIDDEN_TORCH_ATTRIBUTES:
                    code = "torch_functional" if alias.name == "functional" else "forbidden_attribute"
                    self.flag(code, node, f"'from {module} import {alias.name}' is not allowed in a candidate")
            else:
                self._check_module(module, node)

    def _check_module(self, name: str, node: ast.AST) -> None:
        if name == "torch.nn.functional":
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
    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self.flag("forbidden_name", node, f"{node.id!r} is not allowed in a candidate")
        elif _is_dunder(node.id) and node.id != "__name__":
            self.flag("dunder", node, f"{node.id!r} is not allowed in a candidate")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        dotted = _dotted(node) or ""
        base_module = self._resolve(_dotted(node.value) if isinstance(node.value, ast.Attribute | ast.Name) else None)
        if _is_dunder(name) and name != "__init__":
            self.flag("dunder", node, f"attribute {name!r} is not allowed in a candidate")
        elif name in HOST_ESCAPES:
            self.flag("host_escape", node, f".{name} moves work or memory out of the kernel; not allowed")
        elif base_module in {"torch", "torch.nn"} and name in FORBIDDEN_TORCH_ATTRIBUTES:
            code = "torch_functional" if name == "functional" else "forbidden_attribute"
            self.flag(code, node, f"{dotted} is not allowed in a candidate")
        elif (
            name.startswith("_")
            and name != "__init__"
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        ):
            self.flag("forbidden_attribute", node, f"private attribute {dotted or name!r} is not allowed")
        self.generic_visit(node)
