"""The web app of ``horizongym view``: the read side of the JSON API, the page and its assets.

``create_app(catalog)`` serves (all JSON; an error is ``{"error": line}`` with a 4xx status):

* ``GET /`` the page (``static/index.html``), ``GET /static/{file}`` its assets;
* ``GET /api/runs``: the catalog's runs (:meth:`~horizongym.view.catalog.Run.info`);
* ``GET /api/runs/RID/summary``: :func:`~horizongym.view.run_summary.run_summary`;
* ``GET /api/runs/RID/episodes?QUERY``: a page of ROWs (:mod:`horizongym.view.query`);
* ``GET /api/runs/RID/episodes/N``: :func:`~horizongym.view.episode_view.episode_view`;
* ``GET /api/runs/RID/metrics``: :func:`~horizongym.view.metrics.run_metrics`;
* ``GET /api/envs``: :func:`~horizongym.view.env_list.env_list`.

With ``play`` (a :class:`~horizongym.view.play.BrowserPlay`), its routes (``/api/play/...``) are served
too, and its sessions are closed, what was played stored, when the app shuts down. Handlers run in
Starlette's thread pool: each reads its run's index, brought up to date with the file first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from horizongym.view.catalog import RunCatalog
from horizongym.view.env_list import env_list
from horizongym.view.episode_view import episode_view
from horizongym.view.errors import ApiError, bad_request
from horizongym.view.metrics import run_metrics
from horizongym.view.play import BrowserPlay
from horizongym.view.query import parse_query, run_query
from horizongym.view.run_summary import run_summary

STATIC = Path(__file__).resolve().parent / "static"
"""The page and its assets (package data)."""


def _episode_number(text: str) -> int:
    if not text.isdigit():
        raise bad_request(f"episode number must be a whole number from 0, not {text!r}")
    return int(text)


def create_app(catalog: RunCatalog, *, play: BrowserPlay | None = None) -> Starlette:
    """The app over ``catalog`` (module docstring)."""

    def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    def runs(request: Request) -> Response:
        return JSONResponse({"runs": [run.info() for run in catalog.runs]})

    def summary(request: Request) -> Response:
        return JSONResponse(run_summary(catalog.get(request.path_params["rid"])))

    def episodes(request: Request) -> Response:
        run = catalog.get(request.path_params["rid"])
        query = parse_query(dict(request.query_params))
        return JSONResponse(run_query(run.refreshed(), query))

    def episode(request: Request) -> Response:
        run = catalog.get(request.path_params["rid"])
        return JSONResponse(episode_view(run, _episode_number(request.path_params["n"])))

    def metrics(request: Request) -> Response:
        return JSONResponse(run_metrics(catalog.get(request.path_params["rid"])))

    def envs(request: Request) -> Response:
        return JSONResponse(env_list())

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"no such address {request.url.path}: the API is under /api (runs, envs), the page at /"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code)

    routes: list[BaseRoute] = [
        Route("/", page),
        Route("/api/runs", runs),
        Route("/api/runs/{rid}/summary", summary),
        Route("/api/runs/{rid}/episodes", episodes),
        Route("/api/runs/{rid}/episodes/{n}", episode),
        Route("/api/runs/{rid}/metrics", metrics),
        Route("/api/envs", envs),
        *(play.routes() if play is not None else ()),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if play is not None:
            await play.close_all()

    async def unexpected(request: Request, exc: Exception) -> Response:
        """Anything else that raised: still one JSON line for the page to show (the traceback goes to the log)."""
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        message = f"{request.url.path} failed: {type(exc).__name__}: {first} (a bug: see the server's log)"
        return JSONResponse({"error": message}, status_code=500)

    handlers = {ApiError: api_error, HTTPException: http_error, Exception: unexpected}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.catalog = catalog
    return app
