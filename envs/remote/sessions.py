"""The env server's session table: one env instance per session, a capacity, an idle timeout.

A session (a WebSocket connection, or an HTTP client holding a ``session_id``) owns its own env,
built with ``horizongym.make(env_id, **env_kwargs)``. :class:`SessionTable` opens sessions up to
``max_sessions`` (one more is refused at once with ``CAPACITY_REACHED``, never queued), closes the
sessions idle for ``idle_timeout_s`` (a reaper task; the session's ``on_expire`` hook tells its
connection), and closes a session's env when the session closes, so a sandbox container goes
with it.

Env calls of one session run one at a time (a lock per session). An env whose
``unwrapped.blocking`` is True (I/O, subprocesses, containers) is called in the table's thread
pool, so one slow env never holds up the others; a non-blocking env (``KeyChain-v0``) is stepped
inline in the event loop. Building and closing an env always run in the pool.

What a session answers follows :mod:`horizongym.envs.remote.protocol`: a reset or step is an
observation payload; what cannot be done raises :class:`SessionError` with its
:class:`~horizongym.envs.remote.protocol.ErrorCode`. An env that raises inside ``step`` ends its
episode as a truncation (``env_error``, or ``infra_error`` with ``retryable`` when the failure is
the infrastructure's) and is rebuilt at the next reset; a reset that raises is an
``EXECUTION_ERROR``, and the env is rebuilt at the next reset too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import gymnasium as gym

from horizongym.envs.contract import (
    RETRYABLE,
    REWARD_COMPONENTS,
    SUCCESS,
    TASK_ID,
    TERMINATION_DETAIL,
    TERMINATION_REASON,
    TOOLS,
    TURN,
)
from horizongym.envs.registration import make
from horizongym.envs.remote.protocol import ErrorCode, ResetData, SessionState, TextAction, observation_payload
from horizongym.failures import infrastructure_cause

logger = logging.getLogger(__name__)

T = TypeVar("T")

EXPIRE_NOTICE_S: Final = 5.0
"""How long the reaper waits to tell an idle session's client it closes (a client that stopped reading
never takes the notice), before closing the session anyway."""


class SessionError(Exception):
    """A request a session cannot carry out: its :class:`ErrorCode`, the words, and details for the answer."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def _exception_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Session:
    """One client's env and episode. Made by :meth:`SessionTable.open`; every call goes through it."""

    def __init__(self, table: SessionTable, session_id: str, env: gym.Env[Any, Any]) -> None:
        self.table, self.id, self.env = table, session_id, env
        self.lock = asyncio.Lock()
        self.last_active = time.monotonic()
        self.closed = False
        self.on_expire: Callable[[], Awaitable[None]] | None = None
        """Called when the reaper closes the session for idleness (the connection says so and closes)."""
        self.episode_id: str | None = None
        self.step_count = 0
        self.task_id: str | None = None
        self.tools: list[dict[str, Any]] = _tool_schemas(env)
        self._started = False
        self._done = False
        self._broken = False

    @property
    def inline(self) -> bool:
        """Whether the env's calls run in the event loop (its ``unwrapped.blocking`` is False)."""
        return getattr(self.env.unwrapped, "blocking", True) is False

    @property
    def busy(self) -> bool:
        return self.lock.locked()

    @property
    def in_episode(self) -> bool:
        """Whether a step may be taken now: reset done, episode not over."""
        return self._started and not self._done

    def touch(self) -> None:
        self.last_active = time.monotonic()

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.inline:
            return fn(*args, **kwargs)
        return await self.table.run_in_pool(functools.partial(fn, *args, **kwargs))

    def _check_open(self) -> None:
        if self.closed:
            raise SessionError(
                ErrorCode.UNKNOWN_SESSION, f"session {self.id} is closed; open a new session (reset without one)"
            )

    async def reset(self, data: ResetData) -> dict[str, Any]:
        """Start an episode; its first observation as a payload (reward None)."""
        async with self.lock:
            self._check_open()
            self.touch()
            if self._broken:
                await self._rebuild()
            self._started, self._done, self.step_count = False, False, 0
            try:
                observation, info = await self._call(self.env.reset, seed=data.seed, options=data.options)
            except Exception as exc:
                self._broken = True
                cause = infrastructure_cause(exc)
                logger.warning("%s session %s: reset raised %s", self.table.env_id, self.id, _exception_line(exc))
                details: dict[str, Any] = {RETRYABLE: cause.retryable} if cause is not None else {}
                raise SessionError(
                    ErrorCode.EXECUTION_ERROR,
                    f"the env raised in reset: {_exception_line(exc)}",
                    **details,
                ) from exc
            finally:
                self.touch()
            self._started = True
            self.episode_id = data.episode_id or uuid.uuid4().hex
            self.task_id = info.get(TASK_ID) if isinstance(info, dict) else None
            if isinstance(info, dict) and isinstance(info.get(TOOLS), list):
                self.tools = info[TOOLS]
            return _payload(str(observation), None, False, False, info)

    async def step(self, action: TextAction) -> dict[str, Any]:
        """One step with ``action.text``, as a payload; an env that raises ends the episode (truncated)."""
        async with self.lock:
            self._check_open()
            self.touch()
            if not self._started:
                raise SessionError(
                    ErrorCode.EPISODE_NOT_STARTED, "no episode in this session yet: send a reset before a step"
                )
            if self._done:
                raise SessionError(
                    ErrorCode.EPISODE_NOT_STARTED, "the episode has ended: send a reset to start the next one"
                )
            self.step_count += 1
            try:
                observation, reward, terminated, truncated, info = await self._call(self.env.step, action.text)
            except Exception as exc:
                self._done = self._broken = True
                return self._failed_step(exc)
            finally:
                self.touch()
            self._done = bool(terminated or truncated)
            return _payload(str(observation), float(reward), bool(terminated), bool(truncated), info)

    def _failed_step(self, exc: Exception) -> dict[str, Any]:
        """The truncation that ends an episode whose env raised in ``step``."""
        cause = infrastructure_cause(exc)
        logger.warning("%s session %s: step raised %s", self.table.env_id, self.id, _exception_line(exc))
        detail = _exception_line(exc)
        info: dict[str, Any] = {
            TOOLS: self.tools,
            TASK_ID: self.task_id,
            TURN: self.step_count,
            REWARD_COMPONENTS: {},
            SUCCESS: None,
            TERMINATION_REASON: "env_error" if cause is None else "infra_error",
            TERMINATION_DETAIL: detail,
        }
        if cause is not None:
            info[RETRYABLE] = cause.retryable
        text = f"The environment failed in step {self.step_count}: {detail}"
        return observation_payload(text, 0.0, False, True, info)

    def state(self) -> dict[str, Any]:
        """The session's :class:`SessionState` as JSON data."""
        self._check_open()
        state = SessionState(
            episode_id=self.episode_id,
            step_count=self.step_count,
            env_id=self.table.env_id,
            task_id=self.task_id,
            done=self._done,
        )
        return {**state.model_dump(mode="json"), "session_id": self.id}

    async def _rebuild(self) -> None:
        """Replace an env that raised with a new one (the old one is closed)."""
        old = self.env
        await self.table.run_in_pool(functools.partial(_close_quietly, old, self.table.env_id))
        try:
            self.env = await self.table.run_in_pool(self.table.build_env)
        except Exception as exc:
            raise SessionError(
                ErrorCode.FACTORY_ERROR, f"cannot rebuild {self.table.env_id}: {_exception_line(exc)}"
            ) from exc
        self._broken = False

    async def close(self) -> None:
        """Close the env (in the pool: a container's removal blocks). Idempotent."""
        if self.closed:
            return
        self.closed = True
        async with self.lock:  # an env call in flight finishes first
            await self.table.run_in_pool(functools.partial(_close_quietly, self.env, self.table.env_id))


