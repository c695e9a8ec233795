"""Run an ASGI app with uvicorn in a background thread: for tests, benchmarks and scripts.

The model server (:mod:`horizongym.agents.serving`) and the env server
(:mod:`horizongym.envs.remote.server`) both run this way::

    with ServerThread(app) as server:
        httpx.get(f"{server.url}/health")

The socket is bound when the object is made (port 0 picks a free one), so :attr:`ServerThread.port`
is known before the server starts and a port in use fails at once with ``OSError``.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Self


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port); ``OSError`` when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and accepted
    # connections inherit it; with proto 0, every HTTP answer written in two parts waits ~40 ms for
    # the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class ServerThread:
    """Run an app with uvicorn in a background thread, on a free port unless one is given.

    ``config`` goes to ``uvicorn.Config`` (``ws_max_size=...``). Use as a context manager:
    ``with ServerThread(app) as server: ... server.url``.
    """

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning", **config: Any
    ) -> None:
        import uvicorn

        self.app, self.host = app, host
        self._socket = bound_socket(host, port)
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on", **config))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"uvicorn-{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """``http://HOST:PORT``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> Self:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["ServerThread", "bound_socket"]
