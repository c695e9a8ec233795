"""The local backend: commands run as plain processes of this machine, in a temporary folder.

**It does not isolate anything.** Commands run as this user, see the whole filesystem and the
network, and can read, change or delete anything this user can. Only a few limits are applied,
where the platform allows: a wall-clock timeout that kills the command's whole process group,
an output cap, and per-process ``RLIMIT_FSIZE`` / ``RLIMIT_AS`` (``Limits.file_size_mb`` /
``Limits.memory_mb``). There is no pids or CPU limit and no limit on total memory. Use it where
no Docker engine exists, for trusted commands; a warning says so once per process.

Absolute paths under ``spec.workdir`` (``/work/x``) are mapped into the temporary folder, for
``write_file``/``read_file`` and for the commands' working directory, so code written for the
docker backend mostly works; a command that names ``/work`` itself does not.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import select
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import warnings
from pathlib import Path

from horizongym.sandboxes.base import ExecResult, LimitName, SandboxError, SandboxSpec
from horizongym.sandboxes.server import DRAIN_S, OutputCap, overlay, pack
from horizongym.sandboxes.snapshots import TMP, WORK, SandboxSnapshot, SnapshotMethod, changes_since, check_method

_warned = False
_warn_lock = threading.Lock()
WARNING = (
    "horizongym LocalSandbox runs commands as plain processes of this machine: nothing is isolated "
    "(files, network, processes). Install Docker for isolation: horizongym sandbox doctor"
)


def _warn_once() -> None:
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    warnings.warn(WARNING, RuntimeWarning, stacklevel=3)


class LocalSandbox:
    """A temporary folder and ``bash -lc`` processes; **not isolated** (see the module docstring)."""

    isolated = False

    def __init__(self, spec: SandboxSpec) -> None:
        if not isinstance(spec, SandboxSpec):
            raise TypeError(f"expected a SandboxSpec, got {type(spec).__name__}")
        if not spec.workdir.startswith("/"):
            raise ValueError(f"SandboxSpec.workdir must be absolute, got {spec.workdir!r}")
        if shutil.which("bash") is None:
            raise SandboxError("the local sandbox needs bash on PATH", retryable=False)
        _warn_once()
        self.spec = spec
        self.root = Path(tempfile.mkdtemp(prefix="horizongym-local-"))
        self.workdir = self.root / "work"
        self.tmp = self.root / "tmp"
        self._lock = threading.Lock()
        self._closed = False
        self._groups: set[int] = set()
        self.reset()

    def __repr__(self) -> str:
        return f"LocalSandbox({str(self.workdir)!r}, not isolated)"

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("this sandbox is closed", retryable=False)

    def host_path(self, path: str) -> Path:
        """Where ``path`` (absolute in the sandbox's terms, or relative to the workdir) is on this machine."""
        if not isinstance(path, str) or not path:
            raise ValueError(f"a file path is needed, got {path!r}")
        virtual = posixpath.normpath(posixpath.join(self.spec.workdir, path))
        workdir = posixpath.normpath(self.spec.workdir)
        if virtual == workdir:
            return self.workdir
        if virtual.startswith(workdir + "/"):
            return self.workdir / virtual[len(workdir) + 1 :]
        return Path(virtual)

    def _limits(self) -> None:
        import resource

        lim = self.spec.limits
        fsize = lim.file_size_mb * 1024 * 1024
        memory = lim.memory_mb * 1024 * 1024
        for which, value in ((resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_AS, memory)):
            with contextlib.suppress(ValueError, OSError):
                _, hard = resource.getrlimit(which)
                resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else min(value, hard)))

    def exec(self, command: str, timeout: float = 30.0) -> ExecResult:
        if not isinstance(command, str):
            raise TypeError(f"command must be a string, got {type(command).__name__}")
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._check_open()
        env = {**os.environ, **dict(self.spec.env), "TMPDIR": str(self.tmp), "HOME": str(self.tmp)}
        out = OutputCap(self.spec.limits.output_bytes)
        start = time.monotonic()
        with self._lock:
            try:
                proc = subprocess.Popen(
                    ["bash", "-lc", command],
                    cwd=self.workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=self._limits,
                )
            except OSError as exc:  # no process could be started: the machine's doing, not the command's
                gone = "" if self.workdir.is_dir() else f" (its folder {self.workdir} is gone)"
                raise SandboxError(f"could not start a command{gone}: {type(exc).__name__}: {exc}") from exc
            self._groups.add(proc.pid)
            timed_out = self._pump(proc, out, start + timeout)
            if timed_out:
                self._kill_group(proc.pid)
            returncode = proc.wait()
        duration = time.monotonic() - start
        code = 128 - returncode if returncode < 0 else returncode
        text, truncated = out.text()
        limit: LimitName | None = "timeout" if timed_out else None
        if not timed_out and (code == 128 + signal.SIGXFSZ or (code != 0 and "File too large" in text)):
            limit = "file_size"
        elif not timed_out and code != 0 and ("MemoryError" in text or "Cannot allocate memory" in text):
            limit = "memory"
        return ExecResult(code, text, duration, timed_out=timed_out, truncated=truncated, limit=limit)

    @staticmethod
    def _pump(proc: subprocess.Popen[bytes], out: OutputCap, deadline: float) -> bool:
        """Read output until the command exits (plus a short drain) or ``deadline``; True if it timed out."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        exited_at: float | None = None
        try:
            while True:
                now = time.monotonic()
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > DRAIN_S:
                    return False
                if now >= deadline:
                    return exited_at is None
                ready, _, _ = select.select([fd], [], [], min(0.01, deadline - now))
                if ready:
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        if exited_at is not None or proc.poll() is not None:
                            return False
                        # the pipe closed but the command runs on: wait for it without reading
                        while proc.poll() is None:
                            if time.monotonic() >= deadline:
                                return True
                            time.sleep(0.01)
                        return False
                    out.add(chunk)
        finally:
            proc.stdout.close()

    def _kill_group(self, pgid: int) -> None:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)

    def write_file(self, path: str, content: bytes) -> None:
        if isinstance(content, str):
            raise TypeError("write_file takes bytes; encode text first (content.encode())")
        self._check_open()
        target = self.host_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(content))

    def read_file(self, path: str) -> bytes:
        self._check_open()
        return self.host_path(path).read_bytes()

    def reset(self) -> None:
        """Kill what earlier commands left running, empty the folder and restore ``spec.files``."""
        self._check_open()
        with self._lock:
            for pgid in self._groups:
                self._kill_group(pgid)
            self._groups.clear()
            try:
                for folder in (self.workdir, self.tmp):
                    shutil.rmtree(folder, ignore_errors=True)
                    folder.mkdir(parents=True)
            except OSError as exc:
                raise SandboxError(f"could not empty the sandbox's folder {self.root}: {exc}") from exc
            if self.spec.files:
                _unpack(bytes(self.spec.files), self.workdir)

    def snapshot(self, method: SnapshotMethod = "archive") -> SandboxSnapshot:
        """The folder's files as an ``archive`` snapshot (:mod:`horizongym.sandboxes.snapshots`); the local
        backend has no images to ``commit``."""
        if check_method(method) != "archive":
            raise ValueError("the local sandbox has no images to commit: use the snapshot method 'archive'")
        self._check_open()
        with self._lock:
            packed = pack({WORK: str(self.workdir), TMP: str(self.tmp)})
        changes, removed = changes_since(bytes(self.spec.files), packed)
        return SandboxSnapshot("archive", "local", self.spec, changes, removed)

    @classmethod
    def restore(cls, snapshot: SandboxSnapshot) -> LocalSandbox:
        """A new local sandbox holding ``snapshot``'s files."""
        if snapshot.method != "archive" or snapshot.backend != "local":
            kind = f"{snapshot.backend} {snapshot.method}"
            raise ValueError(f"a local sandbox restores local archive snapshots, not a {kind} one")
        box = cls(snapshot.spec)
        try:
            with box._lock:
                roots = {WORK: str(box.workdir), TMP: str(box.tmp)}
                overlay(snapshot.changes, roots, {WORK: list(snapshot.removed)}, [str(box.tmp)])
        except BaseException:
            box.close()
            raise
        return box

    def close(self) -> None:
        if self._closed:
            return
        with self._lock:
            for pgid in self._groups:
                self._kill_group(pgid)
            self._closed = True
        shutil.rmtree(self.root, ignore_errors=True)


def _unpack(blob: bytes, workdir: Path) -> None:
    root = workdir.resolve()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as archive:
        for member in archive.getmembers():
            target = (root / member.name).resolve()
            if target != root and root not in target.parents:
                raise ValueError(f"archive member {member.name!r} is outside the workdir")
        archive.extractall(root, filter="data")
