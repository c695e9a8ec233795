"""A small fork server: one process imports ``torch`` once, then forks a fresh child per evaluation.

Starting a Python process that imports torch takes seconds; forking one that already has takes
milliseconds. The parent talks to the zygote over a Unix socket: for each evaluation it sends
one end of a new socket pair (``SCM_RIGHTS``) and the pickled request; the zygote forks, the
child runs :func:`horizongym.envs.kernels.worker.evaluate_child` talking over that socket, and
the zygote answers the child's pid (so the parent can kill its process group). Unlike
``multiprocessing``'s forkserver this never re-imports the caller's ``__main__``, so it works
from any script. The zygote exits when the parent closes its end.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

_HEADER = struct.Struct("!Q")
_PID = struct.Struct("!q")


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


def serve(control: socket.socket) -> None:
    """The zygote's loop: receive (socket, request), fork a child for it, answer the child's pid."""
    keep_freed_memory()
    from horizongym.envs.kernels.worker import run_child  # imports torch once, before any fork

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    while True:
        try:
            header, fds, _, _ = socket.recv_fds(control, _HEADER.size, 1)
        except OSError:
            return
        if not header or not fds:
            return
        payload = _recv_exactly(control, _HEADER.unpack(header)[0])
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            request = pickle.loads(payload)
            run_child(request, Connection(fds[0]))
            os._exit(0)
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

    def start_child(self, request: Any) -> tuple[int, Connection]:
        """Fork a child for ``request``; returns its pid and the connection to read its messages from."""
        payload = pickle.dumps(request)
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                control = self._ensure_started()
                socket.send_fds(control, [_HEADER.pack(len(payload))], [child_end.fileno()])
                control.sendall(payload)
                (pid,) = _PID.unpack(_recv_exactly(control, _PID.size))
        except BaseException:
            parent_end.close()
            self.close()
            raise
        finally:
            child_end.close()
        return pid, Connection(parent_end.detach())

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
