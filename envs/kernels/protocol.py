"""The wire format between the evaluator and its child processes: JSON headers and raw array bytes.

A child that runs candidate code cannot be trusted, so the parent never unpickles anything it
sends: a message is one JSON header (``kind``, ``meta``, and the dtype and shape of each
array) followed by each array's raw bytes. The parent checks the kind, the sizes and the
dtypes; anything else is a :class:`ProtocolError`, which the evaluator scores as tampering.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

MAX_HEADER_BYTES = 1 << 20
MAX_ARRAY_BYTES = 1 << 31
ARRAY_DTYPES = frozenset({"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"})


class ProtocolError(RuntimeError):
    """A message that does not follow the format (or comes from a child that misbehaves)."""


@dataclass
class Message:
    """One decoded message."""

    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: list[np.ndarray] = field(default_factory=list)


def send(conn: Connection, kind: str, meta: dict[str, Any] | None = None, arrays: Sequence[np.ndarray] = ()) -> None:
    """Send ``kind`` with JSON-able ``meta`` and numpy ``arrays``."""
    contiguous = [np.ascontiguousarray(array) for array in arrays]
    header = {
        "kind": kind,
        "meta": meta or {},
        "arrays": [{"dtype": str(array.dtype), "shape": list(array.shape)} for array in contiguous],
    }
    conn.send_bytes(json.dumps(header).encode())
    for array in contiguous:
        conn.send_bytes(array.tobytes())


def receive(conn: Connection, kinds: frozenset[str] | set[str]) -> Message:
    """Read one message whose kind is in ``kinds``; raise :class:`ProtocolError` on anything malformed."""
    try:
        header = json.loads(conn.recv_bytes(MAX_HEADER_BYTES))
    except (ValueError, OSError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ProtocolError(f"unreadable message header ({error})") from None
    if not isinstance(header, dict) or header.get("kind") not in kinds:
        raise ProtocolError(f"unexpected message {str(header)[:200]!r}; expected one of {sorted(kinds)}")
    meta, specs = header.get("meta", {}), header.get("arrays", [])
    if not isinstance(meta, dict) or not isinstance(specs, list):
        raise ProtocolError("malformed message header")
    arrays = [_receive_array(conn, spec) for spec in specs]
    return Message(header["kind"], meta, arrays)


def _receive_array(conn: Connection, spec: Any) -> np.ndarray:
    if not isinstance(spec, dict) or spec.get("dtype") not in ARRAY_DTYPES or not isinstance(spec.get("shape"), list):
        raise ProtocolError(f"malformed array header {str(spec)[:200]!r}")
    shape = spec["shape"]
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ProtocolError(f"malformed array shape {shape!r}")
    dtype = np.dtype(spec["dtype"])
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size > MAX_ARRAY_BYTES:
        raise ProtocolError(f"array of {size} bytes is too large")
    try:
        data = conn.recv_bytes(max(size, 1))
    except OSError as error:
        raise ProtocolError(f"array bytes not received ({error})") from None
    if len(data) != size:
        raise ProtocolError(f"array has {len(data)} bytes, its header says {size}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)
