"""Serve any registered env over OpenEnv's contract (Starlette + uvicorn): WebSocket, HTTP and MCP.

``horizongym serve-env ENV_ID`` calls :func:`serve_env`; tests and benchmarks use :func:`create_app`
with :class:`~horizongym.serverthread.ServerThread`. Every session owns its own env
(:mod:`horizongym.envs.remote.sessions`); messages and answers are those of
:mod:`horizongym.envs.remote.protocol`.

* WebSocket ``/ws``: one session per connection. Messages ``{"type", "data"}``: ``reset``
  (data: ``ResetData``), ``step`` (data: ``TextAction``), ``state``, ``close``, and ``mcp`` (data:
  a JSON-RPC request). Answers ``observation``, ``state``, ``mcp`` or ``error``. A connection
  beyond ``max_sessions`` gets ``CAPACITY_REACHED`` and is closed at once; a connection idle for
  ``idle_timeout_s`` gets a ``SESSION_ERROR`` and is closed; a connection that drops closes its
  session and env (a sandbox container with it).
* HTTP: ``POST /reset`` is OpenEnv's stateless call (an env built, reset and closed) unless it
  asks for a session: ``"session": true`` opens one, ``session_id`` resets the one named; the
  answer then carries ``session_id``. ``POST /step`` and ``GET /state`` act on the session named by
  a body field or ``?session_id=``; ``POST /close`` closes it. ``GET /schema``, ``GET /metadata``,
  ``GET /health``, ``GET /openapi.json`` (OpenEnv's validator reads the version and the paths).
  Without a ``session_id``, ``/state`` answers as OpenEnv's stateless server does (a fresh
  state) and ``/step`` is refused with ``EPISODE_NOT_STARTED``: a multi-turn env needs its
  session. Errors are ``{"type": "error", "data": {"message", "code"}}`` with a 4xx/5xx status.
* MCP over ``POST /mcp`` (session: header ``Mcp-Session-Id`` or ``params.session_id``) and the
  WebSocket ``mcp`` message (the connection's session): see :mod:`horizongym.envs.remote.mcp`.

Hostile input never stops the server: bad JSON, unknown types, binary frames and messages over
``MAX_MESSAGE_BYTES`` are answered with an error and the session goes on. Nothing is logged per
step; an env's failure is logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Final

import pydantic
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import horizongym
from horizongym.envs.registration import describe, short_id, spec
from horizongym.envs.remote import mcp
from horizongym.envs.remote.openapi import openapi_document
from horizongym.envs.remote.protocol import (
    MAX_MESSAGE_BYTES,
    ErrorCode,
    ResetData,
    SessionState,
    TextAction,
    TextObservation,
    error_message,
    jsonable,
)
from horizongym.envs.remote.sessions import Session, SessionError, SessionTable
from horizongym.serverthread import bound_socket

logger = logging.getLogger(__name__)

WS_FRAME_LIMIT: Final = 16 * MAX_MESSAGE_BYTES
"""The largest frame uvicorn reads at all; frames between ``MAX_MESSAGE_BYTES`` and this are
answered ``MESSAGE_TOO_LARGE`` and the session goes on (a larger one closes the connection, 1009)."""

MESSAGE_TYPES: Final = ("reset", "step", "state", "close", "mcp")

_HTTP_STATUS: Final[dict[ErrorCode, int]] = {
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.EXECUTION_ERROR: 500,
    ErrorCode.CAPACITY_REACHED: 503,
    ErrorCode.FACTORY_ERROR: 500,
    ErrorCode.SESSION_ERROR: 400,
    ErrorCode.MESSAGE_TOO_LARGE: 413,
    ErrorCode.EPISODE_NOT_STARTED: 409,
    ErrorCode.UNKNOWN_SESSION: 404,
}


class EnvBuildError(ValueError):
    """The served env cannot be built with the given keyword arguments."""


def _validation_error(what: str, exc: pydantic.ValidationError) -> SessionError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
    )
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    return SessionError(ErrorCode.VALIDATION_ERROR, f"invalid {what}: {problems}", errors=errors)


def _too_large(size: int) -> SessionError:
    return SessionError(
        ErrorCode.MESSAGE_TOO_LARGE,
        f"the message has {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (1 MiB): send less text per message",
    )


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SessionError(ErrorCode.INVALID_JSON, f"the message is not valid JSON: {exc}") from None


def _dumps(message: Any) -> str:
    """``message`` as JSON text: plain JSON as is, other values (numpy numbers, sets) as :func:`jsonable` has them."""
    try:
        return json.dumps(message, ensure_ascii=False, default=jsonable)
    except TypeError:  # keys JSON cannot hold (tuples...)
        return json.dumps(jsonable(message), ensure_ascii=False)


class _JSON(Response):
    """A JSON answer written with :func:`_dumps`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _dumps(content).encode("utf-8")


