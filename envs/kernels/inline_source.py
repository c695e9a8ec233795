"""Static reading of ``torch.utils.cpp_extension.load_inline`` calls in a candidate file (KernelBench's form).

KernelBench's submissions build their kernel with::

    from torch.utils.cpp_extension import load_inline
    relu = load_inline(name="relu", cpp_sources=cpp_source, functions=["relu_cpu"], extra_cflags=["-O3"])

This module reads each such call from the file's syntax tree, without running any of it: the
arguments must be string (list) literals, or names bound once at the top level to literals,
``+`` concatenations and parenthesised strings of them (:func:`extract_calls`). What it finds is
checked before anything runs (:func:`check_inline`):

* **compute ops in C++** (code ``torch_op``): a call ``torch::NAME(...)`` / ``at::NAME(...)`` whose
  NAME is not on :data:`CPP_ALLOWED_CALLS` (allocation, layout, options and threading helpers), or
  any use of the namespaces in :data:`CPP_FORBIDDEN_NAMESPACES` (``torch::nn``, ``at::native``, ...).
  The rule: a kernel may allocate tensors and read their sizes and data pointers; it may not ask
  PyTorch to compute. Tensor methods and operators (``x.relu()``, ``a + b``) cannot be told apart
  from other C++ here; the built library's imports (:mod:`.inline_build`) and the runtime
  operator guard (:mod:`.guards`) catch them.
* **flags** (code ``forbidden_flag``): ``extra_cflags`` / ``extra_cuda_cflags`` may only tune code
  generation (:data:`ALLOWED_FLAG`); ``extra_ldflags`` and ``extra_include_paths`` must be empty
  (a linked library or a header from elsewhere is code nobody checked).
* **form** (code ``inline_not_static``, a format error): arguments that are not literals, and
  ``load(sources=[paths])``, which builds files a one-file submission cannot carry.

The same checks run again at build time on what the call really receives
(:func:`horizongym.envs.kernels.inline_build.load_inline`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from horizongym.envs.kernels.guards import LAYOUT_OPS
from horizongym.envs.kernels.violations import Violation

EXTENSION_MODULE = "torch.utils.cpp_extension"
BUILDERS = frozenset({"load_inline", "load"})
CPP_ALLOWED_CALLS = LAYOUT_OPS | frozenset(
    {
        "ones", "ones_like", "full", "full_like", "from_blob", "TensorOptions", "device", "dtype", "Device",
        "Scalar", "IntArrayRef", "parallel_for", "get_num_threads", "get_thread_num", "in_parallel_region",
        "getCurrentCUDAStream", "getDefaultCUDAStream", "elementSize", "toString", "isFloatingType",
        "typeMetaToScalarType", "scalarTypeToTypeMeta", "CUDAGuard", "OptionalCUDAGuard", "DeviceGuard",
        "MemoryFormat", "Layout", "kCPU", "kCUDA",
    }
)  # fmt: skip
"""``torch::`` / ``at::`` calls a kernel may make: allocation, layout, tensor options, threads, streams."""
CPP_FORBIDDEN_NAMESPACES = ("nn", "native", "cpu", "jit", "autograd", "linalg", "fft", "special", "_ops", "detail")
_CPP_CALL = re.compile(r"\b(torch|at)\s*::\s*(?:cuda\s*::\s*)?(\w+)\s*(::|\(|<)")
_CPP_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
ALLOWED_FLAG = re.compile(
    r"-O[0-3s]?|-Ofast|-march=[\w.-]+|-mtune=[\w.-]+|-m(?:avx\w*|fma|sse\w*|f16c|bmi2?)|-ffast-math|-funroll-loops"
    r"|-fopenmp|-std=(?:c|gnu)\+\+(?:14|17|20)|-D\w+(?:=\w*)?|-U\w+|-g0?|-w|-Wall|-Wextra|-Wno-[\w-]+"
    r"|--use_fast_math|-use_fast_math|--expt-relaxed-constexpr|--expt-extended-lambda|-lineinfo"
    r"|-Xcompiler|--ptxas-options=-v|-arch=sm_\d+|--gpu-architecture=sm_\d+|-gencode=arch=compute_\d+,code=sm_\d+"
)
"""Compiler flags a candidate may add: optimisation, target, language level, macros, warnings."""


@dataclass(frozen=True)
class InlineCall:
    """One ``load_inline`` call as written: its sources, function names and flags (all literal)."""

    line: int
    name: str = "extension"
    cpp_sources: tuple[str, ...] = ()
    cuda_sources: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    extra_cflags: tuple[str, ...] = ()
    extra_cuda_cflags: tuple[str, ...] = ()
    extra_ldflags: tuple[str, ...] = ()
    extra_include_paths: tuple[str, ...] = ()
    other: dict[str, object] = field(default_factory=dict)


class NotStatic(ValueError):
    """An argument is not a literal the checker can read without running the file."""


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Top-level names assigned exactly once, to the expression they are assigned."""
    seen: dict[str, ast.expr] = {}
    twice: set[str] = set()
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                if target.id in seen or not isinstance(node, ast.Assign) or node not in tree.body:
                    twice.add(target.id)
                elif isinstance(node, ast.Assign):
                    seen[target.id] = node.value
    return {name: value for name, value in seen.items() if name not in twice}


