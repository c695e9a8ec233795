"""What every command-line module shares: argparse types, the words for an OS error, the ``--out`` check.

This module sits below everything (it imports nothing of horizongym), so the sub-commands that
live next to their packages (``envs/kernels/cli.py``, ``envs/swe/cli.py``) and the top-level
``cli.py`` read numbers and report files the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def os_error(exc: OSError) -> str:
    """What an OSError says, with the path it is about: ``File exists: /proc/version``."""
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename}" if exc.filename else reason


def unwritable_out(out: Path, example_name: str) -> str | None:
    """Why ``--out`` FILE cannot be written (checked before a long run starts), or None when it can.

    The file's folder is created if missing; a file that did not exist is not left behind.
    """
    if out.is_dir():
        return f"--out {out} is a folder; give a file path such as {out / example_name}"
    existed = out.exists()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "ab"):
            pass
    except OSError as exc:
        return f"cannot write --out {out}: {os_error(exc)}; choose another path"
    if not existed:
        out.unlink()
    return None
