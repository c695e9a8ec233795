"""Play any env in the browser: the ``/api/play/...`` routes of ``horizongym view``.

A **session** holds one env, played by one person turn by turn:

* ``POST /api/play/new`` ``{"env_id", "seed", "env_kwargs"}`` builds the env as the rollout engine
  builds it (:class:`~horizongym.training.rollouts.engine.EnvRecipe`) and resets it with the seed;
* ``POST /api/play/from`` ``{"run", "episode", "turn"}`` replays a stored episode to the turn
  (:mod:`~horizongym.training.rollouts.fork_play`, what ``play --from`` runs), every answer
  checked against the record (a mismatch: 409);
* ``POST /api/play/SID/step`` ``{"action"}`` or ``{"tool", "arguments"}`` (rendered as a
  ``<tool_call>`` block, the text a model's native call becomes) plays one turn
  (:func:`~horizongym.training.rollouts.fork_play.play_turn`, in a worker thread: envs block);
* ``POST /api/play/SID/quit`` ends the session.

**Recording.** An episode that ends, or that the person quits after at least one turn, is stored
as ``play`` stores it: a continuation of a stored episode as a branch in that episode's own run
file (:func:`~horizongym.training.rollouts.fork_play.store_branch`); a game from the reset as an
episode of policy ``human`` in the play-out file
(:func:`~horizongym.training.rollouts.fork_play.played_episode`), its sample one above the
person's earlier games of that env and seed. Either reads back with ``read_run`` and replays
with ``horizongym replay``. A quit truncates the episode (reason ``max_turns``, the words in its
``termination_detail``).

**Limits.** At most ``max_sessions`` sessions are open: a new one closes the least recently used.
A session unused for ``idle_s`` seconds is closed at the next play request. Closing a session
stores what was played, as a quit does.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import gymnasium as gym
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from horizongym.agents.base import Message
from horizongym.envs.contract import TASK_ID, TOOLS
from horizongym.envs.registration import UnknownEnvironment, spec
from horizongym.tools import ToolCall
from horizongym.tools.parser import render_tool_calls
from horizongym.training.rollouts.context import PolicyContext
from horizongym.training.rollouts.engine import EnvRecipe
from horizongym.training.rollouts.fork_play import (
    ForkError,
    ForkSource,
    KeyboardPlay,
    NotReproduced,
    append_played,
    check_fork,
    fork_env,
    next_sample,
    play_turn,
    played_episode,
    reach_fork,
    store_branch,
)
from horizongym.training.rollouts.trajectory import Episode
from horizongym.view.catalog import RunCatalog
from horizongym.view.errors import ApiError

log = logging.getLogger(__name__)

DEFAULT_MAX_SESSIONS = 8
"""Sessions open at once (each holds an env: a container, for some)."""
DEFAULT_IDLE_S = 1800.0
"""Seconds a session may go unused before it is closed."""


@dataclass(frozen=True)
class Continuation:
    """Where a session forked from: the stored episode, its run, and the turn it was replayed to."""

    rid: str
    source: ForkSource
    original: Episode


@dataclass(eq=False)
class PlaySession:
    """One person's game: the env, what was played, and where it is stored when it ends."""

    sid: str
    recipe: EnvRecipe
    seed: int
    task_id: str | None
    env: gym.Env[Any, Any] | None
    context: PolicyContext
    opening: list[Message]
    """The first messages of a game from the reset (the first observation), for its record."""
    tools: list[dict[str, Any]]
    turn: int
    total: float
    continuation: Continuation | None = None
    played: KeyboardPlay = field(default_factory=KeyboardPlay)
    started: float = field(default_factory=time.perf_counter)
    answered: float = field(default_factory=time.perf_counter)
    """When the person was last shown an answer of the env (their thinking time starts)."""
    used: float = field(default_factory=time.monotonic)
    saved: dict[str, Any] | None = None
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    @property
    def done(self) -> bool:
        return self.env is None

    def described(self, observation: str) -> dict[str, Any]:
        """The SESSION object of the API."""
        return {
            "session": self.sid,
            "env_id": self.recipe.env_id,
            "seed": self.seed,
            "task_id": self.task_id,
            "observation": observation,
            "tools": self.tools,
            "turn": self.turn,
            "done": False,
        }


