"""The registered environments for the play page: id, description, and the tools each offers.

The tools are the OpenAI schemas of an env built once (its ``tools`` after construction), kept for
the process; an env that cannot be built is listed with ``"tools": []`` and the ``error`` line.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import horizongym
from horizongym.envs import TextEnv, describe, registry, short_id

_lock = threading.Lock()


@functools.cache
def env_entry(env_id: str) -> dict[str, Any]:
    """One env's entry (built once: the first call builds it and closes it)."""
    entry: dict[str, Any] = {"id": env_id, "description": "", "tools": []}
    try:
        entry["description"] = describe(env_id)
        env = horizongym.make(env_id)
    except Exception as exc:
        text = str(exc).strip()
        entry["error"] = f"cannot build {env_id}: {type(exc).__name__}: {text.splitlines()[0] if text else ''}"
        return entry
    try:
        inner = env.unwrapped
        if isinstance(inner, TextEnv):
            entry["tools"] = inner.tools.schemas()
    finally:
        env.close()
    return entry


def env_list() -> dict[str, Any]:
    """The payload of ``GET /api/envs``."""
    with _lock:
        return {"envs": [env_entry(short_id(env_id)) for env_id in sorted(registry)]}
