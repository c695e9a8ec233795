"""Run the web app with uvicorn on ``host:port`` until Ctrl-C (what ``horizongym view`` does)."""

from __future__ import annotations

import uvicorn

from horizongym.serverthread import bound_socket
from horizongym.view.app import create_app
from horizongym.view.catalog import RunCatalog
from horizongym.view.play import BrowserPlay


def page_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve_view(catalog: RunCatalog, host: str, port: int, *, play: BrowserPlay | None = None) -> None:
    """Serve ``catalog`` at ``host:port``, printing the page's address first; ``OSError`` (before anything
    is served) when the address cannot be bound."""
    app = create_app(catalog, play=play)
    sock = bound_socket(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    names = ", ".join(f"{run.id} {run.name} ({len(run.index)} episodes)" for run in catalog.runs)
    print(f"horizongym view at {page_url(host, port)} ({names}); Ctrl-C stops", flush=True)
    server.run(sockets=[sock])