class BrowserPlay:
    """The play sessions of one app, and its ``/api/play`` routes (see the module docstring)."""

    def __init__(
        self,
        catalog: RunCatalog,
        play_out: Path,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_s: float = DEFAULT_IDLE_S,
    ) -> None:
        self.catalog, self.play_out = catalog, Path(play_out)
        self.play_rid = catalog.add(self.play_out).id
        self.max_sessions, self.idle_s = max_sessions, idle_s
        self.sessions: dict[str, PlaySession] = {}
        self._saving = threading.Lock()  # one append at a time: each numbers its episode from the file
        weakref.finalize(self, _close_envs, self.sessions)  # at exit: no env (container) left behind

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/play/new", _endpoint(self.new), methods=["POST"]),
            Route("/api/play/from", _endpoint(self.play_from), methods=["POST"]),
            Route("/api/play/{sid}/step", _endpoint(self.step), methods=["POST"]),
            Route("/api/play/{sid}/quit", _endpoint(self.quit), methods=["POST"]),
        ]

    async def new(self, request: Request) -> dict[str, Any]:
        body = await _body(request)
        env_id = body.get("env_id")
        if not isinstance(env_id, str) or not env_id:
            raise ApiError(400, f"env_id: expected an env id such as KeyChain-v0, got {env_id!r}")
        seed = body.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ApiError(400, f"seed: expected an integer of 0 or more, got {seed!r}")
        kwargs = body.get("env_kwargs") or {}
        if not isinstance(kwargs, dict):
            raise ApiError(400, f"env_kwargs: expected an object of the env's keyword arguments, got {kwargs!r}")
        try:
            spec(env_id)
        except UnknownEnvironment as exc:
            raise ApiError(400, f"env_id: {exc} (GET /api/envs lists them)") from None
        await self._make_room()
        recipe = EnvRecipe(env_id, kwargs)
        env = await _in_thread(_build, recipe)
        try:
            observation, info = await anyio.to_thread.run_sync(lambda: env.reset(seed=seed))
        except Exception as exc:
            await anyio.to_thread.run_sync(_close_env, env, "(new)")
            raise ApiError(
                400, f"{env_id} raised in reset (seed {seed}): {_exception_line(exc)}; try other env_kwargs or seed"
            ) from None
        context = PolicyContext(observation)
        session = PlaySession(
            _new_sid(),
            recipe,
            seed,
            info.get(TASK_ID),
            env,
            context,
            list(context.messages),
            list(info.get(TOOLS) or []),
            turn=0,
            total=0.0,
        )
        self.sessions[session.sid] = session
        return session.described(observation)

    async def play_from(self, request: Request) -> dict[str, Any]:
        body = await _body(request)
        rid, n, turn = body.get("run"), body.get("episode"), body.get("turn")
        if not isinstance(rid, str):
            raise ApiError(400, f"run: expected a run id such as r0 (GET /api/runs lists them), got {rid!r}")
        for name, value in (("episode", n), ("turn", turn)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ApiError(400, f"{name}: expected an integer of 0 or more, got {value!r}")
        assert isinstance(n, int) and isinstance(turn, int)
        run = self.catalog.get(rid)
        path, original = run.episodes_path, run.episode(n)
        try:
            check_fork(original, f"episode {n} of run {rid} ({path})", turn)
        except ForkError as exc:
            raise ApiError(400, str(exc)) from None
        source = ForkSource(path, n, turn)
        await self._make_room()
        env = await _in_thread(fork_env, original)
        try:
            reached = await anyio.to_thread.run_sync(reach_fork, env, original, turn)
        except NotReproduced as exc:
            await anyio.to_thread.run_sync(_close_env, env, "(from)")
            raise ApiError(409, f"cannot play on from {source}: {exc}") from None
        except BaseException:
            await anyio.to_thread.run_sync(_close_env, env, "(from)")
            raise
        kept = original.steps[:turn]
        session = PlaySession(
            _new_sid(),
            EnvRecipe(original.env_id, dict(original.env_kwargs)),
            original.seed,
            original.task_id,
            env,
            PolicyContext(reached.observation),
            [],
            list(reached.info.get(TOOLS) or []),
            turn=turn,
            total=sum(step.reward for step in kept),
            continuation=Continuation(rid, source, original),
        )
        self.sessions[session.sid] = session
        return {**session.described(reached.observation), "replayed": [s.model_dump(mode="json") for s in kept]}

    async def step(self, request: Request) -> dict[str, Any]:
        session = self._session(request)
        body = await _body(request)
        action = _action(body, session)
        async with session.lock:
            session.used = time.monotonic()
            env = session.env
            if env is None:
                raise ApiError(409, f"{_over(session)}: start another with POST /api/play/new")
            thinking_s = time.perf_counter() - session.answered
            played = session.played
            answer = await anyio.to_thread.run_sync(
                play_turn, env, played, session.context, action, session.turn + 1, thinking_s
            )
            if answer is None:  # the step raised: the episode ends with the error
                reply: dict[str, Any] = {
                    "observation": f"the env raised: {played.error}",
                    "reward": 0.0,
                    "reward_components": {},
                    "terminated": False,
                    "truncated": True,
                    "done": True,
                    "turn": session.turn,
                    "total_reward": session.total,
                    "info_error": played.error,
                }
            else:
                step, _ = answer
                session.turn, session.total = step.turn, session.total + step.reward
                reply = {
                    "observation": step.observation,
                    "reward": step.reward,
                    "reward_components": step.reward_components,
                    "terminated": step.terminated,
                    "truncated": step.truncated,
                    "done": played.ended,
                    "turn": step.turn,
                    "total_reward": session.total,
                    "info_error": step.error,
                }
            if reply["done"]:
                reply["termination_reason"], reply["success"] = played.reason, played.success
                await self._end(session)
            session.answered = time.perf_counter()
            return {**reply, "saved": session.saved}

    async def quit(self, request: Request) -> dict[str, Any]:
        session = self._session(request)
        await self._close(session, f"the person quit in the browser after turn {session.turn}")
        return {"saved": session.saved}

    async def close_all(self) -> None:
        """Close every session, storing what was played (the app's shutdown)."""
        for session in list(self.sessions.values()):
            await self._close(session, f"the app stopped after turn {session.turn}")

    def _session(self, request: Request) -> PlaySession:
        sid = request.path_params["sid"]
        session = self.sessions.get(sid)
        if session is None:
            raise ApiError(
                404, f"no play session {sid!r} (it was quit, or closed after {self.idle_s:g} s idle): start another"
            )
        return session

    async def _make_room(self) -> None:
        """Close the sessions idle for ``idle_s`` and, at the cap, the least recently used one."""
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if now - session.used > self.idle_s:
                await self._close(session, f"the browser left it idle for {self.idle_s:g} s after turn {session.turn}")
        while len(self.sessions) >= self.max_sessions:
            oldest = min(self.sessions.values(), key=lambda s: s.used)
            await self._close(
                oldest, f"closed after turn {oldest.turn} to open another ({self.max_sessions} sessions at most)"
            )

    async def _close(self, session: PlaySession, detail: str) -> None:
        """End ``session``: store what was played (``detail``: why it stopped), close its env, forget it."""
        async with session.lock:
            if session.env is not None and (session.played.steps or session.played.raised is not None):
                session.played.detail = detail
                await self._end(session)
            elif session.env is not None:
                env, session.env = session.env, None
                await anyio.to_thread.run_sync(_close_env, env, session.sid)
            self.sessions.pop(session.sid, None)

    async def _end(self, session: PlaySession) -> None:
        """Store the session's episode (see the module docstring) and close its env."""
        env = session.env
        assert env is not None
        session.played.seconds = time.perf_counter() - session.started
        try:
            session.saved = await anyio.to_thread.run_sync(self._store, session, env)
        finally:
            session.env = None
            await anyio.to_thread.run_sync(_close_env, env, session.sid)

    def _store(self, session: PlaySession, env: gym.Env[Any, Any]) -> dict[str, Any]:
        played, recipe = session.played, session.recipe
        with self._saving:
            try:
                if session.continuation is not None:
                    rid, source = session.continuation.rid, session.continuation.source
                    record, n = store_branch(source, session.continuation.original, played, env)
                    path = source.path
                else:
                    rid, path = self.play_rid, self.play_out

                    def record_of(episodes: list[Episode]) -> Episode:
                        sample = next_sample(episodes, recipe, session.seed)
                        return played_episode(
                            recipe, session.seed, sample, session.task_id, session.opening, played, env
                        )

                    record, n = append_played(path, record_of)
            except OSError as exc:
                raise ApiError(500, f"cannot save the episode: {exc}; check the file's folder and disk") from None
        return {"run": rid, "path": str(path), "episode": n, "branch": record.branch}


def _endpoint(handler: Callable[[Request], Awaitable[dict[str, Any]]]) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        try:
            return JSONResponse(await handler(request))
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)

    return endpoint


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ApiError(400, f"the request body is not JSON ({exc}); send a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body is a JSON {type(body).__name__}, not an object; send a JSON object")
    return body


