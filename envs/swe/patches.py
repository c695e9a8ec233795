"""Unified diffs: split a patch by file, and keep only the files a predicate allows.

The harness judges a submission by the hidden tests, so an agent's changes to test files or
test configuration are dropped before the tests run (as SWE-bench restores the test files
its ``test_patch`` touches): deleting a failing test, or a ``conftest.py`` that skips
everything, cannot turn a task green.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_GIT_HEADER = re.compile(r"^diff --git a/(.+?) b/(.+)$")
_TEST_DIRS = frozenset({"tests", "test", "testing"})
_TEST_CONFIG = frozenset(
    {"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "sitecustomize.py", "usercustomize.py"}
)


@dataclass(frozen=True)
class FilePatch:
    """The part of a patch that changes one file (``path`` is the new path, or the old one if deleted)."""

    path: str
    text: str


def split_patch(patch: str) -> list[FilePatch]:
    """The per-file sections of a git-style unified diff (``diff --git`` headers, or bare ``---``/``+++`` pairs)."""
    lines = patch.splitlines(keepends=True)
    starts: list[int] = []
    in_git_section = False
    old_left = new_left = 0  # lines of the current hunk still to read, on each side
    for i, line in enumerate(lines):
        if (old_left > 0 or new_left > 0) and line[:1] in (" ", "-", "+", "\\"):
            old_left -= line[:1] in (" ", "-")
            new_left -= line[:1] in (" ", "+")
            continue
        old_left = new_left = 0
        hunk = _HUNK.match(line)
        if hunk:
            old_left, new_left = int(hunk.group(1) or 1), int(hunk.group(2) or 1)
        elif line.startswith("diff --git "):
            starts.append(i)
            in_git_section = True
        elif not in_git_section and line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            starts.append(i)
    sections = []
    for begin, end in zip(starts, [*starts[1:], len(lines)][: len(starts)], strict=True):
        sections.append(FilePatch(_section_path(lines[begin:end]), "".join(lines[begin:end])))
    return sections


def _section_path(lines: list[str]) -> str:
    match = _GIT_HEADER.match(lines[0].rstrip("\n"))
    if match:
        return match.group(2)
    new = next((line[4:].strip() for line in lines if line.startswith("+++ ")), "")
    old = next((line[4:].strip() for line in lines if line.startswith("--- ")), "")
    path = old if new == "/dev/null" else new
    path = path.split("\t")[0]
    return path[2:] if path[:2] in ("a/", "b/") else path


def patch_paths(patch: str) -> list[str]:
    """The files a patch touches."""
    return [section.path for section in split_patch(patch)]


def is_test_path(path: str) -> bool:
    """A test file, a test folder's file, or test configuration (``conftest.py``, ``pytest.ini``, …)."""
    parts = PurePosixPath(path).parts
    name = parts[-1] if parts else ""
    return (
        name in _TEST_CONFIG
        or (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
        or any(part in _TEST_DIRS for part in parts[:-1])
    )


def filter_patch(patch: str, keep: Callable[[str], bool]) -> tuple[str, list[str]]:
    """(the patch with only the files ``keep`` accepts, the paths dropped)."""
    kept: list[FilePatch] = []
    dropped: list[FilePatch] = []
    for section in split_patch(patch):
        (kept if keep(section.path) else dropped).append(section)
    return "".join(s.text for s in kept), [s.path for s in dropped]
