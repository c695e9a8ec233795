"""What every command-line module shares: argparse types and the words for an OS error.

This module sits below everything (it imports nothing of horizongym), so the sub-commands that
live next to their packages (``envs/kernels/cli.py``, ``envs/swe/cli.py``) and the top-level
``cli.py`` read numbers and report files the same way.
"""

from __future__ import annotations

import argparse


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
