"""RemoteEnv against a server written with openenv-core itself: whole episodes equal the in-process
env's, the rollout engine and the CLI drive it, and every failure ends as the env contract says."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env
from openenv.core.env_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, EnvironmentMetadata, Observation, State
from websockets.sync.server import ServerConnection, serve

import horizongym
from horizongym.agents.scripted import expert_for
from horizongym.agents.specs import PolicySpecError, make_policy
from horizongym.cli import main
from horizongym.envs.remote.client import (
    RemoteEnv,
    RemoteEnvAtCapacity,
    RemoteEnvError,
    RemoteEnvUnavailable,
    ServerURL,
    served_env_id,
)
from horizongym.envs.remote.protocol import ErrorCode, error_message, jsonable, observation_payload
from horizongym.failures import InfrastructureError
from horizongym.serverthread import ServerThread
from horizongym.training.rollouts import EnvRecipe, RolloutEngine, read_episodes

ENV_ID = "KeyChain-v0"
RAISE, STALL = "<raise in step>", "<stall in step>"
"""Actions the test server's env answers badly: it raises, or takes longer than a client waits."""
STALL_S = 1.0
STALLING = threading.Event()
"""Set when the test server's env starts a stalled step."""


class TextAction(Action):
    """Our protocol's action as an openenv ``Action``."""

    text: str


class TextObservation(Observation):
    """Our protocol's observation as an openenv ``Observation`` (``done``, ``reward``, ``metadata`` are its own)."""

    text: str
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = {}  # noqa: RUF012 (pydantic copies field defaults)


class KeyChainSession(Environment[TextAction, TextObservation, State]):
    """A horizongym KeyChain env behind openenv's ``Environment`` interface, one per session."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self.env = horizongym.make(ENV_ID)
        self.steps = 0

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, options: dict[str, Any] | None = None, **_: Any
    ) -> TextObservation:
        if (options or {}).get("fail"):
            raise RuntimeError("no task today")
        observation, info = self.env.reset(seed=seed, options=options)
        self.steps = 0
        return TextObservation(text=observation, info=jsonable(info))

    def step(self, action: TextAction, timeout_s: float | None = None, **_: Any) -> TextObservation:
        if action.text == RAISE:
            raise RuntimeError("the env broke")
        if action.text == STALL:
            STALLING.set()
            time.sleep(STALL_S)
        observation, reward, terminated, truncated, info = self.env.step(action.text)
        self.steps += 1
        return TextObservation(
            text=observation,
            terminated=terminated,
            truncated=truncated,
            info=jsonable(info),
            reward=float(reward),
            done=terminated or truncated,
        )

    @property
    def state(self) -> State:
        return State(step_count=self.steps, env_id=ENV_ID)

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(name=ENV_ID, description="KeyChain-v0 served with openenv-core")


def openenv_server(max_sessions: int) -> ServerThread:
    """openenv-core's own server for KeyChain-v0, on a free port (not started)."""
    return ServerThread(create_app(KeyChainSession, TextAction, TextObservation, max_concurrent_envs=max_sessions))


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with openenv_server(max_sessions=8) as server:
        yield f"ws://{server.host}:{server.port}"


def expert_actions(env: Any, seed: int, prefix: list[str]) -> list[tuple[str, tuple[Any, ...]]]:
    """Play ``env`` from ``seed``: the ``prefix`` actions, then the expert's until the end; each action
    with what its step returned (the first entry is the reset's, with the action "")."""
    expert = expert_for(ENV_ID)
    observation, info = env.reset(seed=seed)
    played: list[tuple[str, tuple[Any, ...]]] = [("", (observation, jsonable(info)))]
    seen = [{"role": "user", "content": observation}]
    pending = list(prefix)
    while True:
        action = pending.pop(0) if pending else expert.decide(seen, info["tools"], None).env_action()
        observation, reward, terminated, truncated, info = env.step(action)
        seen.append({"role": "user", "content": observation})
        played.append((action, (observation, reward, terminated, truncated, jsonable(info))))
        if terminated or truncated:
            return played


