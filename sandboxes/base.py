"""The sandbox contract every execution backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Sandbox(Protocol):
    """An isolated place to run commands and keep files for one episode."""

    def exec(self, cmd: str, timeout: float) -> tuple[int, str]:
        """Run ``cmd`` in a shell; return (exit code, combined output). Kills the whole group on timeout."""
        ...

    def write_file(self, path: str, content: bytes) -> None: ...

    def read_file(self, path: str) -> bytes: ...

    def reset(self) -> None:
        """Restore the starting state of the current task."""
        ...

    def close(self) -> None: ...
