"""A small fork server: one process imports ``torch`` once, then forks a fresh child per evaluation.

Starting a Python process that imports torch takes seconds; forking one that already has takes
milliseconds. The parent talks to the zygote over a Unix socket: for each evaluation it sends
one end of a new socket pair (``SCM_RIGHTS``) and the pickled request; the zygote forks, the
child runs :func:`horizongym.envs.kernels.worker.run_child` talking over that socket, and
the zygote answers the child's pid (so the parent can kill its process group), or ``-errno``
when it could not fork. Unlike ``multiprocessing``'s forkserver this never re-imports the
caller's ``__main__``, so it works from any script. The zygote exits when the parent closes its end.

The zygote reaps its children itself and keeps how each one ended until the parent asks
(:meth:`Zygote.exit_status`): whether a child that stopped answering crashed (a signal the
candidate's code caused, such as ``SIGSEGV``) or was killed from outside (``SIGKILL``,
``SIGTERM``) decides whose failure it was.

Requests are a 9-byte header (an operation byte and the payload's size) and the payload:
``F`` (fork; the payload is the pickled request, the socket travels with the header) or ``W``
(wait: pid, timeout in seconds, forget). ``W`` answers the child's ``waitpid`` status once it
has ended within the timeout, :data:`RUNNING` if it still runs, :data:`UNKNOWN` if the zygote
never forked it; ``forget`` says the parent will not ask again (the zygote reaps it whenever it ends).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

_REQUEST = struct.Struct("!cQ")
_PID = struct.Struct("!q")
_WAIT = struct.Struct("!qd?")
_STATUS = struct.Struct("!q")
RUNNING = -1
"""The answer to ``W`` for a child that has not ended yet."""
UNKNOWN = -2
"""The answer to ``W`` for a pid this zygote did not fork (or was told to forget)."""


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise EOFError("the other end closed the socket")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""glibc ``mallopt`` parameters (malloc.h)."""


def keep_freed_memory() -> None:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel.

    By default a large tensor is ``mmap``-ed and returned on free, so every call of an operator
    pays page faults for its output, and how many varies from run to run: timings swing by
    several times. With this, buffers of up to 32 MiB come from the heap and are reused.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)


class Exits:
    """The zygote's children: those still running, and how the ended ones ended (until asked)."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.ended: dict[int, int] = {}
        self.forgotten: set[int] = set()

    def reap(self) -> None:
        """Collect every child that has ended (``waitpid`` without blocking)."""
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.running.clear()
                return
            if pid == 0:
                return
            self.running.discard(pid)
            if pid in self.forgotten:
                self.forgotten.discard(pid)
            else:
                self.ended[pid] = status

    def wait(self, pid: int, timeout: float, forget: bool) -> int:
        """``pid``'s ``waitpid`` status once it ended within ``timeout`` s; :data:`RUNNING` or :data:`UNKNOWN`."""
        deadline = time.monotonic() + timeout
        while True:
            self.reap()
            if pid in self.ended:
                return self.ended.pop(pid)
            if pid not in self.running:
                return UNKNOWN
            if time.monotonic() >= deadline:
                if forget:
                    self.forgotten.add(pid)
                return RUNNING
            time.sleep(0.002)


def import_lazy_parts() -> None:
    """Import what a child would otherwise import on its first guarded call, once for all children.

    The first operator dispatched under a ``TorchDispatchMode`` imports ``torch._dynamo`` (seconds);
    done here, before any fork, each child starts with it loaded.
    """
    import torch

    from horizongym.envs.kernels.guards import OperatorGuard

    with OperatorGuard():
        torch.empty(1)