def _value(node: ast.expr, constants: dict[str, ast.expr], depth: int = 0) -> object:
    """The literal value of ``node``: strings, lists/tuples, dicts, numbers, bools, None, ``+`` of strings."""
    if depth > 20:
        raise NotStatic("names refer to each other too deeply")
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in constants:
            raise NotStatic(f"{node.id!r} is not a name bound once, at the top level, to a literal")
        return _value(constants[node.id], constants, depth + 1)
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(element, constants, depth + 1) for element in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _value(k, constants, depth + 1): _value(v, constants, depth + 1)
            for k, v in zip(node.keys, node.values, strict=True)
            if k is not None
        }
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _value(node.left, constants, depth + 1), _value(node.right, constants, depth + 1)
        if (isinstance(left, str) and isinstance(right, str)) or (isinstance(left, list) and isinstance(right, list)):
            return left + right  # type: ignore[operator]
    raise NotStatic(f"{ast.unparse(node)!r} is not a literal")


def _strings(value: object, argument: str) -> tuple[str, ...]:
    """A source / flag argument as a tuple of strings (a single string or a list of them)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise NotStatic(f"{argument} must be a string or a list of strings")


def read_call(line: int, arguments: dict[str, object]) -> InlineCall:
    """An :class:`InlineCall` from keyword arguments already evaluated (statically, or at build time)."""
    functions = arguments.get("functions")
    if isinstance(functions, dict):
        functions = list(functions)
    names = _strings(functions, "functions")
    known = set(InlineCall.__dataclass_fields__) - {"line", "other"}
    name = arguments.get("name", "extension")
    return InlineCall(
        line=line,
        name=str(name),
        cpp_sources=_strings(arguments.get("cpp_sources"), "cpp_sources"),
        cuda_sources=_strings(arguments.get("cuda_sources"), "cuda_sources"),
        functions=names,
        extra_cflags=_strings(arguments.get("extra_cflags"), "extra_cflags"),
        extra_cuda_cflags=_strings(arguments.get("extra_cuda_cflags"), "extra_cuda_cflags"),
        extra_ldflags=_strings(arguments.get("extra_ldflags"), "extra_ldflags"),
        extra_include_paths=_strings(arguments.get("extra_include_paths"), "extra_include_paths"),
        other={k: v for k, v in arguments.items() if k not in known and k != "functions"},
    )


LOAD_INLINE_POSITIONS = ("name", "cpp_sources", "cuda_sources", "functions", "extra_cflags", "extra_cuda_cflags")
"""``load_inline``'s leading positional parameters, in torch's order."""


def extract_calls(tree: ast.Module, builder_names: dict[str, str]) -> tuple[list[InlineCall], list[Violation]]:
    """Every call of ``load_inline`` / ``load`` (under the local names in ``builder_names``) in ``tree``."""
    constants = _constants(tree)
    calls: list[InlineCall] = []
    found: list[Violation] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in builder_names):
            continue
        line = f"line {node.lineno}"
        if builder_names[node.func.id] == "load":
            found.append(
                Violation(
                    "inline_not_static",
                    f"{line}: load(sources=[...]) builds files a one-file submission does not have; "
                    "pass the code as strings to load_inline(cpp_sources=..., functions=[...])",
                )
            )
            continue
        try:
            arguments: dict[str, object] = {}
            for position, argument in enumerate(node.args):
                if isinstance(argument, ast.Starred) or position >= len(LOAD_INLINE_POSITIONS):
                    raise NotStatic("pass load_inline's arguments by keyword")
                arguments[LOAD_INLINE_POSITIONS[position]] = _value(argument, constants)
            for keyword in node.keywords:
                if keyword.arg is None:
                    raise NotStatic("**kwargs cannot be read without running the file")
                arguments[keyword.arg] = _value(keyword.value, constants)
            call = read_call(node.lineno, arguments)
        except NotStatic as error:
            found.append(Violation("inline_not_static", f"{line}: load_inline argument {error}"))
            continue
        calls.append(call)
        found.extend(check_inline(call))
    return calls, found


def strip_comments(source: str) -> str:
    """C++ source without ``//`` and ``/* */`` comments (string literals are left as they are)."""
    return _CPP_COMMENT.sub(" ", source)