def _payload(
    text: str, reward: float | None, terminated: bool, truncated: bool, info: dict[str, Any]
) -> dict[str, Any]:
    """:func:`observation_payload` with ``info`` as the env returned it, not yet made JSON data.

    The server writes answers with ``json.dumps(..., default=jsonable)``, which copies plain
    JSON at C speed and calls :func:`~horizongym.envs.remote.protocol.jsonable` only on the values
    JSON lacks (numpy numbers, sets...): the same text as ``jsonable`` first, without walking every
    step's tool schemas in Python.
    """
    payload = observation_payload(text, reward, terminated, truncated, {})
    payload["observation"]["info"] = info
    return payload


def _close_quietly(env: gym.Env[Any, Any], env_id: str) -> None:
    try:
        env.close()
    except Exception as exc:
        logger.warning("%s: closing an env raised %s", env_id, _exception_line(exc))


def _tool_schemas(env: gym.Env[Any, Any]) -> list[dict[str, Any]]:
    """The OpenAI schemas of the env's tools (``unwrapped.tools``), or none for an env without them."""
    tools = getattr(env.unwrapped, "tools", None)
    schemas = getattr(tools, "schemas", None)
    return list(schemas()) if callable(schemas) else []


class SessionTable:
    """Every open session of one served env id; call :meth:`start` in the event loop, :meth:`stop` at the end."""

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        *,
        max_sessions: int = 64,
        idle_timeout_s: float = 300.0,
        pool_threads: int | None = None,
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        if not idle_timeout_s > 0:
            raise ValueError(f"idle_timeout_s must be more than 0, got {idle_timeout_s}")
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.max_sessions, self.idle_timeout_s = max_sessions, idle_timeout_s
        self.sessions: dict[str, Session] = {}
        self._opening = 0
        self._pool = ThreadPoolExecutor(pool_threads or min(max_sessions, 64), thread_name_prefix="env-session")
        self._reaper: asyncio.Task[None] | None = None
        self._closing = 0

    def build_env(self) -> gym.Env[Any, Any]:
        """A new env of the served id (blocking: call it in the pool)."""
        return make(self.env_id, **self.env_kwargs)

    async def run_in_pool(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    @property
    def active(self) -> int:
        """Sessions open, being opened, or being closed (their env still holds what it holds)."""
        return len(self.sessions) + self._opening + self._closing

    async def open(self) -> Session:
        """A new session with its own env; ``CAPACITY_REACHED`` at once when ``max_sessions`` are open."""
        if self.active >= self.max_sessions:
            raise SessionError(
                ErrorCode.CAPACITY_REACHED,
                f"the server holds its maximum of {self.max_sessions} sessions; close one or try again later",
                active_sessions=self.active,
                max_sessions=self.max_sessions,
            )
        self._opening += 1
        try:
            env = await self.run_in_pool(self.build_env)
        except Exception as exc:
            logger.warning("%s: building the env raised %s", self.env_id, _exception_line(exc))
            raise SessionError(ErrorCode.FACTORY_ERROR, f"cannot build {self.env_id}: {_exception_line(exc)}") from exc
        finally:
            self._opening -= 1
        session = Session(self, uuid.uuid4().hex, env)
        self.sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session:
        """The open session ``session_id``; ``UNKNOWN_SESSION`` if it is closed, timed out or never was."""
        session = self.sessions.get(session_id)
        if session is None or session.closed:
            raise SessionError(
                ErrorCode.UNKNOWN_SESSION,
                f"no session {session_id!r} (closed, timed out after {self.idle_timeout_s:g} s idle, or never "
                'opened); open a new one (a new WebSocket connection, or POST /reset with "session": true)',
            )
        return session

    async def close(self, session_id: str) -> bool:
        """Close a session and its env; False if there was none."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        await self._close(session)
        return True

    async def _close(self, session: Session) -> None:
        """Close a session already out of the table; it counts as active until its env is closed."""
        self._closing += 1
        try:
            await session.close()
        finally:
            self._closing -= 1

    async def reap_idle(self) -> list[str]:
        """Close the sessions idle for ``idle_timeout_s`` (not those with a call in flight); their ids."""
        now = time.monotonic()
        idle = [s for s in self.sessions.values() if not s.busy and now - s.last_active >= self.idle_timeout_s]
        for session in idle:
            self.sessions.pop(session.id, None)
            self._closing += 1  # active until its env is closed
        await asyncio.gather(*(self._expire(session) for session in idle))  # one stuck client stalls no other
        return [s.id for s in idle]

    async def _expire(self, session: Session) -> None:
        """Tell an idle session's client (within ``EXPIRE_NOTICE_S``: it may have stopped reading), then close it."""
        try:
            if session.on_expire is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(session.on_expire(), EXPIRE_NOTICE_S)
            await session.close()
        finally:
            self._closing -= 1

    async def _reap_forever(self) -> None:
        period = max(0.05, min(1.0, self.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self.reap_idle()
            except Exception:  # the reaper must outlive any one failure
                logger.exception("%s: reaping idle sessions failed", self.env_id)

    def start(self) -> None:
        """Start the reaper (call in the server's event loop)."""
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever(), name="session-reaper")

    async def stop(self) -> None:
        """Stop the reaper, close every session, and shut the pool down."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        sessions, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["Session", "SessionError", "SessionTable"]
