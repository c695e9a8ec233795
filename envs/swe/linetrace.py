"""A pytest plugin that records which lines of the code under test each test runs.

Loaded inside the sandbox (``python -m pytest -p horizongym_linetrace``) with two variables
set: ``HORIZONGYM_TRACE_FILES`` (a file listing the source files to trace, one per line,
relative to the working directory) and ``HORIZONGYM_TRACE_OUT`` (where the JSON result goes).
A ``sys.settrace`` hook traces line events only in frames whose code is one of those files, so
the rest of the run pays for one call event per function call. The result::

    {"tests": [node ids in run order], "outcomes": {node id: passed|failed|skipped},
     "collect_errors": [paths that failed to collect], "deselected": [node ids left out by -m/-k],
     "lines": {file relative to cwd: {line: [indexes into "tests"]}}}

Module-level code runs during collection, before any test, so it is never attributed to a
test; the miner mutates function bodies only. This file imports nothing from horizongym: it
runs in the task's environment, where only the standard library and pytest exist.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import pytest

TraceFunction = Callable[[FrameType, str, Any], Any]


def _traced_files() -> dict[str, str]:
    listing = os.environ.get("HORIZONGYM_TRACE_FILES")
    if not listing:
        return {}
    with open(listing, encoding="utf-8") as handle:
        names = [line.strip() for line in handle if line.strip()]
    return {os.path.abspath(name): name for name in names}


_FILES = _traced_files()
_TESTS: list[str] = []
_OUTCOMES: dict[str, str] = {}
_COLLECT_ERRORS: list[str] = []
_DESELECTED: list[str] = []
_LINES: dict[str, dict[int, set[int]]] = {}
_TRACED: dict[str, str | None] = {}
_current: set[tuple[str, int]] = set()


def _relative(filename: str) -> str | None:
    """The path of ``filename`` relative to the working directory if it is traced, else None."""
    if filename not in _TRACED:
        _TRACED[filename] = _FILES.get(os.path.abspath(filename))
    return _TRACED[filename]


def _local(frame: FrameType, event: str, arg: Any) -> TraceFunction:
    if event == "line":
        _current.add((frame.f_code.co_filename, frame.f_lineno))
    return _local


def _global(frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
    if _relative(frame.f_code.co_filename) is None:
        return None
    _current.add((frame.f_code.co_filename, frame.f_lineno))
    return _local


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    _current.clear()
    threading.settrace(_global)
    sys.settrace(_global)
    try:
        yield
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type,unused-ignore]
    index = len(_TESTS)
    _TESTS.append(item.nodeid)
    for filename, line in _current:
        relative = _relative(filename)
        if relative is not None:
            _LINES.setdefault(relative, {}).setdefault(line, set()).add(index)
    _current.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    previous = _OUTCOMES.get(report.nodeid, "passed")
    if report.failed:
        _OUTCOMES[report.nodeid] = "failed"
    elif report.skipped and previous == "passed" and report.when != "teardown":
        _OUTCOMES[report.nodeid] = "skipped"
    else:
        _OUTCOMES.setdefault(report.nodeid, previous)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _COLLECT_ERRORS.append(report.nodeid)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _DESELECTED.extend(item.nodeid for item in items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = os.environ.get("HORIZONGYM_TRACE_OUT")
    if not out:
        return
    lines = {
        path: {str(line): sorted(tests) for line, tests in sorted(by_line.items())} for path, by_line in _LINES.items()
    }
    result = {
        "tests": _TESTS,
        "outcomes": _OUTCOMES,
        "collect_errors": _COLLECT_ERRORS,
        "deselected": _DESELECTED,
        "lines": lines,
    }
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, sort_keys=True)
