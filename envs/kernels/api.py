"""Compile kernel source into a shared library and call its functions on tensors.

This is the API a candidate uses (and the fast build path of the environment)::

    from horizongym.envs.kernels.api import load_kernel

    lib = load_kernel(r'''
    #include <cstdint>
    extern "C" void relu(const float* x, float* y, int64_t n) {
        #pragma omp parallel for
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
    }
    ''')
    lib.relu(x, y, x.numel())

The source is plain C++ (``language="cpp"``, built by ``g++ -O3 -march=native -fopenmp``) or
CUDA (``language="cuda"``, built by ``nvcc``); ``$HORIZONGYM_CXX`` and ``$HORIZONGYM_NVCC`` name
another compiler (a path, or a name on ``PATH``). Each exported function is ``extern "C"`` and
returns ``void``. Calls convert arguments by type: a tensor becomes a pointer to its data, a
Python ``int`` an ``int64_t``, a ``float`` a ``double``, a ``bool`` a ``bool``. Nothing else is
accepted. A CUDA entry point is host code that launches kernels on the default stream.

The library is built without ``torch/extension.h`` or pybind11, which is what makes a cold
build take well under a second instead of the ~30 s of ``torch.utils.cpp_extension.load_inline``.
Builds are cached by a hash of (language, compiler, flags, source), failures included, and
at most one build per core runs at a time across all processes of the machine. A built
library is inspected before it can be loaded (:mod:`horizongym.envs.kernels.inspect_library`):
it may call only math, memory, OpenMP and CUDA runtime functions.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from horizongym.cache import build_atomically, cache_dir
from horizongym.envs.kernels.inspect_library import RULES_FINGERPRINT, KernelRejected, check_library

LANGUAGES = ("cpp", "cuda")
LANGUAGE_VARIABLE = "HORIZONGYM_KERNEL_LANGUAGE"
"""The environment variable that sets the default language of :func:`load_kernel` (the evaluator sets it)."""
CUDA_ARCH_VARIABLE = "HORIZONGYM_CUDA_ARCH"
COMPILER_VARIABLES = {"cpp": "HORIZONGYM_CXX", "cuda": "HORIZONGYM_NVCC"}
"""The environment variable that names each language's compiler (the evaluator sets it for its children)."""
DEFAULT_COMPILERS = {"cpp": "g++", "cuda": "nvcc"}
MAX_ERROR_CHARS = 4000
MAX_ERROR_LINES = 40
COMPILE_TIMEOUT_S = 120.0

_launches = 0


class CompileError(RuntimeError):
    """The compiler rejected the source; ``str(error)`` is its trimmed output."""


@dataclass(frozen=True)
class Toolchain:
    """How one language is compiled: the compiler and its flags."""

    language: str
    compiler: str
    flags: tuple[str, ...]
    suffix: str

    def fingerprint(self) -> str:
        """What identifies the build besides the source: compiler binary (path, size, mtime) and flags."""
        path = shutil.which(self.compiler)
        if path is None:
            raise CompileError(f"{self.compiler} is not installed on this machine; {self.language} cannot be built")
        stat = os.stat(path)
        return json.dumps([self.language, path, stat.st_size, int(stat.st_mtime), list(self.flags)])


def cuda_arch() -> str:
    """The ``-arch`` nvcc builds for: ``$HORIZONGYM_CUDA_ARCH``, the visible GPU's, or ``sm_80`` with no GPU."""
    if os.environ.get(CUDA_ARCH_VARIABLE):
        return os.environ[CUDA_ARCH_VARIABLE]
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            return f"sm_{major}{minor}"
    except ImportError:
        pass
    return "sm_80"


