"""Reading JSONL data files (gzip or not) with errors that name the file and line."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def open_text(path: Path, *, newline: str | None = None) -> IO[str]:
    """Open a UTF-8 text file, decompressing gzip (recognised by its magic bytes, whatever the name).

    ``newline`` as in ``open`` (``""`` for the ``csv`` module)."""
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline=newline)
    return path.open(encoding="utf-8", newline=newline)


def json_objects(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(line index, where, object)`` for each non-blank line (``where`` = "FILE:LINE").

    Raises ``ValueError`` naming the file and line for a line that is not a JSON object.
    """
    with open_text(path) as f:
        for index, line in enumerate(f):
            if not line.strip():
                continue
            where = f"{path}:{index + 1}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
            yield index, where, record
