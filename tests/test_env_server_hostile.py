"""Hostile input, capacity and idle timeout: each gets a protocol error and the server keeps serving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from horizongym.cli import main as cli_main
from horizongym.envs.remote.protocol import MAX_MESSAGE_BYTES
from horizongym.envs.remote.server import SERVER_CONFIG, create_app
from horizongym.serverthread import ServerThread


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(create_app("KeyChain-v0", max_sessions=3, idle_timeout_s=60), **SERVER_CONFIG) as running:
        yield running


def ws_url(server: ServerThread) -> str:
    return f"ws://{server.host}:{server.port}/ws"


async def exchange(ws: Any, message: str | bytes) -> dict[str, Any]:
    await ws.send(message)
    answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return answer


async def play_one_episode(server: ServerThread) -> float:
    """A normal KeyChain episode on a new connection: proof that the server still serves."""
    async with websockets.connect(ws_url(server)) as ws:
        answer = await exchange(ws, json.dumps({"type": "reset", "data": {"seed": 0, "options": {"depth": 1}}}))
        text = answer["data"]["observation"]["text"]
        start = text.split("Start key: ")[1].split(".")[0]
        answer = await exchange(ws, json.dumps({"type": "step", "data": {"text": f"<lookup>{start}</lookup>"}}))
        nxt = answer["data"]["observation"]["text"].split("-> ")[1]
        answer = await exchange(ws, json.dumps({"type": "step", "data": {"text": f"<lookup>{nxt}</lookup>"}}))
        number = answer["data"]["observation"]["text"].split(" = ")[1]
        answer = await exchange(ws, json.dumps({"type": "step", "data": {"text": f"<answer>{number}</answer>"}}))
        assert answer["data"]["done"] is True
        return float(answer["data"]["reward"])


def test_hostile_websocket_messages_get_errors_and_the_session_goes_on(server: ServerThread) -> None:
    cases: list[tuple[str | bytes, str]] = [
        ("{not json", "INVALID_JSON"),
        ("[" * 100_000 + "]" * 100_000, "INVALID_JSON"),  # nesting too deep for the decoder
        (b"\x00\xff binary", "INVALID_JSON"),
        ("[1, 2]", "VALIDATION_ERROR"),
        (json.dumps({"type": "launch"}), "UNKNOWN_TYPE"),
        (json.dumps({"data": {}}), "UNKNOWN_TYPE"),
        (json.dumps({"type": "step", "data": "text"}), "VALIDATION_ERROR"),
        (json.dumps({"type": "step", "data": {"text": "x"}}), "EPISODE_NOT_STARTED"),  # before reset
        (json.dumps({"type": "step", "data": {"txt": "x"}}), "VALIDATION_ERROR"),
        (json.dumps({"type": "reset", "data": {"seed": -1}}), "VALIDATION_ERROR"),
        (json.dumps({"type": "step", "data": {"text": "x" * (MAX_MESSAGE_BYTES + 1)}}), "MESSAGE_TOO_LARGE"),
        (json.dumps({"type": "step", "data": {"text": "é" * (MAX_MESSAGE_BYTES // 2)}}), "MESSAGE_TOO_LARGE"),
    ]

    async def main() -> None:
        async with websockets.connect(ws_url(server), max_size=None) as ws:
            for message, code in cases:
                answer = await exchange(ws, message)
                assert answer["type"] == "error" and answer["data"]["code"] == code, (str(message)[:40], answer)
                assert answer["data"]["message"]
            # the same connection still plays: its session survived every error
            answer = await exchange(ws, json.dumps({"type": "reset", "data": {"seed": 1}}))
            assert answer["type"] == "observation"
            answer = await exchange(ws, json.dumps({"type": "mcp", "data": {"jsonrpc": "1.0", "method": "x", "id": 3}}))
            assert answer["data"]["error"]["code"] == -32600
            answer = await exchange(ws, json.dumps({"type": "step", "data": {"text": "<answer>0</answer>"}}))
            assert answer["data"]["done"] is True
            answer = await exchange(ws, json.dumps({"type": "step", "data": {"text": "<answer>0</answer>"}}))
            assert answer["data"]["code"] == "EPISODE_NOT_STARTED"  # after the episode ended
            await ws.send(json.dumps({"type": "close"}))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        assert await play_one_episode(server) == 1.0

    asyncio.run(main())


def test_hostile_http_requests_get_errors_and_the_server_goes_on(server: ServerThread) -> None:
    with httpx.Client(base_url=server.url) as http:
        cases = [
            (http.post("/reset", content=b"{nope"), 400, "INVALID_JSON"),
            (http.post("/reset", json=[1]), 422, "VALIDATION_ERROR"),
            (http.post("/reset", json={"seed": "x"}), 422, "VALIDATION_ERROR"),
            (http.post("/step", json={"session_id": "x"}), 422, "VALIDATION_ERROR"),
            (
                http.post("/step", json={"action": {"text": "x"}, "session_id": "closed-or-never"}),
                404,
                "UNKNOWN_SESSION",
            ),
            (http.post("/step", json={"action": {"text": "x"}, "session_id": 5}), 422, "VALIDATION_ERROR"),
            (http.get("/state", params={"session_id": "nope"}), 404, "UNKNOWN_SESSION"),
            (http.post("/close", json={"session_id": "nope"}), 404, "UNKNOWN_SESSION"),
            (http.post("/step", content=b"x" * (MAX_MESSAGE_BYTES + 10)), 413, "MESSAGE_TOO_LARGE"),
            (http.get("/nowhere"), 404, "NOT_FOUND"),
            (http.get("/step"), 405, "METHOD_NOT_ALLOWED"),
        ]
        for response, status, code in cases:
            assert (response.status_code, response.json()["data"]["code"]) == (status, code), response.text[:200]
        assert http.post("/mcp", content=b"x" * (MAX_MESSAGE_BYTES + 10)).status_code == 413
    assert asyncio.run(play_one_episode(server)) == 1.0


def test_capacity_reached_answers_at_once_and_frees_on_disconnect(server: ServerThread) -> None:
    async def main() -> None:
        held = [await websockets.connect(ws_url(server)) for _ in range(3)]
        for ws in held:  # each session is open once it answers
            assert (await exchange(ws, json.dumps({"type": "state"})))["type"] == "state"
        async with websockets.connect(ws_url(server)) as extra:
            refused = json.loads(await asyncio.wait_for(extra.recv(), 5))  # refused at once, never queued
            assert refused["data"]["code"] == "CAPACITY_REACHED" and refused["data"]["max_sessions"] == 3
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(extra.recv(), 5)
        http_refused = await asyncio.to_thread(httpx.post, f"{server.url}/reset", json={})
        assert http_refused.status_code == 503 and http_refused.json()["data"]["code"] == "CAPACITY_REACHED"
        await held[0].close()
        for _ in range(100):  # the server sees the disconnect and frees the slot
            if (await asyncio.to_thread(httpx.get, f"{server.url}/health")).json()["active_sessions"] == 2:
                break
            await asyncio.sleep(0.05)
        assert await play_one_episode(server) == 1.0
        for ws in held[1:]:
            await ws.close()

    asyncio.run(main())


def test_idle_sessions_time_out_and_free_their_slot() -> None:
    with ServerThread(create_app("KeyChain-v0", max_sessions=1, idle_timeout_s=0.3), **SERVER_CONFIG) as server:

        async def main() -> None:
            async with websockets.connect(ws_url(server)) as ws:
                assert (await exchange(ws, json.dumps({"type": "reset", "data": {}})))["type"] == "observation"
                notice = json.loads(await asyncio.wait_for(ws.recv(), 10))  # nothing sent: the reaper closes it
                assert notice["data"]["code"] == "SESSION_ERROR" and "without a message" in notice["data"]["message"]
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
            opened = await asyncio.to_thread(httpx.post, f"{server.url}/reset", json={"session": True})
            session_id = opened.json()["session_id"]
            await asyncio.sleep(1.0)
            gone = await asyncio.to_thread(
                httpx.post, f"{server.url}/step", json={"action": {"text": "x"}, "session_id": session_id}
            )
            assert gone.json()["data"]["code"] == "UNKNOWN_SESSION"
            assert (await asyncio.to_thread(httpx.get, f"{server.url}/health")).json()["active_sessions"] == 0

        asyncio.run(main())


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["serve-env", "NoSuch-v0"], "the registered ones: "),
        (["serve-env", "KeyChain-v0", "--env-kwargs", '{"depth": 2}'], "KeyChain-v0 takes "),
        (["serve-env", "KeyChain-v0", "--env-kwargs", "{"], "--env-kwargs"),
        (["serve-env", "KeyChain-v0", "--idle-timeout", "0"], "--idle-timeout"),
        (["serve-env", "KeyChain-v0", "--port", "70000"], "--port"),
    ],
)
def test_serve_env_bad_input_is_one_line_and_exit_2(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_serve_env_port_in_use_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with ServerThread(create_app("KeyChain-v0"), **SERVER_CONFIG) as server:
        assert cli_main(["serve-env", "KeyChain-v0", "--port", str(server.port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{server.port}" in err and err.count("\n") == 1, err