def compiler_of(language: str) -> str:
    """The compiler of ``language``: ``$HORIZONGYM_CXX`` / ``$HORIZONGYM_NVCC`` if set, else ``g++`` / ``nvcc``."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    return os.environ.get(COMPILER_VARIABLES[language]) or DEFAULT_COMPILERS[language]


def toolchain(language: str) -> Toolchain:
    """The toolchain of ``language`` (``cpp`` or ``cuda``)."""
    compiler = compiler_of(language)
    if language == "cpp":
        cpp_flags = ("-O3", "-march=native", "-fopenmp", "-std=c++17", "-shared", "-fPIC")
        return Toolchain("cpp", compiler, cpp_flags, ".cpp")
    flags = ("-O3", "-std=c++17", "--shared", "-Xcompiler", "-fPIC", "-cudart", "shared", f"-arch={cuda_arch()}")
    return Toolchain("cuda", compiler, flags, ".cu")


@dataclass(frozen=True)
class BuildResult:
    """A built library: where it is, whether it came from the cache, and how long getting it took."""

    path: Path
    cached: bool
    seconds: float


def trim_compiler_output(text: str, source_path: str, shown_name: str) -> str:
    """Compiler output made readable for a model: temp paths replaced, first lines kept, length capped."""
    text = text.replace(source_path, shown_name)
    lines = [line for line in text.splitlines() if line.strip()]
    kept = lines[:MAX_ERROR_LINES]
    out = "\n".join(kept)
    if len(lines) > len(kept):
        out += f"\n... ({len(lines) - len(kept)} more lines)"
    if len(out) > MAX_ERROR_CHARS:
        out = out[:MAX_ERROR_CHARS] + "\n... (cut)"
    return out


@contextlib.contextmanager
def _build_slot(root: Path) -> Iterator[None]:
    """Hold one of ``os.cpu_count()`` machine-wide build slots (file locks), waiting for a free one."""
    slots = [FileLock(str(root / f".slot-{i}.lock")) for i in range(os.cpu_count() or 1)]
    while True:
        for slot in slots:
            try:
                slot.acquire(timeout=0)
            except Timeout:
                continue
            try:
                yield
            finally:
                slot.release()
            return
        time.sleep(0.01)


def build(source: str, language: str = "cpp", *, timeout_s: float = COMPILE_TIMEOUT_S) -> BuildResult:
    """Compile ``source`` into a shared library, or take it from the cache.

    Raises :class:`CompileError` with the trimmed compiler output when the source does not
    build, and :class:`~horizongym.envs.kernels.inspect_library.KernelRejected` when the built
    library imports or executes something a kernel may not (both outcomes are cached too, so
    a resubmitted source costs nothing).
    """
    started = time.perf_counter()
    chain = toolchain(language)
    key = hashlib.sha256((chain.fingerprint() + "\0" + RULES_FINGERPRINT + "\0" + source).encode()).hexdigest()[:32]
    root = cache_dir() / "kernels"
    folder = root / key
    cached = folder.exists()
    if not cached:
        root.mkdir(parents=True, exist_ok=True)

        def compile_into(tmp: Path) -> None:
            shown = f"kernel{chain.suffix}"
            with tempfile.TemporaryDirectory(prefix="hg-kernel-") as work:
                src = Path(work) / shown
                src.write_text(source)
                command = [shutil.which(chain.compiler) or chain.compiler, *chain.flags, str(src), "-o", "lib.so"]
                with _build_slot(root):
                    try:
                        done = subprocess.run(
                            command, cwd=work, capture_output=True, text=True, timeout=timeout_s, check=False
                        )
                        output, ok = done.stdout + done.stderr, done.returncode == 0
                    except subprocess.TimeoutExpired:
                        output, ok = f"{chain.compiler} did not finish within {timeout_s:g} s", False
                if not ok:
                    (tmp / "error.txt").write_text(trim_compiler_output(output, str(src), shown) or "build failed")
                    return
                library = Path(work) / "lib.so"
                try:
                    check_library(library)
                except KernelRejected as rejected:
                    (tmp / "rejected.json").write_text(json.dumps([rejected.code, str(rejected)]))
                    return
                shutil.move(str(library), tmp / "lib.so")

        build_atomically(folder, compile_into)
    error = folder / "error.txt"
    if error.exists():
        raise CompileError(error.read_text())
    rejected = folder / "rejected.json"
    if rejected.exists():
        code, detail = json.loads(rejected.read_text())
        raise KernelRejected(code, detail)
    return BuildResult(folder / "lib.so", cached, time.perf_counter() - started)


def record_launch() -> None:
    """Count one kernel-library call (:func:`launch_count`); bound ``load_inline`` functions call it too."""
    global _launches
    _launches += 1


def launch_count() -> int:
    """How many kernel-library calls this process has made (the evaluator checks a candidate made some)."""
    return _launches


class KernelFunction:
    """One exported function of a :class:`KernelLibrary`; calling it converts tensors to data pointers."""

    def __init__(self, name: str, function: Any, language: str) -> None:
        self.name, self._function, self.language = name, function, language
        self._function.restype = None

    def __call__(self, *args: Any) -> None:
        converted: list[Any] = []
        for position, value in enumerate(args):
            converted.append(self._convert(position, value))
        self._function(*converted)
        record_launch()

    def _convert(self, position: int, value: Any) -> Any:
        if isinstance(value, bool):
            return ctypes.c_bool(value)
        if isinstance(value, int):
            return ctypes.c_int64(value)
        if isinstance(value, float):
            return ctypes.c_double(value)
        device = getattr(value, "device", None)
        if device is not None and hasattr(value, "data_ptr"):
            wanted = "cuda" if self.language == "cuda" else "cpu"
            if device.type != wanted:
                raise ValueError(
                    f"{self.name}: argument {position} is on {device.type}; {self.language} needs {wanted}"
                )
            return ctypes.c_void_p(value.data_ptr())
        raise TypeError(
            f"{self.name}: argument {position} is a {type(value).__name__}; pass tensors, int, float or bool"
        )


class KernelLibrary:
    """A built library; attribute access returns its ``extern "C"`` functions."""

    def __init__(self, path: Path, language: str) -> None:
        self.path, self.language = path, language
        self._library = ctypes.CDLL(str(path))
        self._functions: dict[str, KernelFunction] = {}

    def __getattr__(self, name: str) -> KernelFunction:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._functions:
            try:
                symbol = getattr(self._library, name)
            except AttributeError:
                raise AttributeError(
                    f'the kernel library exports no function {name!r}; declare it extern "C"'
                ) from None
            self._functions[name] = KernelFunction(name, symbol, self.language)
        return self._functions[name]


def default_language() -> str:
    """``$HORIZONGYM_KERNEL_LANGUAGE`` if set (the evaluator sets it per backend), else ``cpp``."""
    return os.environ.get(LANGUAGE_VARIABLE) or "cpp"


def candidate_file(kernel_source: str, model_source: str, language: str) -> str:
    """A complete candidate file: imports, ``SOURCE`` (the kernel), ``lib = load_kernel(...)``, ``ModelNew``."""
    return (
        "import torch\nimport torch.nn as nn\n\nfrom horizongym.envs.kernels.api import load_kernel\n\n"
        f'SOURCE = r"""\n{kernel_source.strip()}\n"""\nlib = load_kernel(SOURCE, {language!r})\n\n\n'
        f"{model_source.strip()}\n"
    )


def load_kernel(source: str, language: str | None = None) -> KernelLibrary:
    """Build ``source`` (cached) and load it. ``language`` defaults to the backend's (see module doc)."""
    language = language or default_language()
    return KernelLibrary(build(source, language).path, language)