def check_cpp(source: str, where: str) -> list[Violation]:
    """``torch_op`` violations for PyTorch compute calls in C++ ``source`` (see the module docstring)."""
    found: list[Violation] = []
    for match in _CPP_CALL.finditer(strip_comments(source)):
        space, name, after = match.group(1), match.group(2), match.group(3)
        if after == "::" and name not in CPP_FORBIDDEN_NAMESPACES:
            continue  # a type or a namespace path (torch::Tensor, at::ScalarType::Float, c10 helpers)
        if after == "::" or name not in CPP_ALLOWED_CALLS:
            shown = f"{space}::{name}"
            found.append(
                Violation(
                    "torch_op",
                    f"{where} calls {shown}, a PyTorch compute op; a load_inline kernel may allocate tensors "
                    "(torch::empty, torch::zeros, ...) and read their sizes and data pointers, not call PyTorch "
                    "to compute",
                )
            )
            if len(found) >= 3:
                break
    return found


def check_inline(call: InlineCall) -> list[Violation]:
    """The rule violations of one call: compute ops in its C++, flags outside the allowlist, missing functions."""
    where = f"line {call.line}: load_inline"
    found: list[Violation] = []
    if not call.functions:
        found.append(
            Violation("inline_not_static", f"{where} names no functions; pass functions=['name', ...] to bind")
        )
    for function in call.functions:
        if not re.fullmatch(r"[A-Za-z_]\w*", function):
            found.append(Violation("inline_not_static", f"{where}: function name {function!r} is not a C++ identifier"))
    for source in (*call.cpp_sources, *call.cuda_sources):
        found.extend(check_cpp(source, f"{where}'s C++"))
    for flag in (*call.extra_cflags, *call.extra_cuda_cflags):
        if flag.strip() and not all(ALLOWED_FLAG.fullmatch(part) for part in flag.split()):
            found.append(
                Violation("forbidden_flag", f"{where}: compiler flag {flag!r} is not allowed (only -O, -march, ...)")
            )
    for argument, values in (("extra_ldflags", call.extra_ldflags), ("extra_include_paths", call.extra_include_paths)):
        if any(value.strip() for value in values):
            found.append(
                Violation("forbidden_flag", f"{where}: {argument} must be empty (no other libraries or headers)")
            )
    return found