@pytest.mark.parametrize("seed", [0, 7])
def test_episodes_equal_the_in_process_env(url: str, seed: int) -> None:
    prefix = ["no call at all", "<tool_call>{not json</tool_call>", '<tool_call>{"name": "nope"}</tool_call>']
    local = expert_actions(horizongym.make(ENV_ID), seed, prefix)
    env = horizongym.make(url)
    assert isinstance(env, RemoteEnv)
    try:
        remote = expert_actions(env, seed, prefix)
        assert remote == local
        assert remote[-1][1][2] is True and remote[-1][1][4]["success"] is True  # the expert solved it
        state = env.state()
        assert state["env_id"] == ENV_ID and state["step_count"] == len(local) - 1
        with pytest.raises(ResetNeeded):
            env.step("after the end")
        assert env.reset(seed=seed)[0] == local[0][1][0]  # the same session plays on
    finally:
        env.close()
        env.close()  # closing twice is harmless


def test_the_engine_drives_it_like_a_local_env(url: str) -> None:
    with RolloutEngine(EnvRecipe(url), expert_for(ENV_ID), concurrency=4, progress=False) as engine:
        remote_run = engine.run_sync(8)
    with RolloutEngine(EnvRecipe(ENV_ID), expert_for(ENV_ID), concurrency=4, progress=False) as engine:
        local_run = engine.run_sync(8)
    assert len(remote_run) == 8
    for remote, local in zip(sorted(remote_run, key=_seed), sorted(local_run, key=_seed), strict=True):
        assert remote.outcome == "completed" and remote.success is True and remote.env_id == url
        assert remote.task_id == local.task_id and remote.total_reward == local.total_reward
        assert remote.messages == local.messages
        assert [_step_fields(s) for s in remote.steps] == [_step_fields(s) for s in local.steps]