def serve(control: socket.socket) -> None:
    """The zygote's loop: fork a child per ``F`` request, answer ``W`` requests (module docstring)."""
    keep_freed_memory()
    from horizongym.envs.kernels.worker import run_child  # imports torch once, before any fork

    import_lazy_parts()
    exits = Exits()
    while True:
        try:
            header, fds, _, _ = socket.recv_fds(control, _REQUEST.size, 1)
            if not header:
                return
            if len(header) < _REQUEST.size:
                header += _recv_exactly(control, _REQUEST.size - len(header))
            operation, size = _REQUEST.unpack(header)
            payload = _recv_exactly(control, size)
        except (OSError, EOFError):
            return
        if operation == b"W" and size == _WAIT.size and not fds:
            pid, timeout, forget = _WAIT.unpack(payload)
            control.sendall(_STATUS.pack(exits.wait(pid, timeout, forget)))
            continue
        if operation != b"F" or len(fds) != 1:
            return  # not this protocol: stop, and the parent sees the zygote gone
        exits.reap()
        try:
            pid = os.fork()
        except OSError as error:  # no process can be made now (EAGAIN, ENOMEM): the parent reports it
            os.close(fds[0])
            control.sendall(_PID.pack(-(error.errno or 1)))
            continue
        if pid == 0:
            control.close()
            request = pickle.loads(payload)
            run_child(request, Connection(fds[0]))
            os._exit(0)
        exits.running.add(pid)
        os.close(fds[0])
        control.sendall(_PID.pack(pid))


def main() -> None:
    """Entry point: ``python -m horizongym.envs.kernels.zygote FD``."""
    serve(socket.socket(fileno=int(sys.argv[1])))


class Zygote:
    """The parent's handle on a zygote process; :meth:`start_child` is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    def _ensure_started(self) -> socket.socket:
        if self._process is not None and self._process.poll() is None and self._control is not None:
            return self._control
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "horizongym.envs.kernels.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env={**os.environ, "THP_MEM_ALLOC_ENABLE": "1"},
        )
        theirs.close()
        self._control = ours
        return ours

    @property
    def pid(self) -> int | None:
        """The zygote's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start_child(self, request: Any) -> tuple[int, Connection]:
        """Fork a child for ``request``; returns its pid and the connection to read its messages from.

        Raises ``OSError`` when the zygote could not fork (its errno), and ``OSError`` or
        ``EOFError`` when the zygote could not be started or is gone (it is then stopped, and
        the next call starts a new one).
        """
        payload = pickle.dumps(request)
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                control = self._ensure_started()
                socket.send_fds(control, [_REQUEST.pack(b"F", len(payload))], [child_end.fileno()])
                control.sendall(payload)
                (pid,) = _PID.unpack(_recv_exactly(control, _PID.size))
        except BaseException:
            parent_end.close()
            self.close()
            raise
        finally:
            child_end.close()
        if pid < 0:
            parent_end.close()
            raise OSError(-pid, f"the evaluator's fork server could not fork: {os.strerror(-pid)}")
        return pid, Connection(parent_end.detach())

    def exit_status(self, pid: int, timeout: float = 0.0, *, forget: bool = False) -> int | None:
        """How child ``pid`` ended (its ``waitpid`` status) if it ends within ``timeout`` s; None while it runs.

        ``forget``: the caller will not ask about ``pid`` again. Raises ``ChildProcessError`` if
        the zygote never forked ``pid`` (a new zygote was started since), ``OSError`` or
        ``EOFError`` if the zygote is gone.
        """
        with self._lock:
            control = self._control
            if control is None or self.pid is None:
                raise EOFError("the evaluator's fork server is not running")
            try:
                control.sendall(_REQUEST.pack(b"W", _WAIT.size) + _WAIT.pack(pid, timeout, forget))
                (status,) = _STATUS.unpack(_recv_exactly(control, _STATUS.size))
            except BaseException:
                self.close()
                raise
        if status == UNKNOWN:
            raise ChildProcessError(f"the evaluator's fork server did not start process {pid}")
        return None if status == RUNNING else status

    def close(self) -> None:
        """Stop the zygote (its running children finish or are killed by their deadlines)."""
        with contextlib.suppress(OSError):
            if self._control is not None:
                self._control.close()
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            if self._process.poll() is None:
                self._process.kill()
        self._process, self._control = None, None


if __name__ == "__main__":
    main()