def _action(body: dict[str, Any], session: PlaySession) -> str:
    """The text to step with: ``action`` as typed, or ``tool`` + ``arguments`` as a ``<tool_call>`` block."""
    has_action, has_tool = "action" in body, "tool" in body
    if has_action == has_tool:
        raise ApiError(400, 'send {"action": TEXT} or {"tool": NAME, "arguments": {...}} (one of the two)')
    if has_action:
        action = body["action"]
        if not isinstance(action, str):
            raise ApiError(400, f"action: expected the text of the action, got {action!r}")
        return action
    tool, arguments = body["tool"], body.get("arguments", {})
    names = [schema.get("function", schema).get("name") for schema in session.tools]
    if not isinstance(tool, str) or (names and tool not in names):
        raise ApiError(400, f"tool: {tool!r} is not a tool of {session.recipe.env_id}; pick one of {names}")
    if not isinstance(arguments, dict):
        raise ApiError(400, f"arguments: expected an object of the tool's arguments, got {arguments!r}")
    return render_tool_calls([ToolCall(tool, arguments)])


def _over(session: PlaySession) -> str:
    played = session.played
    return f"session {session.sid}'s episode is over ({played.reason} at turn {session.turn})"


def _build(recipe: EnvRecipe) -> gym.Env[Any, Any]:
    try:
        return recipe.build()
    except Exception as exc:
        raise ApiError(
            400,
            f"cannot build {recipe.env_id} with env_kwargs {json.dumps(recipe.kwargs, default=str)}: "
            f"{_exception_line(exc)}; fix the env_kwargs",
        ) from None


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker thread; a :class:`ForkError` becomes a 400."""
    try:
        return await anyio.to_thread.run_sync(fn, *args)
    except ForkError as exc:
        raise ApiError(400, str(exc)) from None


def _exception_line(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__


def _new_sid() -> str:
    return secrets.token_hex(8)


def _close_env(env: gym.Env[Any, Any], sid: str) -> None:
    """Close a session's env; what its ``close`` raises is logged (the game is over either way)."""
    try:
        env.close()
    except Exception:
        log.exception("closing the env of play session %s", sid)


def _close_envs(sessions: dict[str, PlaySession]) -> None:
    for session in sessions.values():
        env, session.env = session.env, None
        if env is not None:
            _close_env(env, session.sid)
