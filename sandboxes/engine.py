"""The Docker engine: is one there, and if not, install and start it where the machine allows.

* :func:`engine_status` — what is there: an engine that answers, the ``docker.io`` and
  ``debootstrap`` packages, root and apt to install them;
* :func:`ensure_engine` — a client of an engine that answers, installing ``docker.io`` and
  starting ``dockerd`` in the background first where the machine allows it (root + apt);
* :func:`shared_client` — one client per process;
* :func:`engine_calls` — the docker SDK's failures inside it come out as :class:`SandboxError`.

The ``dockerd`` log lives in the cache folder (``$HORIZONGYM_CACHE`` or
``~/.cache/horizongym``), under ``sandboxes/``. Images are :mod:`horizongym.sandboxes.images`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from horizongym.cache import cache_subdir, file_lock
from horizongym.sandboxes.base import SandboxError


# ----- where things live ---------------------------------------------------------------------
def cache_dir() -> Path:
    """``$HORIZONGYM_CACHE/sandboxes`` (default ``~/.cache/horizongym/sandboxes``), created if missing."""
    return cache_subdir("sandboxes")


# ----- the engine ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineStatus:
    """What this machine has for the docker backend."""

    engine_answers: bool
    engine_version: str | None
    engine_error: str | None
    docker_sdk: bool
    dockerd_installed: bool
    debootstrap_installed: bool
    is_root: bool
    has_apt: bool

    @property
    def can_install(self) -> bool:
        """Whether :func:`ensure_engine` may install packages (root with apt-get)."""
        return self.is_root and self.has_apt

    @property
    def usable(self) -> bool:
        """Whether docker sandboxes can run now, or :func:`ensure_engine` can make them run."""
        return self.docker_sdk and (
            self.engine_answers or self.can_install or (self.dockerd_installed and self.is_root)
        )


def _client(timeout: float = 120.0) -> Any:
    import docker

    return docker.from_env(timeout=int(timeout))


def _ping() -> tuple[Any | None, str | None, str | None]:
    """(client, server version, error): a client when the engine answers."""
    try:
        client = _client()
        client.ping()
        return client, str(client.version().get("Version", "?")), None
    except ImportError as exc:
        return None, None, f"the docker SDK is not installed ({exc})"
    except Exception as exc:
        return None, None, f"{type(exc).__name__}: {exc}"


def engine_status() -> EngineStatus:
    """Look, change nothing: does an engine answer, what is installed, may we install."""
    try:
        import docker  # noqa: F401

        sdk = True
    except ImportError:
        sdk = False
    _, version, error = _ping() if sdk else (None, None, "the docker SDK is not installed")
    return EngineStatus(
        engine_answers=version is not None,
        engine_version=version,
        engine_error=error,
        docker_sdk=sdk,
        dockerd_installed=shutil.which("dockerd") is not None,
        debootstrap_installed=shutil.which("debootstrap") is not None,
        is_root=os.geteuid() == 0,
        has_apt=shutil.which("apt-get") is not None,
    )


def install_packages(packages: list[str]) -> None:
    """``apt-get install -y PACKAGES`` (non-interactive; ``apt-get update`` first if that fails)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SandboxError(
            f"cannot install {' '.join(packages)}: this needs root and apt-get. "
            f"Fix: sudo apt-get install -y {' '.join(packages)}",
            retryable=False,
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", *packages]
    with file_lock("apt"):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SandboxError(
            f"apt-get install {' '.join(packages)} failed:\n{(done.stdout + done.stderr)[-3000:]}", retryable=False
        )


def _start_dockerd() -> Path:
    """Start ``dockerd`` detached from this process (its own session), logging to the cache folder."""
    log_path = cache_dir() / "dockerd.log"
    with open(log_path, "ab") as log:
        subprocess.Popen(
            ["dockerd"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return log_path


def _dockerd_running() -> bool:
    pid_file = Path("/var/run/docker.pid")
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd"
    except (OSError, ValueError):
        return False


_shared: dict[str, Any] = {}


def shared_client(timeout: float = 60.0) -> Any:
    """One :func:`ensure_engine` client per process (the SDK's client is safe to share between threads)."""
    pid = os.getpid()
    if _shared.get("pid") != pid:
        _shared.update(pid=pid, client=ensure_engine(timeout))
    return _shared["client"]


def ensure_engine(timeout: float = 60.0) -> Any:
    """A ``docker.DockerClient`` of an engine that answers; install and start one if need be.

    Where no engine answers and the machine allows it (root with apt-get), installs
    ``docker.io`` and ``debootstrap``, starts ``dockerd`` in the background (it outlives this
    process; log in ``cache_dir()/dockerd.log``) and waits up to ``timeout`` seconds for it.
    Raises :class:`SandboxError` saying what to do otherwise.
    """
    client, _, error = _ping()
    if client is not None:
        return client
    try:
        import docker  # noqa: F401
    except ImportError as exc:
        raise SandboxError("the docker SDK is missing. Fix: pip install 'docker>=7'", retryable=False) from exc
    with file_lock("engine", timeout=timeout + 600):
        client, _, error = _ping()
        if client is not None:
            return client
        is_root = os.geteuid() == 0
        if shutil.which("dockerd") is None or shutil.which("debootstrap") is None:
            if not (is_root and shutil.which("apt-get")):
                raise SandboxError(
                    f"no Docker engine answers ({error}) and this machine cannot install one (needs root and "
                    "apt-get). Fix: sudo apt-get install -y docker.io debootstrap && sudo dockerd &",
                    retryable=False,
                )
            install_packages(["docker.io", "debootstrap"])
        log_path: Path | None = None
        if not _dockerd_running():
            if not is_root:
                raise SandboxError(
                    f"no Docker engine answers ({error}) and dockerd needs root to start. "
                    "Fix: sudo dockerd & (or: sudo systemctl start docker), then add yourself to the "
                    "docker group: sudo usermod -aG docker $USER",
                    retryable=False,
                )
            log_path = _start_dockerd()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            client, _, error = _ping()
            if client is not None:
                return client
            time.sleep(0.5)
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if log_path is None:
        raise SandboxError(
            f"a dockerd runs but does not answer at {where} within {timeout:.0f} s ({error}). "
            "Fix: check DOCKER_HOST, or the engine's log (journalctl -u docker, or "
            f"{cache_dir() / 'dockerd.log'} if horizongym started it)",
            retryable=False,
        )
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise SandboxError(
        f"dockerd did not answer at {where} within {timeout:.0f} s ({error}); {log_path}:\n{tail}", retryable=False
    )


def is_engine_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the docker SDK saying the engine refused or is gone (an API error, a lost socket)."""
    try:
        import docker.errors
        import requests.exceptions
    except ImportError:
        return False
    return isinstance(exc, docker.errors.DockerException | requests.exceptions.RequestException)


@contextlib.contextmanager
def engine_calls(what: str) -> Iterator[None]:
    """Calls to the engine inside come out as :class:`SandboxError` when the SDK fails (retryable:
    the engine answered with an error or went away), ``what`` saying what was being done."""
    try:
        yield
    except SandboxError:
        raise
    except Exception as exc:
        if not is_engine_failure(exc):
            raise
        raise SandboxError(f"{what}: the docker engine failed ({type(exc).__name__}: {exc})") from exc
