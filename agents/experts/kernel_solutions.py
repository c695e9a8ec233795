"""Hand-written KernelGen-v0 solutions: one candidate ("ModelNew") file per task and language.

``SOLUTIONS[task_name]["cpp"]`` is a complete candidate file whose kernel is C++ (built by
``g++ -O3 -march=native -fopenmp``); ``SOLUTIONS[task_name]["cuda"]``, where present, is the same
``ModelNew`` over a CUDA kernel. They obey the candidate rules (only allocation and layout calls
in ``forward``, all arithmetic in the kernel, parameters created as the reference creates them)
and serve as the environment's expert baseline, as SFT data and as a check that a task is
solvable. The CPU kernels win over eager PyTorch by fusing its passes over memory into one
and by a branch-free, vectorisable ``exp`` (``fast_exp.h``).

The sources are files in ``kernel_sources/``: per task, ``<task>.py`` holds the ``ModelNew`` class
shared by both languages (it calls the kernel's functions through ``lib``), ``<task>.cpp`` the C++
kernel and ``<task>.cu`` the CUDA one. A kernel's local includes (``#include "fast_exp.h"``) are
replaced by the header's text, since a candidate's kernel is one self-contained source.
:func:`~horizongym.envs.kernels.api.candidate_file` assembles a kernel and its ``ModelNew`` into
a candidate file.

``kernel_sources/kernelbench/<task>.py`` holds solutions in KernelBench's own form: one Python file
whose C++ is a string built by ``torch.utils.cpp_extension.load_inline(cpp_sources=...,
functions=[...])`` and bound as ``torch::Tensor`` functions (:data:`KERNELBENCH_SOLUTIONS`; their
``#include "../<header>"`` lines are replaced by the header's text like the kernels' includes).
"""

from __future__ import annotations

import re
from pathlib import Path

from horizongym.envs.kernels.api import candidate_file

SOURCES_ROOT = Path(__file__).resolve().parent / "kernel_sources"
"""The folder of solution files: ``<task>.py`` (``ModelNew``), ``<task>.cpp``, ``<task>.cu`` and shared headers."""

KERNEL_SUFFIXES = {"cpp": ".cpp", "cuda": ".cu"}
"""The file suffix of a kernel in each language."""

_LOCAL_INCLUDE = re.compile(r'^#include "([^"]+)"[ \t]*$\n?', re.MULTILINE)


def read_kernel(path: Path) -> str:
    """The kernel source in ``path``, each ``#include "<header>"`` replaced by that header's text (same folder)."""

    def header_text(match: re.Match[str]) -> str:
        header = path.parent / match.group(1)
        if not header.is_file():
            raise FileNotFoundError(f"{path} includes {match.group(1)!r}, which is not a file in {path.parent}")
        return header.read_text()

    return _LOCAL_INCLUDE.sub(header_text, path.read_text())


def load_kernels(root: Path = SOURCES_ROOT) -> dict[str, dict[str, str]]:
    """Task name -> {language: kernel source} for every ``<task>.cpp`` / ``<task>.cu`` under ``root``.

    Raises ``FileNotFoundError`` for a kernel without its ``<task>.py`` (the ``ModelNew`` that calls it)
    and ``ValueError`` for a ``<task>.py`` without any kernel.
    """
    kernels: dict[str, dict[str, str]] = {}
    for language, suffix in KERNEL_SUFFIXES.items():
        for path in sorted(root.glob(f"*{suffix}")):
            if not path.with_suffix(".py").is_file():
                raise FileNotFoundError(f"{path} has no {path.stem}.py next to it (the ModelNew that calls the kernel)")
            kernels.setdefault(path.stem, {})[language] = read_kernel(path)
    lonely = sorted(path.name for path in root.glob("*.py") if path.stem not in kernels)
    if lonely:
        raise ValueError(f"{root}: {lonely} have no kernel ({' or '.join(KERNEL_SUFFIXES.values())} file)")
    return dict(sorted(kernels.items()))


def load_solutions(root: Path = SOURCES_ROOT) -> dict[str, dict[str, str]]:
    """Task name -> {language: candidate file}: each kernel under ``root`` with its task's ``ModelNew``."""
    return {
        task: {
            language: candidate_file(kernel, (root / f"{task}.py").read_text(), language)
            for language, kernel in by_language.items()
        }
        for task, by_language in load_kernels(root).items()
    }


SOLUTIONS: dict[str, dict[str, str]] = load_solutions()
"""Task name -> {"cpp": candidate file, optionally "cuda": candidate file}."""

KERNELBENCH_ROOT = SOURCES_ROOT / "kernelbench"
"""The folder of KernelBench-form (``load_inline``) solution files, one ``<task>.py`` per task."""


def load_kernelbench_solutions(root: Path = KERNELBENCH_ROOT) -> dict[str, str]:
    """Task name -> KernelBench-form candidate file, for every ``<task>.py`` under ``root``."""
    return {path.stem: read_kernel(path) for path in sorted(root.glob("*.py"))}


KERNELBENCH_SOLUTIONS: dict[str, str] = load_kernelbench_solutions()
"""Task name -> a candidate file in KernelBench's ``load_inline`` form (C++, the cpu backend)."""

KERNELS: dict[str, dict[str, str]] = load_kernels()
"""Task name -> {language: kernel source alone}, for building a kernel without running its Python."""
