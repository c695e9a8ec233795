"""Isolated execution backends behind one small protocol (see ``sandboxes.base``).

    from horizongym.sandboxes import SandboxSpec, ensure_base_image, open_sandbox

    with open_sandbox(SandboxSpec(image=ensure_base_image())) as box:   # a docker container
        print(box.exec("python3 -c 'print(6 * 7)'").output)

``open_sandbox(spec, backend="auto")`` gives a docker sandbox when an engine answers and a
local (not isolating) one otherwise; ``pool=SandboxPool(...)`` hands out warm containers.
The docker modules are imported on first use, so this package imports without the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from horizongym.sandboxes.base import ExecResult, LimitName, Limits, Sandbox, SandboxError, SandboxSpec
from horizongym.sandboxes.engine import EngineStatus, engine_status, ensure_engine, shared_client
from horizongym.sandboxes.images import ImageBuildError, derive_image, ensure_base_image, tar_files
from horizongym.sandboxes.local import LocalSandbox

if TYPE_CHECKING:
    from horizongym.sandboxes.docker import DockerSandbox
    from horizongym.sandboxes.pool import SandboxPool

Backend = Literal["auto", "docker", "local"]
BACKENDS = ("auto", "docker", "local")

__all__ = [
    "BACKENDS",
    "Backend",
    "DockerSandbox",
    "EngineStatus",
    "ExecResult",
    "ImageBuildError",
    "LimitName",
    "Limits",
    "LocalSandbox",
    "Sandbox",
    "SandboxError",
    "SandboxPool",
    "SandboxSpec",
    "derive_image",
    "docker_available",
    "engine_status",
    "ensure_base_image",
    "ensure_engine",
    "open_sandbox",
    "tar_files",
]

_engine_answers: bool | None = None


def docker_available() -> bool:
    """Whether a Docker engine answers (asked once per process, then remembered while it answered)."""
    global _engine_answers
    if not _engine_answers:
        _engine_answers = engine_status().engine_answers
    return bool(_engine_answers)


def open_sandbox(spec: SandboxSpec, backend: str = "auto", pool: SandboxPool | None = None) -> Sandbox:
    """A sandbox for ``spec``.

    ``backend``: ``"docker"`` (a container; :class:`SandboxError` with the fix when no engine
    answers), ``"local"`` (a temporary folder, not isolated) or ``"auto"`` (docker when an
    engine answers, else local). ``pool`` hands out a warm container of that pool instead of
    starting one (docker only); ``close()`` gives it back.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "local":
        if pool is not None:
            raise ValueError("a SandboxPool holds docker containers; it cannot serve backend='local'")
        return LocalSandbox(spec)
    if pool is not None:
        return pool.acquire(spec)
    if backend == "auto" and not docker_available():
        return LocalSandbox(spec)
    from horizongym.sandboxes.docker import DockerSandbox

    return DockerSandbox(spec, client=shared_client())


def __getattr__(name: str) -> Any:
    if name == "DockerSandbox":
        from horizongym.sandboxes.docker import DockerSandbox

        return DockerSandbox
    if name == "SandboxPool":
        from horizongym.sandboxes.pool import SandboxPool

        return SandboxPool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