def test_the_cli_rolls_out_a_url_with_the_served_envs_expert(url: str, tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    assert main(["rollout", url, "--policy", "expert", "-n", "4", "--out", str(out), "--quiet"]) == 0
    episodes = read_episodes(out)
    assert len(episodes) == 4 and all(e.success and e.env_id == url for e in episodes)
    assert served_env_id(url.replace("ws://", "http://")) == ENV_ID


def test_check_env_accepts_it(url: str) -> None:
    env = RemoteEnv(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a checker warning is a failure too
            # the render check needs a registry spec to rebuild the env in each mode: checked below instead
            check_env(env, skip_render_check=True)
    finally:
        env.close()
    shown = RemoteEnv(url, render_mode="ansi")
    try:
        observation, _ = shown.reset(seed=5)
        assert shown.render() == observation
        answer = shown.step("plain text")[0]
        assert shown.render() == answer and answer != observation
    finally:
        shown.close()


def test_a_server_error_answer_ends_the_episode_as_the_envs_error_and_the_session_serves_on(url: str) -> None:
    env = RemoteEnv(url)
    try:
        _, info = env.reset(seed=1)
        observation, reward, terminated, truncated, end = env.step(RAISE)
        assert (reward, terminated, truncated) == (0.0, False, True)
        assert end["termination_reason"] == "env_error" and "retryable" not in end
        assert "EXECUTION_ERROR" in end["termination_detail"] and "the env broke" in end["termination_detail"]
        assert end["task_id"] == info["task_id"] and end["turn"] == 1 and end["reward_components"] == {}
        assert "the env broke" in observation
        with pytest.raises(RemoteEnvError, match="failed to reset: EXECUTION_ERROR: no task today"):
            env.reset(seed=1, options={"fail": True})
        assert env.reset(seed=1)[1]["task_id"] == info["task_id"]  # the session serves on
    finally:
        env.close()


def test_no_answer_in_time_ends_the_episode_as_a_retryable_infra_error(url: str) -> None:
    env = RemoteEnv(url, step_timeout_s=STALL_S / 4)
    try:
        env.reset(seed=2)
        _, _, _, truncated, end = env.step(STALL)
        assert truncated and end["termination_reason"] == "infra_error" and end["retryable"] is True
        assert "no answer" in end["termination_detail"] and url in end["termination_detail"]
        observation, _ = env.reset(seed=2)  # a new session: the late answer is never read as this one's
        assert "Start key" in observation
        assert env.step("plain text")[4]["error"].startswith("no_tool_call")
    finally:
        env.close()


def test_closing_while_a_step_waits_in_another_thread_frees_the_session() -> None:
    with openenv_server(max_sessions=1) as server:
        url = f"ws://{server.host}:{server.port}"
        env, other = RemoteEnv(url), RemoteEnv(url)
        ended: list[tuple[Any, ...]] = []
        try:
            env.reset(seed=0)
            STALLING.clear()
            stepping = threading.Thread(target=lambda: ended.append(env.step(STALL)))
            stepping.start()
            assert STALLING.wait(10)
            env.close()  # as the engine discards an env whose episode ran out of time: no error
            stepping.join(10)
            # the step ends: with its answer if that came before the server closed, else lost with the connection
            (_, _, _, truncated, end) = ended[0]
            assert end["turn"] == 1 and (not truncated or end["termination_reason"] == "infra_error")
            assert _eventually(lambda: _resets(other))  # the server freed the closed session
        finally:
            env.close()
            other.close()


def test_the_server_going_away_mid_episode_is_a_retryable_infra_error() -> None:
    server = openenv_server(max_sessions=2).start()
    address = f"http://{server.host}:{server.port}"  # an http URL names the same server's /ws
    env = RemoteEnv(address)
    try:
        env.reset(seed=3)
        env.step("plain text")
        server.stop()
        _, reward, terminated, truncated, end = env.step("plain text")
        assert (reward, terminated, truncated) == (0.0, False, True)
        assert end["termination_reason"] == "infra_error" and end["retryable"] is True and end["turn"] == 2
        assert end["termination_detail"].startswith(f"lost the connection to {env.server.session} during step 2")
        with pytest.raises(RemoteEnvUnavailable, match="cannot connect") as caught:
            env.reset(seed=3)  # reconnects, finds nobody
        assert caught.value.retryable
    finally:
        env.close()
        server.stop()


def test_a_refused_connection_is_a_retryable_infra_failure_on_one_line() -> None:
    port = _closed_port()
    env = horizongym.make(f"ws://127.0.0.1:{port}", connect_timeout_s=2)
    with pytest.raises(RemoteEnvUnavailable) as caught:
        env.reset(seed=0)
    message = str(caught.value)
    assert isinstance(caught.value, InfrastructureError) and caught.value.retryable
    assert "\n" not in message and f"ws://127.0.0.1:{port}/ws" in message and "serve-env" in message
    with pytest.raises(ResetNeeded):
        env.step("anything")
    with pytest.raises(PolicySpecError, match=f"cannot find the expert for ws://127.0.0.1:{port}"):
        make_policy("expert", f"ws://127.0.0.1:{port}")


def test_the_engine_retries_an_unreachable_server_and_never_scores_it() -> None:
    url = f"ws://127.0.0.1:{_closed_port()}"
    with RolloutEngine(EnvRecipe(url), expert_for(ENV_ID), progress=False, max_attempts=2) as engine:
        (episode,) = engine.run_sync(1)
    assert episode.outcome == "infra_error" and episode.retryable and not episode.trainable
    assert len(episode.attempts) == 1 and "cannot connect" in (episode.error or "")


def test_a_server_at_capacity_refuses_with_a_retryable_error_and_frees_the_session() -> None:
    with openenv_server(max_sessions=1) as server:
        url = f"ws://{server.host}:{server.port}"
        holder, other = RemoteEnv(url), RemoteEnv(url)
        try:
            holder.reset(seed=0)
            with pytest.raises(RemoteEnvAtCapacity, match="at capacity \\(1 of 1 sessions in use\\)") as caught:
                other.reset(seed=0)
            assert caught.value.retryable and "--max-sessions" in str(caught.value)
            holder.close()
            assert _eventually(lambda: _resets(other))  # the server frees the closed session
        finally:
            holder.close()
            other.close()


def test_a_cli_rollout_of_an_unreachable_server_fails_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"ws://127.0.0.1:{_closed_port()}"
    assert main(["rollout", url, "-n", "1", "--out", str(tmp_path / "run.jsonl"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and url in error and "serve-env" in error


GO = {"type": "observation", "data": observation_payload("go", None, False, False, {})}
"""A reset's answer from the hand-written servers below."""


@contextlib.contextmanager
def websocket_server(session: Callable[[ServerConnection], None]) -> Iterator[str]:
    """A bare WebSocket server on a free loopback port, each connection handled by ``session``; yields its URL."""
    with serve(session, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        server.shutdown()
        thread.join(5)


@pytest.fixture
def contract_breaker() -> Iterator[str]:
    """A server that answers a reset properly and every step with an observation of the wrong shape, except
    the action "not json", answered with text that is not JSON."""

    def session(connection: ServerConnection) -> None:
        for raw in connection:
            message = json.loads(raw)
            if message["type"] == "reset":
                connection.send(json.dumps(GO))
            elif message["data"]["text"] == "not json":
                connection.send("{half an answer")
            else:
                connection.send(json.dumps({"type": "observation", "data": {"observation": {"words": 1}}}))

    with websocket_server(session) as url:
        yield url


@pytest.fixture
def idle_closer() -> Iterator[str]:
    """A server that ends each session right after its reset, as an idle timeout does: an error, then close."""

    def session(connection: ServerConnection) -> None:
        json.loads(connection.recv())
        connection.send(json.dumps(GO))
        connection.send(json.dumps(error_message(ErrorCode.SESSION_ERROR, "session closed after 0.1 s idle")))
        connection.close()

    with websocket_server(session) as url:
        yield url


def test_a_session_the_server_closed_ends_its_episode_and_the_next_reset_opens_another(idle_closer: str) -> None:
    env = RemoteEnv(idle_closer)
    try:
        env.reset(seed=0)
        _, _, _, truncated, end = env.step("anything")
        assert truncated and end["termination_reason"] == "infra_error" and end["retryable"] is True
        assert "SESSION_ERROR: session closed after 0.1 s idle" in end["termination_detail"]
        assert env.reset(seed=0) == ("go", {})
        assert env.reset(seed=0) == ("go", {})  # the idle session's last words are read, then a new one opens
    finally:
        env.close()


@pytest.mark.parametrize("action", ["wrong shape", "not json"])
def test_an_answer_outside_the_protocol_ends_the_episode_as_an_env_error(contract_breaker: str, action: str) -> None:
    env = RemoteEnv(contract_breaker)
    try:
        assert env.reset(seed=0) == ("go", {})
        _, _, terminated, truncated, end = env.step(action)
        assert (terminated, truncated, end["termination_reason"]) == (False, True, "env_error")
        assert end["termination_detail"].startswith(f"{contract_breaker}/ws answered step 1 with")
        assert env.reset(seed=0) == ("go", {})  # on a new session
    finally:
        env.close()


def test_bad_urls_and_settings_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="names no host"):
        RemoteEnv("ws://:8010")
    with pytest.raises(ValueError, match="step_timeout_s must be"):
        RemoteEnv("ws://127.0.0.1:8010", step_timeout_s=0)
    with pytest.raises(ValueError, match="its own settings are the server's"):
        horizongym.make("ws://127.0.0.1:8010", max_turns=3)
    assert ServerURL.parse("http://h:1") == ServerURL("ws://h:1/ws", "http://h:1", "h")
    assert ServerURL.parse("wss://h/prefix/ws/") == ServerURL("wss://h/prefix/ws", "https://h/prefix", "h")
    assert ServerURL.parse("ws://[::1]:9/") == ServerURL("ws://[::1]:9/ws", "http://[::1]:9", "::1")


def _seed(episode: Any) -> int:
    return int(episode.seed)


def _step_fields(step: Any) -> dict[str, Any]:
    """A step's record without its timings."""
    return step.model_dump(exclude={"policy_seconds", "env_seconds"})


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _resets(env: RemoteEnv) -> bool:
    try:
        env.reset(seed=0)
    except RemoteEnvAtCapacity:
        return False
    return True


def _eventually(check: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_an_openenv_done_alone_ends_the_episode() -> None:
    from horizongym.envs.remote.protocol import step_result

    ended = step_result({"observation": {"text": "bye"}, "reward": 1.0, "done": True})
    assert ended == ("bye", 1.0, True, False, {})  # OpenEnv's only end signal: terminated
    going = step_result({"observation": {"text": "more"}, "reward": None, "done": False})
    assert going == ("more", 0.0, False, False, {})
