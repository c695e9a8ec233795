"""A served env played as a local one: :class:`RemoteEnv`, the ``gymnasium.Env[str, str]`` behind
``horizongym.make("ws://host:port")``.

One :class:`RemoteEnv` holds one WebSocket session at the server's ``/ws`` (OpenEnv's contract,
:mod:`horizongym.envs.remote.protocol`): ``reset`` opens the session when there is none and
sends ``{"type": "reset"}``, ``step`` sends ``{"type": "step", "data": {"text": ...}}``, and
each answer's observation becomes Gymnasium's values with the served env's ``info`` unchanged,
so the rollout engine drives a remote env exactly like a local one. ``http://`` and ``https://``
URLs name the same server (its ``/ws``); a URL whose path ends in ``/ws`` is used as it is.

What goes wrong during a ``step`` ends the episode truncated, the way the env ↔ engine contract
says (:mod:`horizongym.envs.contract`), with the words about it in ``termination_detail``:

* the connection is lost, or no answer comes within ``step_timeout_s``, or the server says it lost
  the session (``SESSION_ERROR``, ``UNKNOWN_SESSION``): ``infra_error``, ``retryable`` True; the
  next ``reset`` opens a new session;
* the server answers ``EXECUTION_ERROR`` (the served env raised), refuses the action as malformed,
  or answers outside the protocol: ``env_error`` (a bug of the served env or the server);
* the action is larger than a message may be (:data:`~horizongym.envs.remote.protocol.MAX_MESSAGE_BYTES`):
  ``policy_error``.

An episode that the served env itself ended (its own ``env_error``, a sandbox that died) passes
through unchanged. A ``reset`` that cannot connect, or finds the server at capacity, raises
:class:`RemoteEnvUnavailable` (an :class:`~horizongym.failures.InfrastructureError`, retryable),
so the engine plays the episode again on a fresh env and never records it as a policy's zero
reward; a served env that raises in ``reset`` is a :class:`RemoteEnvError` (an ``env_error``).
A session the server closed while it sat idle is reopened by the next ``reset``, unseen.

Its episodes cannot be forked: ``horizongym.envs.snapshot.snapshot`` raises ``NotForkable`` naming
the server (:attr:`RemoteEnv.fork_refusal`), since the episode's state is the server's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import urllib.parse
from typing import Any, ClassVar, Final, SupportsFloat

import gymnasium as gym
import httpx
from websockets.exceptions import ConcurrencyError, ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode
from websockets.sync.client import ClientConnection, connect

from horizongym.envs.base import TextEnv
from horizongym.envs.contract import (
    RETRYABLE,
    REWARD_COMPONENTS,
    SUCCESS,
    TASK_ID,
    TERMINATION_DETAIL,
    TERMINATION_REASON,
    TOOLS,
    TURN,
    TerminationReason,
)
from horizongym.envs.registration import ENV_URL_SCHEMES
from horizongym.envs.remote.protocol import (
    MAX_ANSWER_BYTES,
    MAX_MESSAGE_BYTES,
    ErrorCode,
    TextAction,
    jsonable,
    step_result,
)
from horizongym.envs.spaces import UnicodeText
from horizongym.failures import InfrastructureError

SESSION_PATH: Final = "/ws"
LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})
"""Hosts reached directly, never through a proxy named in the environment (as OpenEnv's client does)."""
CLOSE_WAIT_S: Final = 0.5
"""How long ``close`` waits for the server to close the socket after the ``close`` message."""
SETTINGS: Final = frozenset({"connect_timeout_s", "step_timeout_s", "render_mode"})
"""What ``horizongym.make(URL, ...)`` may set: the served env's own settings are the server's."""

_SESSION_BROKE: Final = frozenset({ErrorCode.SESSION_ERROR, ErrorCode.UNKNOWN_SESSION})
"""Error codes that say the server lost the session: another try on a new session may succeed."""


class RemoteEnvUnavailable(InfrastructureError):
    """The env server cannot be reached, or cannot take another session now; the message names the
    URL and the fix. Retryable unless another try cannot help (a URL that is no env server)."""


class RemoteEnvAtCapacity(RemoteEnvUnavailable):
    """The env server holds as many sessions as it takes (OpenEnv's ``CAPACITY_REACHED``)."""


class MessageTooLarge(ValueError):
    """A request (an action, reset options) larger than one message may be (``MAX_MESSAGE_BYTES``)."""


class RemoteEnvError(RuntimeError):
    """The served env raised in ``reset``, or the server answered outside the protocol: a bug of the
    served env or of the server, not of the connection (the engine records an ``env_error``)."""


@dataclasses.dataclass(frozen=True)
class ServerURL:
    """The two addresses of one env server: its WebSocket session endpoint and its HTTP root."""

    session: str
    """``ws://host:port/ws`` (``wss://`` for TLS)."""
    http: str
    """``http://host:port`` (``https://`` for TLS), where ``/metadata`` and ``/health`` are."""
    host: str

    @classmethod
    def parse(cls, url: str) -> ServerURL:
        """``ws://``, ``wss://``, ``http://`` or ``https://`` ``host:port[/path]``; a ValueError naming
        the problem otherwise. A path ending in ``/ws`` is the session endpoint; another path is the
        server's root (behind a proxy that serves it under a prefix)."""
        if not isinstance(url, str) or not url.startswith(ENV_URL_SCHEMES):
            raise ValueError(f"{url!r} is not the URL of an env server: write ws://HOST:PORT (or http://HOST:PORT)")
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port, host = None, ""
        else:
            host = parts.hostname or ""
        if not host:
            raise ValueError(f"{url!r} names no host (or a bad port): write ws://HOST:PORT, e.g. ws://127.0.0.1:8010")
        if parts.query or parts.fragment:
            raise ValueError(f"{url!r} has a query or fragment: an env server's URL is ws://HOST:PORT[/PATH]")
        secure = parts.scheme in ("wss", "https")
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc += f":{port}"
        root = parts.path.rstrip("/")
        root = root.removesuffix(SESSION_PATH)
        return cls(
            session=f"{'wss' if secure else 'ws'}://{netloc}{root}{SESSION_PATH}",
            http=f"{'https' if secure else 'http'}://{netloc}{root}",
            host=host,
        )


def served_env_id(url: str, *, timeout_s: float = 10.0) -> str:
    """The id of the env served at ``url``, from its ``GET /metadata`` (``env_id``, else OpenEnv's ``name``).

    Raises :class:`RemoteEnvUnavailable` when the server cannot be asked, :class:`RemoteEnvError`
    when its answer names no env.
    """
    server = ServerURL.parse(url)
    address = f"{server.http}/metadata"
    try:
        response = httpx.get(address, timeout=timeout_s, trust_env=server.host not in LOOPBACK_HOSTS)
        response.raise_for_status()
        metadata = response.json()
    except httpx.HTTPStatusError as exc:
        raise RemoteEnvUnavailable(
            f"GET {address} answered HTTP {exc.response.status_code}: is {url} an env server "
            "('horizongym serve-env ENV_ID')? Fix the URL",
            retryable=exc.response.status_code >= 500,
        ) from None
    except (httpx.HTTPError, ValueError) as exc:
        words = _exception_words(exc)
        raise RemoteEnvUnavailable(f"cannot ask {address} which env it serves: {words}; {_FIX}") from None
    env_id = metadata.get("env_id") or metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(env_id, str) or not env_id:
        raise RemoteEnvError(f"GET {address} names no env (no 'env_id' or 'name' in {str(metadata)[:200]})")
    return env_id


_FIX: Final = "check that the server runs ('horizongym serve-env ENV_ID --port PORT') and the URL"


class _NoAnswer(Exception):
    """A request got no answer: the connection was lost or the answer did not come in time."""

    def __init__(self, detail: str, *, retryable: bool = True, lost: bool = False) -> None:
        super().__init__(detail)
        self.retryable = retryable
        self.lost = lost
        """The connection was open and is closed now (not: it could not open, or the answer was late)."""


class RemoteEnv(gym.Env[str, str]):
    """A served env, played over one WebSocket session as a local ``gymnasium.Env[str, str]``.

    ``url``: ``ws://host:port`` (or ``http://host:port``, the same server). ``connect_timeout_s``
    bounds opening a session; ``step_timeout_s`` (None: no limit) bounds waiting for each answer
    (a reset's too). Nothing is sent before the first ``reset``. See the module docstring for what
    each failure becomes.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "render_fps": 4}  # noqa: RUF012 (Gymnasium API)
    blocking: ClassVar[bool] = True
    """Every call waits on the network: the rollout engine runs it in a thread."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 10.0,
        step_timeout_s: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.server = ServerURL.parse(url)
        self.url = url
        for name, value in (("connect_timeout_s", connect_timeout_s), ("step_timeout_s", step_timeout_s)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                raise ValueError(f"{name} must be a number of seconds above 0, got {value!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.connect_timeout_s = float(connect_timeout_s)
        self.step_timeout_s = None if step_timeout_s is None else float(step_timeout_s)
        self.render_mode = render_mode
        self.observation_space = UnicodeText(MAX_MESSAGE_BYTES)  # whatever text fits an answer
        self.action_space = UnicodeText(TextEnv.max_text_length)  # what a served TextEnv takes by default
        self._connection: ClientConnection | None = None
        self._served_id: str | None = None
        self._in_episode = False
        self._tools: list[dict[str, Any]] = []
        self._task_id: str | None = None
        self._turn = 0
        self._last_observation = ""

    # ----- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode on the server (opening a session if there is none); ``seed`` and ``options``
        go to the served env's ``reset``."""
        super().reset(seed=seed)  # the local generator only follows the seed: the served env draws its own
        self._in_episode = False
        data: dict[str, Any] = {}
        if seed is not None:
            data["seed"] = seed
        if options is not None:
            data["options"] = jsonable(options)
        message = {"type": "reset", "data": data}
        reused = self._connection is not None
        try:
            answer = self._request(message, "reset")
            if reused and _session_ended(answer):
                # the server closed a session left idle (its idle timeout): a reset starts afresh anyway
                self._disconnect()
                answer = self._request(message, "reset")
        except _NoAnswer as exc:
            if not (reused and exc.lost):
                raise RemoteEnvUnavailable(f"{exc}; {_FIX}", retryable=exc.retryable) from None
            try:  # the connection was lost while unused (a restarted server, an idle timeout): once more, anew
                answer = self._request(message, "reset")
            except _NoAnswer as again:
                raise RemoteEnvUnavailable(f"{again}; {_FIX}", retryable=again.retryable) from None
        if answer.get("type") == "error":
            raise self._reset_refused(answer.get("data"))
        observation, _, _, _, info = self._observation(answer, "reset", exception=RemoteEnvError)
        self._in_episode = True
        self._tools = info.get(TOOLS) or []
        self._task_id = info.get(TASK_ID)
        self._turn = int(info.get(TURN) or 0)
        self._last_observation = observation
        return observation, info

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        """Play ``action`` on the server; a failure on the way ends the episode (module docstring)."""
        if not self._in_episode:
            raise gym.error.ResetNeeded("the episode has not started or has ended; call reset() first")
        self._turn += 1
        message = {"type": "step", "data": TextAction(text=action).model_dump(exclude_defaults=True)}
        try:
            answer = self._request(message, f"step {self._turn}")
        except MessageTooLarge as exc:
            return self._ended("policy_error", str(exc))
        except RemoteEnvError as exc:
            return self._ended("env_error", str(exc))
        except _NoAnswer as exc:
            return self._ended("infra_error", str(exc), retryable=exc.retryable)
        if answer.get("type") == "error":
            return self._step_refused(answer.get("data"))
        try:
            observation, reward, terminated, truncated, info = self._observation(answer, f"step {self._turn}")
        except RemoteEnvError as exc:
            self._disconnect()  # an answer outside the protocol: nothing more on this session is trusted
            return self._ended("env_error", str(exc))
        self._turn = int(info.get(TURN) or self._turn)
        self._in_episode = not (terminated or truncated)
        self._last_observation = observation
        return observation, reward, terminated, truncated, info

    def close(self) -> None:
        """End the session (a ``close`` message, then the socket); the next ``reset`` opens a new one."""
        self._in_episode = False
        connection = self._connection
        if connection is None:
            return
        # gone already, or a step waits on it in another thread (ConcurrencyError): just close the socket
        with contextlib.suppress(ConnectionClosed, ConcurrencyError, OSError, TimeoutError):
            connection.send(json.dumps({"type": "close"}))
            # the server ends the session, then closes the socket: closing it first would make the server
            # write into a closed socket (OpenEnv's logs a traceback for each)
            connection.recv(timeout=CLOSE_WAIT_S)
        self._disconnect()

    def render(self) -> str | None:
        if self.render_mode == "human":
            print(self._last_observation)
        return self._last_observation if self.render_mode == "ansi" else None

    # ----- beyond Gymnasium ----------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The session's state as the server reports it (OpenEnv's ``State``: ``episode_id``,
        ``step_count``; a horizongym server adds ``env_id``, ``task_id``, ``done``)."""
        try:
            answer = self._request({"type": "state"}, "state")
        except _NoAnswer as exc:
            raise RemoteEnvUnavailable(f"{exc}; {_FIX}", retryable=exc.retryable) from None
        data = answer.get("data")
        if answer.get("type") != "state" or not isinstance(data, dict):
            raise RemoteEnvError(f"{self.server.session} answered a state request with {_shown(answer)}")
        return data

    @property
    def served_env_id(self) -> str:
        """The id of the env the server serves (its ``GET /metadata``; asked once), e.g. to find its expert."""
        if self._served_id is None:
            self._served_id = served_env_id(self.url, timeout_s=self.connect_timeout_s)
        return self._served_id

    @property
    def fork_refusal(self) -> str:
        """Why its episodes cannot be snapshot (:mod:`horizongym.envs.snapshot` raises ``NotForkable`` with it)."""
        return (
            f"its episode lives on the env server at {self.url}, not in this process; to fork episodes, play "
            "the env locally (horizongym.make with the id the server serves)"
        )

    def __repr__(self) -> str:
        return f"<RemoteEnv {self.server.session}>"

    # ----- the session ---------------------------------------------------------------
    def _connect(self) -> ClientConnection:
        """The open session, opened now if there is none; :class:`_NoAnswer` when it cannot be."""
        if self._connection is not None:
            return self._connection
        address = self.server.session
        try:
            connection = connect(
                address,
                open_timeout=self.connect_timeout_s,
                max_size=MAX_ANSWER_BYTES,
                compression=None,  # short JSON messages on a fast network: deflate costs more than it saves
                proxy=None if self.server.host in LOOPBACK_HOSTS else True,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise _NoAnswer(
                f"{address} answered HTTP {status} instead of opening a session (is it an env server?)",
                retryable=status >= 500,
            ) from None
        except (InvalidHandshake, InvalidURI, OSError, TimeoutError) as exc:
            raise _NoAnswer(f"cannot connect to the env server at {address}: {_exception_words(exc)}") from None
        # held as its context manager holds it (a bare connection is deprecated); _disconnect closes it
        self._connection = connection.__enter__()
        return self._connection

    def _request(self, message: dict[str, Any], what: str) -> dict[str, Any]:
        """Send ``message`` and return the answer, a JSON object. :class:`_NoAnswer` (the session is
        then closed) when the connection is lost or the answer does not come within ``step_timeout_s``."""
        text = json.dumps(message, ensure_ascii=False)
        if len(text) > MAX_MESSAGE_BYTES // 4 and len(text.encode()) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(
                f"the message of {what} is {len(text.encode())} bytes; a served env takes messages up to "
                f"{MAX_MESSAGE_BYTES} bytes"
            )
        connection = self._connect()
        address = self.server.session
        try:
            connection.send(text)
            raw = connection.recv(timeout=self.step_timeout_s)
        except TimeoutError:
            self._disconnect()  # a late answer would be read as the next request's
            raise _NoAnswer(f"no answer from {address} to {what} within {self.step_timeout_s:g} s") from None
        except ConnectionClosed as exc:
            last_words = self._last_words(connection)  # a server that refuses a session says why, then closes
            self._disconnect()
            if last_words is not None:
                raw = last_words
            else:
                too_large = exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG
                if too_large:
                    raise _NoAnswer(
                        f"{address} sent an answer to {what} larger than {MAX_ANSWER_BYTES} bytes", retryable=False
                    ) from None
                words = _exception_words(exc)
                raise _NoAnswer(f"lost the connection to {address} during {what}: {words}", lost=True) from None
        except OSError as exc:
            self._disconnect()
            words = _exception_words(exc)
            raise _NoAnswer(f"lost the connection to {address} during {what}: {words}", lost=True) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            self._disconnect()  # nothing more on this session is trusted
            raise RemoteEnvError(f"{address} answered {what} with {_shown(raw)}, not a JSON object")
        return answer

    def _last_words(self, connection: ClientConnection) -> str | bytes | None:
        """A message the server sent before it closed the connection (its reason), if one is waiting."""
        try:
            return connection.recv(timeout=0)
        except (ConnectionClosed, TimeoutError, OSError):
            return None

    def _disconnect(self) -> None:
        """Close the socket without a word (the session is over or cannot be trusted)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                connection.close()

    # ----- answers -------------------------------------------------------------------
    def _observation(
        self, answer: dict[str, Any], what: str, *, exception: type[Exception] = RemoteEnvError
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """An ``observation`` answer as Gymnasium's five values; ``exception`` when it is not one."""
        if answer.get("type") != "observation" or not isinstance(answer.get("data"), dict):
            raise exception(f"{self.server.session} answered {what} with {_shown(answer)}, not an observation")
        try:
            return step_result(answer["data"])
        except ValueError as exc:
            raise exception(f"{self.server.session} answered {what} with {exc}") from None

    def _reset_refused(self, data: object) -> Exception:
        """The exception for an error answer to ``reset``. The session is closed (the next reset opens
        another) unless the served env itself raised: then the session serves on."""
        code, words = _error_words(data)
        address = self.server.session
        if code != ErrorCode.EXECUTION_ERROR:
            self._disconnect()
        if code == ErrorCode.CAPACITY_REACHED:
            busy = ""
            if isinstance(data, dict) and "active_sessions" in data and "max_sessions" in data:
                busy = f" ({data['active_sessions']} of {data['max_sessions']} sessions in use)"
            return RemoteEnvAtCapacity(
                f"the env server at {address} is at capacity{busy}; retry later, run fewer episodes at once "
                "(--concurrency), or start the server with more sessions (--max-sessions)"
            )
        if code in _SESSION_BROKE:
            return RemoteEnvUnavailable(f"the env server at {address} lost the session during reset: {words}; {_FIX}")
        if code == ErrorCode.FACTORY_ERROR:
            return RemoteEnvUnavailable(
                f"the env server at {address} cannot build its env: {words}; fix the server's env settings",
                retryable=False,
            )
        return RemoteEnvError(f"the env served at {address} failed to reset: {code}: {words}")

    def _step_refused(self, data: object) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """The end of an episode whose step the server answered with an error."""
        code, words = _error_words(data)
        detail = f"{self.server.session} answered step {self._turn} with {code}: {words}"
        if code in _SESSION_BROKE or code == ErrorCode.CAPACITY_REACHED:
            self._disconnect()
            return self._ended("infra_error", detail, retryable=True)
        if code == ErrorCode.MESSAGE_TOO_LARGE:
            return self._ended("policy_error", detail)
        return self._ended("env_error", detail)

    def _ended(
        self, reason: TerminationReason, detail: str, *, retryable: bool | None = None
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """The last step of an episode that a failure ended: truncated, with the reason and its detail."""
        self._in_episode = False
        info: dict[str, Any] = {
            TOOLS: self._tools,
            TASK_ID: self._task_id,
            TURN: self._turn,
            REWARD_COMPONENTS: {},
            TERMINATION_REASON: reason,
            TERMINATION_DETAIL: detail,
            SUCCESS: None,
        }
        if retryable is not None:
            info[RETRYABLE] = retryable
        self._last_observation = f"The episode ended: {detail}"
        return self._last_observation, 0.0, False, True, info


def make_remote(url: str, *, disable_env_checker: bool = False, **settings: Any) -> RemoteEnv:
    """``horizongym.make(URL, ...)``: a :class:`RemoteEnv`. Only the client's :data:`SETTINGS` can be
    set here; ``disable_env_checker`` is accepted for ``gymnasium.make``'s sake (no checker wraps it)."""
    del disable_env_checker  # the answers are checked against the protocol on arrival
    unknown = sorted(set(settings) - SETTINGS)
    if unknown:
        raise ValueError(
            f"{url} is a served env: its own settings are the server's ('horizongym serve-env ENV_ID --env-kwargs "
            f"JSON'); here only {', '.join(sorted(SETTINGS))} can be set, not {', '.join(unknown)}"
        )
    return RemoteEnv(url, **settings)


def _session_ended(answer: dict[str, Any]) -> bool:
    """Whether ``answer`` says that the server no longer holds this connection's session."""
    data = answer.get("data")
    return answer.get("type") == "error" and isinstance(data, dict) and data.get("code") in _SESSION_BROKE


def _error_words(data: object) -> tuple[str, str]:
    """The code and message of an error answer's ``data`` (what is there of them)."""
    if not isinstance(data, dict):
        return "an error", _shown(data)
    code = str(data.get("code") or "an error")
    message = " / ".join(line.strip() for line in str(data.get("message") or "").splitlines() if line.strip())
    return code, message or "(no message)"


def _exception_words(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _shown(value: object, limit: int = 200) -> str:
    """``value`` for a message: its JSON (or repr), cut to ``limit`` characters."""
    try:
        text = json.dumps(value) if not isinstance(value, str | bytes) else repr(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