class EnvServer:
    """The handlers of one served env id, bound to its session table."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], *, max_sessions: int, idle_timeout_s: float) -> None:
        self.env_id = short_id(spec(env_id).id)
        self.description = describe(self.env_id)
        self.table = SessionTable(self.env_id, env_kwargs, max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)
        try:  # build one env now: bad keyword arguments fail before the server listens
            probe = self.table.build_env()
        except Exception as exc:
            raise EnvBuildError(
                f"{self.env_id} cannot be built with env kwargs {json.dumps(env_kwargs)}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            tools = getattr(probe.unwrapped, "tools", None)
            self.tools: list[dict[str, Any]] = list(tools.schemas()) if tools is not None else []
        finally:
            probe.close()

    # ----- WebSocket ------------------------------------------------------------------------
    async def websocket(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            session = await self.table.open()
        except SessionError as exc:
            await ws.send_text(_dumps(error_message(exc.code, exc.message, **exc.details)))
            await ws.close(code=1013 if exc.code is ErrorCode.CAPACITY_REACHED else 1011)
            return
        sender = _Sender(ws)

        async def expire() -> None:
            message = f"session closed after {self.table.idle_timeout_s:g} s without a message; connect again"
            await sender.send(error_message(ErrorCode.SESSION_ERROR, message))
            await ws.close(code=1000, reason="idle timeout")

        session.on_expire = expire
        try:
            while True:
                frame = await ws.receive()
                if frame["type"] == "websocket.disconnect":
                    break
                answer = await self._ws_answer(session, frame)
                if answer is _CLOSE:
                    break
                if answer is not None and not await sender.send(answer):
                    break
        except WebSocketDisconnect:
            pass
        finally:
            await self.table.close(session.id)
            with contextlib.suppress(Exception):
                await ws.close()

    async def _ws_answer(self, session: Session, frame: MutableMapping[str, Any]) -> Any:
        """The answer to one frame (None: no answer; ``_CLOSE``: the client closes the session)."""
        session.touch()
        try:
            text = frame.get("text")
            if text is None:
                raise SessionError(
                    ErrorCode.INVALID_JSON, "binary frames are not read: send each message as a JSON text frame"
                )
            size = len(text) if len(text) * 4 <= MAX_MESSAGE_BYTES else len(text.encode("utf-8", "surrogatepass"))
            if size > MAX_MESSAGE_BYTES:
                raise _too_large(size)
            message = _decode(text)
            if not isinstance(message, dict):
                raise SessionError(
                    ErrorCode.VALIDATION_ERROR, 'a message is a JSON object {"type": ..., "data": {...}}'
                )
            kind, data = message.get("type"), message.get("data", {})
            if kind not in MESSAGE_TYPES:
                raise SessionError(
                    ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind!r}; the types are {', '.join(MESSAGE_TYPES)}"
                )
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise SessionError(ErrorCode.VALIDATION_ERROR, f"the 'data' of a {kind} message must be a JSON object")
            if kind == "close":
                return _CLOSE
            if kind == "state":
                return {"type": "state", "data": session.state()}
            if kind == "mcp":
                answer = await self.rpc(data, session)
                return None if answer is None else {"type": "mcp", "data": answer}
            if kind == "reset":
                payload = await session.reset(_validated(ResetData, data, "reset data"))
            else:
                payload = await session.step(_validated(TextAction, data, "step data (a TextAction)"))
            return {"type": "observation", "data": payload}
        except SessionError as exc:
            return error_message(exc.code, exc.message, **exc.details)
        except Exception as exc:  # a server bug: answered, logged once, the session goes on
            logger.exception("%s session %s: a message failed", self.env_id, session.id)
            return error_message(ErrorCode.EXECUTION_ERROR, f"the server failed: {type(exc).__name__}: {exc}")

    # ----- MCP ------------------------------------------------------------------------------
    async def rpc(self, message: Any, session: Session | None, header_session: str | None = None) -> Any:
        """The JSON-RPC answer to ``message`` (None for a notification).

        ``session``: the WebSocket connection's own; over HTTP it is None and the session is the
        one ``header_session`` or ``params.session_id`` names.
        """
        try:
            request = mcp.parse_request(message)
        except mcp.RpcError as exc:
            return mcp.error_message(mcp.request_id_of(message), exc)
        try:
            result = await self._rpc_result(request, session, header_session)
        except mcp.RpcError as exc:
            return None if request.notification else mcp.error_message(request.id, exc)
        except SessionError as exc:
            data = {"code": exc.code.value, **exc.details}
            error = mcp.RpcError(
                mcp.INVALID_PARAMS if exc.code is ErrorCode.UNKNOWN_SESSION else mcp.SERVER_ERROR, exc.message, data
            )
            return None if request.notification else mcp.error_message(request.id, error)
        return None if request.notification else mcp.result_message(request.id, result)

    async def _rpc_result(self, request: mcp.RpcRequest, own: Session | None, header_session: str | None) -> Any:
        method, params = request.method, request.params
        if method.startswith("notifications/"):
            return {}
        if method == "initialize":
            return mcp.initialize_result(f"horizongym/{self.env_id}", horizongym.__version__, self.description)
        if method == "ping":
            return {}
        if method == "openenv/session/create":  # a session MCP can use at once: reset (params seed, options)
            data = _validated(ResetData, {k: v for k, v in params.items() if k != "session_id"}, "session params")
            created = own or await self.table.open()
            try:
                await created.reset(data)
            except SessionError:
                if own is None:
                    await self.table.close(created.id)
                raise
            return {"session_id": created.id}
        if method == "openenv/session/close":
            target = params.get("session_id")
            if not isinstance(target, str) or not target:
                raise mcp.RpcError(mcp.INVALID_PARAMS, "openenv/session/close needs params.session_id")
            if own is not None and target == own.id:
                raise mcp.RpcError(mcp.INVALID_REQUEST, "this connection's own session closes with a 'close' message")
            if not await self.table.close(target):
                raise mcp.RpcError(
                    mcp.INVALID_PARAMS, f"no session {target!r}", {"code": ErrorCode.UNKNOWN_SESSION.value}
                )
            return {"session_id": target, "closed": True}
        named = params.get("session_id") or header_session
        if named is not None and not isinstance(named, str):
            raise mcp.RpcError(mcp.INVALID_PARAMS, "params.session_id must be a string")
        session = own or (self.table.get(named) if named else None)
        if method == "tools/list":
            return {"tools": mcp.mcp_tools(session.tools if session is not None else self.tools)}
        if method == "tools/call":
            if session is None:
                raise mcp.RpcError(
                    mcp.INVALID_PARAMS,
                    'tools/call needs a session: call openenv/session/create (or POST /reset with "session": true) '
                    "and name it with the Mcp-Session-Id header or params.session_id",
                )
            action = mcp.tool_call_action(params, session.tools)
            return mcp.call_result(await session.step(TextAction(text=action)))
        raise mcp.RpcError(
            mcp.METHOD_NOT_FOUND, f"method {method!r} not found; the methods are {', '.join(mcp.METHODS)}"
        )

    async def http_mcp(self, request: Request) -> Response:
        try:
            raw = await _read_body(request)
        except SessionError as exc:
            return _JSON(mcp.error_message(None, mcp.RpcError(mcp.INVALID_REQUEST, exc.message)), status_code=413)
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            return _JSON(mcp.error_message(None, mcp.RpcError(mcp.PARSE_ERROR, f"parse error: {exc}")))
        answer = await self.rpc(message, None, request.headers.get("mcp-session-id"))
        return Response(status_code=202) if answer is None else _JSON(answer)

    # ----- HTTP -----------------------------------------------------------------------------
    async def http_reset(self, request: Request) -> Response:
        body = await _json_object(request)
        session_id = body.pop("session_id", None) or request.query_params.get("session_id")
        keep = body.pop("session", False)
        if not isinstance(keep, bool):
            raise SessionError(ErrorCode.VALIDATION_ERROR, '"session" must be true (open a session) or false')
        data = _validated(ResetData, body, "reset request")
        session = self.table.get(_session_id(session_id)) if session_id else await self.table.open()
        try:
            payload = await session.reset(data)
        except SessionError:
            if not session_id:  # the client never learnt this session's id
                await self.table.close(session.id)
            raise
        if not session_id and not keep:  # OpenEnv's stateless reset: nothing outlives the answer
            await self.table.close(session.id)
            return _JSON(payload)
        return _JSON({**payload, "session_id": session.id})

    async def http_step(self, request: Request) -> Response:
        body = await _json_object(request)
        session_id = body.get("session_id") or request.query_params.get("session_id")
        if "action" not in body:
            raise SessionError(
                ErrorCode.VALIDATION_ERROR, 'a step request is {"action": {"text": ...}, "session_id": ...}'
            )
        action = _validated(TextAction, body["action"], "action (a TextAction)")
        if not session_id:
            raise SessionError(
                ErrorCode.EPISODE_NOT_STARTED,
                "a step needs a session: POST /reset first and pass its session_id (body field or ?session_id=)",
            )
        return _JSON(await self.table.get(_session_id(session_id)).step(action))

    async def http_state(self, request: Request) -> Response:
        session_id = request.query_params.get("session_id")
        if not session_id:  # OpenEnv's stateless answer: the state of an env nobody reset
            return _JSON(SessionState(env_id=self.env_id).model_dump(mode="json"))
        return _JSON(self.table.get(session_id).state())

    async def http_close(self, request: Request) -> Response:
        body = await _json_object(request)
        session_id = _session_id(body.get("session_id") or request.query_params.get("session_id"))
        if not await self.table.close(session_id):
            self.table.get(session_id)  # raises UNKNOWN_SESSION
        return _JSON({"session_id": session_id, "closed": True})

    async def schema(self, request: Request) -> Response:
        return _JSON(
            {
                "action": TextAction.model_json_schema(),
                "observation": TextObservation.model_json_schema(),
                "state": SessionState.model_json_schema(),
            }
        )

    async def metadata(self, request: Request) -> Response:
        return _JSON(
            {
                "name": self.env_id,
                "description": self.description,
                "version": horizongym.__version__,
                "readme_content": None,
                "author": None,
                "documentation_url": None,
            }
        )

    async def openapi(self, request: Request) -> Response:
        return _JSON(openapi_document(self.env_id, self.description))

    async def health(self, request: Request) -> Response:
        return _JSON(
            {"status": "healthy", "active_sessions": self.table.active, "max_sessions": self.table.max_sessions}
        )


_CLOSE: Final = object()


class _Sender:
    """Sends a connection's answers one at a time (the reaper's notice may race a reply)."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws, self.lock = ws, asyncio.Lock()

    async def send(self, message: Any) -> bool:
        """Whether it went out (False: the connection is gone)."""
        async with self.lock:
            try:
                await self.ws.send_text(_dumps(message))
            except Exception:
                return False
            return True


