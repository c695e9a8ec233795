"""The sandbox contract every execution backend implements, and the types it speaks.

A *sandbox* is an isolated place for one episode: a working directory holding the task's
starting files, where shell commands run under limits. Backends:

* :mod:`horizongym.sandboxes.docker` — one container per episode on the real Docker engine
  (no network, all capabilities dropped, memory/CPU/pids/file-size limits), a warm pool;
* :mod:`horizongym.sandboxes.local` — a process in a temporary directory, for machines with
  no engine. It does **not** isolate anything, and says so.

:func:`horizongym.sandboxes.open_sandbox` picks one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from horizongym.failures import InfrastructureError

LimitName = Literal["timeout", "memory", "pids", "file_size", "sandbox_died"]
"""Which containment limit stopped a command."""


class SandboxError(InfrastructureError):
    """The sandbox itself failed (engine gone, container died); the episode cannot go on.

    An infrastructure failure, never the doing of the commands run inside: a container cannot
    kill its own init process, and a command that runs out of memory is reported as the
    ``memory`` limit, not as this. ``retryable`` (the default) when a fresh sandbox may work (the
    container or the engine died); False where another try cannot help (no engine on this
    machine, an image that does not exist or does not build).
    """


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox (each enforced by the backend, where it can)."""

    memory_mb: int = 1024
    cpus: float = 1.0
    pids: int = 256
    file_size_mb: int = 256
    """Largest file a command may write (RLIMIT_FSIZE)."""
    workdir_mb: int = 512
    """Size of the writable working directory."""
    output_bytes: int = 32_000
    """Command output kept (head and tail, with a note of what was cut)."""


@dataclass(frozen=True)
class SandboxSpec:
    """What a sandbox starts from: an image, a working directory and the task's starting files.

    ``files`` is an uncompressed tar archive whose members are relative to ``workdir``;
    :meth:`Sandbox.reset` restores exactly this content (and nothing else) in ``workdir``.
    """

    image: str
    workdir: str = "/work"
    files: bytes = b""
    env: tuple[tuple[str, str], ...] = ()
    limits: Limits = field(default_factory=Limits)

    @property
    def files_digest(self) -> str:
        return hashlib.sha256(self.files).hexdigest()[:16]


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one command."""

    exit_code: int
    """The shell's exit status; 128 + N when signal N killed it."""
    output: str
    """stdout and stderr together, in order, cut to ``Limits.output_bytes`` (head and tail)."""
    duration_s: float
    timed_out: bool = False
    truncated: bool = False
    limit: LimitName | None = None
    """Set when a containment limit stopped the command."""

    @property
    def stopped_by_limit(self) -> bool:
        return self.limit is not None


@runtime_checkable
class Sandbox(Protocol):
    """An isolated place to run commands and keep files for one episode."""

    spec: SandboxSpec
    isolated: bool
    """False for backends that do not isolate (the local one)."""

    def exec(self, command: str, timeout: float = 30.0) -> ExecResult:
        """Run ``command`` with ``bash -lc`` in the working directory.

        On timeout the whole process group (and anything it left behind) is killed and the
        partial output comes back with ``timed_out=True``. Raises :class:`SandboxError` only
        when the sandbox itself is gone.
        """
        ...

    def write_file(self, path: str, content: bytes) -> None:
        """Write ``content`` at ``path`` (absolute, or relative to the workdir), creating parents."""
        ...

    def read_file(self, path: str) -> bytes:
        """The bytes at ``path``; ``FileNotFoundError`` if there is no such file."""
        ...

    def reset(self) -> None:
        """Kill every command still running and restore the task's starting files in the workdir."""
        ...

    def close(self) -> None:
        """Release the sandbox (remove the container, or return it to its pool)."""
        ...