def _validated(model: type[pydantic.BaseModel], data: Any, what: str) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _validation_error(what, exc) from None


def _session_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SessionError(ErrorCode.VALIDATION_ERROR, "session_id must be the string POST /reset answered with")
    return value


async def _read_body(request: Request) -> bytes:
    """The request body; ``MESSAGE_TOO_LARGE`` as soon as it passes ``MAX_MESSAGE_BYTES`` (the rest is not read)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_MESSAGE_BYTES:
            raise _too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await _read_body(request)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise SessionError(ErrorCode.INVALID_JSON, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SessionError(ErrorCode.VALIDATION_ERROR, "the request body must be a JSON object")
    return body


async def _session_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SessionError)
    return _JSON(error_message(exc.code, exc.message, **exc.details), status_code=_HTTP_STATUS[exc.code])


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return _JSON({"type": "error", "data": {"message": message, "code": code}}, status_code=exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed: %r", request.method, request.url.path, exc)
    body = error_message(ErrorCode.EXECUTION_ERROR, f"the server failed: {type(exc).__name__}: {exc}")
    return _JSON(body, status_code=500)


def create_app(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    max_sessions: int = 64,
    idle_timeout_s: float = 300.0,
) -> Starlette:
    """The Starlette app serving ``env_id`` (built with ``env_kwargs``) to up to ``max_sessions`` sessions.

    One env is built (and closed) here, so an unknown id raises ``UnknownEnvironment`` and
    keyword arguments the env refuses raise :class:`EnvBuildError` before anything listens.
    Sessions idle for ``idle_timeout_s`` seconds are closed; every session closes at shutdown.
    """
    server = EnvServer(env_id, dict(env_kwargs or {}), max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server.table.start()
        try:
            yield
        finally:
            await server.table.stop()

    app = Starlette(
        routes=[
            WebSocketRoute("/ws", server.websocket),
            Route("/reset", server.http_reset, methods=["POST"]),
            Route("/step", server.http_step, methods=["POST"]),
            Route("/state", server.http_state, methods=["GET"]),
            Route("/close", server.http_close, methods=["POST"]),
            Route("/schema", server.schema, methods=["GET"]),
            Route("/metadata", server.metadata, methods=["GET"]),
            Route("/health", server.health, methods=["GET"]),
            Route("/openapi.json", server.openapi, methods=["GET"]),
            Route("/mcp", server.http_mcp, methods=["POST"]),
        ],
        exception_handlers={SessionError: _session_error, HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.server = server
    return app


SERVER_CONFIG: Final[dict[str, Any]] = {"ws_max_size": WS_FRAME_LIMIT, "access_log": False}
"""What ``uvicorn.Config`` needs for this app (give it to ``ServerThread`` too): the frame limit, no per-request log."""


def serve_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8010,
    max_sessions: int = 64,
    idle_timeout_s: float = 300.0,
    log_level: str = "warning",
) -> None:
    """Serve ``env_id`` until interrupted (``horizongym serve-env ENV_ID``).

    Raises ``UnknownEnvironment``, :class:`EnvBuildError`, or ``OSError`` when ``host:port``
    cannot be bound, all before serving.
    """
    import uvicorn

    app = create_app(env_id, env_kwargs, max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)
    sock = bound_socket(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, **SERVER_CONFIG))
    shown = f"[{host}]" if ":" in host else host
    print(
        f"serving {app.state.server.env_id} at http://{shown}:{port} (WebSocket /ws, HTTP /reset /step /state, "
        f"MCP /mcp), at most {max_sessions} sessions; Ctrl-C stops",
        flush=True,
    )
    server.run(sockets=[sock])


__all__ = ["SERVER_CONFIG", "EnvBuildError", "EnvServer", "create_app", "serve_env"]
