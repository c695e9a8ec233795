"""The env server on loopback: 64 concurrent KeyChain sessions, OpenEnv's own client, HTTP sessions, MCP."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from openenv.core.generic_client import GenericEnvClient

import horizongym
from horizongym.envs.base import Task, TextEnv
from horizongym.envs.remote.protocol import jsonable, step_result
from horizongym.envs.remote.server import SERVER_CONFIG, create_app
from horizongym.failures import InfrastructureError
from horizongym.serverthread import ServerThread

_START = re.compile(r"Start key: (\w+)\.")
_VALUE = re.compile(r"^\w+ = (.+)$")


def expert_action(observation: str) -> str:
    """KeyChain's expert: look up the start key, follow each pointer, answer the number."""
    start = _START.search(observation)
    if start:
        return f"<lookup>{start.group(1)}</lookup>"
    value = _VALUE.match(observation.strip())
    assert value, f"not a lookup result: {observation!r}"
    text = value.group(1)
    return f"<lookup>{text[3:]}</lookup>" if text.startswith("-> ") else f"<answer>{text}</answer>"


def ws_url(server: ServerThread) -> str:
    return f"ws://{server.host}:{server.port}/ws"


@pytest.fixture(scope="module")
def keychain_server() -> Iterator[ServerThread]:
    with ServerThread(create_app("KeyChain-v0", max_sessions=64, idle_timeout_s=60), **SERVER_CONFIG) as server:
        yield server


def test_64_concurrent_sessions_play_keychain_like_the_env_in_process(keychain_server: ServerThread) -> None:
    sessions, episodes = 64, 3
    all_open = asyncio.Barrier(sessions)
    seen_active: list[int] = []

    async def play(index: int) -> list[float]:
        local = horizongym.make("KeyChain-v0")
        rewards = []
        async with websockets.connect(ws_url(keychain_server)) as ws:

            async def send(kind: str, data: dict[str, Any]) -> dict[str, Any]:
                await ws.send(json.dumps({"type": kind, "data": data}))
                answer = json.loads(await ws.recv())
                assert answer["type"] == "observation", answer
                return answer["data"]

            for episode in range(episodes):
                seed = 1000 * index + episode
                payload = await send("reset", {"seed": seed})
                observation, info = local.reset(seed=seed)
                assert payload["observation"]["text"] == observation and payload["reward"] is None
                assert payload["observation"]["info"] == jsonable(info)
                if episode == 0:
                    await all_open.wait()  # every session is open at once here
                    if index == 0:
                        health = await asyncio.to_thread(httpx.get, f"{keychain_server.url}/health")
                        seen_active.append(health.json()["active_sessions"])
                total, done = 0.0, False
                while not done:
                    action = expert_action(observation)
                    text, reward, terminated, truncated, info = step_result(await send("step", {"text": action}))
                    expected = local.step(action)
                    assert (text, reward, terminated, truncated, info) == (
                        expected[0],
                        float(expected[1]),
                        expected[2],
                        expected[3],
                        jsonable(expected[4]),
                    )
                    observation, total, done = text, total + reward, terminated or truncated
                assert info["success"] is True and info["termination_reason"] == "terminated"
                rewards.append(total)
        return rewards

    async def main() -> list[list[float]]:
        return await asyncio.gather(*(play(i) for i in range(sessions)))

    results = asyncio.run(main())
    assert [r for rewards in results for r in rewards] == [1.0] * sessions * episodes
    assert seen_active == [sessions]
    assert httpx.get(f"{keychain_server.url}/health").json()["active_sessions"] == 0  # all closed on disconnect


def test_openenv_client_plays_a_whole_episode(keychain_server: ServerThread) -> None:
    local = horizongym.make("KeyChain-v0")
    with GenericEnvClient(base_url=keychain_server.url).sync() as client:
        result = client.reset(seed=7)
        observation, _ = local.reset(seed=7)
        assert result.observation["text"] == observation and not result.done
        steps = 0
        while not result.done:
            action = expert_action(result.observation["text"])
            result = client.step({"text": action})
            assert result.observation["text"] == local.step(action)[0]
            steps += 1
        assert result.reward == 1.0 and result.observation["info"]["success"] is True
        state = client.state()
        assert state["env_id"] == "KeyChain-v0" and state["step_count"] == steps and state["done"] is True


def test_http_sessions_step_state_and_close(keychain_server: ServerThread) -> None:
    url = keychain_server.url
    with httpx.Client(base_url=url) as http:
        reset = http.post("/reset", json={"seed": 3, "session": True}).json()
        session_id = reset["session_id"]
        # a second session, independent
        other = http.post("/reset", json={"seed": 4, "session": True}).json()["session_id"]
        local = horizongym.make("KeyChain-v0")
        observation, _ = local.reset(seed=3)
        assert reset["observation"]["text"] == observation
        done = False
        while not done:
            action = expert_action(observation)
            answer = http.post("/step", json={"action": {"text": action}, "session_id": session_id}).json()
            observation, reward, done = answer["observation"]["text"], answer["reward"], answer["done"]
            assert observation == local.step(action)[0]
        assert reward == 1.0
        state = http.get("/state", params={"session_id": session_id}).json()
        assert state["done"] is True and state["session_id"] == session_id
        assert http.get("/state", params={"session_id": other}).json()["step_count"] == 0
        # the session in the query string; a step after the episode ended
        late = http.post(f"/step?session_id={session_id}", json={"action": {"text": "<answer>1</answer>"}})
        assert late.status_code == 409 and late.json()["data"]["code"] == "EPISODE_NOT_STARTED"
        # a reset on the named session starts its next episode
        again = http.post("/reset", json={"seed": 5, "session_id": session_id}).json()
        assert again["session_id"] == session_id and again["observation"]["text"] == local.reset(seed=5)[0]
        for sid in (session_id, other):
            assert http.post("/close", json={"session_id": sid}).json() == {"session_id": sid, "closed": True}
        gone = http.post("/step", json={"action": {"text": "x"}, "session_id": session_id})
        assert gone.status_code == 404 and gone.json()["data"]["code"] == "UNKNOWN_SESSION"
        assert 'POST /reset with "session": true' in gone.json()["data"]["message"]
        stateless = http.post("/step", json={"action": {"text": "x"}})
        assert stateless.status_code == 409 and stateless.json()["data"]["code"] == "EPISODE_NOT_STARTED"
        assert http.get("/state").json()["env_id"] == "KeyChain-v0"  # OpenEnv's stateless state


def test_schema_metadata_health(keychain_server: ServerThread) -> None:
    with httpx.Client(base_url=keychain_server.url) as http:
        schema = http.get("/schema").json()
        assert schema["action"]["required"] == ["text"] and "terminated" in schema["observation"]["properties"]
        assert "step_count" in schema["state"]["properties"]
        metadata = http.get("/metadata").json()
        assert metadata["name"] == "KeyChain-v0" and metadata["description"] == horizongym.describe("KeyChain-v0")
        assert metadata["version"] == horizongym.__version__
        assert http.get("/health").json()["status"] == "healthy"


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def test_mcp_over_http_lists_and_calls_tools_on_a_session(keychain_server: ServerThread) -> None:
    with httpx.Client(base_url=keychain_server.url) as http:
        init = http.post("/mcp", json=rpc("initialize")).json()["result"]
        assert init["serverInfo"]["name"] == "horizongym/KeyChain-v0" and "tools" in init["capabilities"]
        tools = http.post("/mcp", json=rpc("tools/list")).json()["result"]["tools"]
        expected = horizongym.make("KeyChain-v0").unwrapped.tools.schemas()  # type: ignore[attr-defined]
        assert tools == [
            {
                "name": s["function"]["name"],
                "description": s["function"]["description"],
                "inputSchema": s["function"]["parameters"],
            }
            for s in expected
        ]
        session_id = http.post("/reset", json={"seed": 11, "session": True}).json()["session_id"]
        local = horizongym.make("KeyChain-v0")
        observation, _ = local.reset(seed=11)
        headers = {"Mcp-Session-Id": session_id}
        done, turns = False, 0
        while not done:
            action = expert_action(observation)
            name, argument = re.match(r"<(\w+)>(.*)</\1>", action).groups()  # type: ignore[union-attr]
            arguments = {"key": argument} if name == "lookup" else {"value": argument}
            answer = http.post(
                "/mcp", json=rpc("tools/call", {"name": name, "arguments": arguments}, turns), headers=headers
            )
            result = answer.json()["result"]
            expected_step = local.step(action)
            observation = result["content"][0]["text"]
            assert result["content"] == [{"type": "text", "text": expected_step[0]}] and result["isError"] is False
            meta = result["_meta"]
            assert meta["reward"] == float(expected_step[1]) and meta["info"]["turn"] == turns + 1
            done, turns = meta["terminated"] or meta["truncated"], turns + 1
        assert meta["reward"] == 1.0 and meta["info"]["success"] is True
        # bad arguments are the model's mistake: a step with a format penalty, isError true
        again = http.post("/reset", json={"seed": 12, "session_id": session_id}).json()["session_id"]
        bad = http.post(
            "/mcp", json=rpc("tools/call", {"name": "lookup", "arguments": {"nope": 1}, "session_id": again})
        ).json()["result"]
        assert bad["isError"] is True and bad["_meta"]["reward"] < 0
        # protocol errors use JSON-RPC's codes
        errors = {
            "unknown tool": rpc("tools/call", {"name": "rm", "session_id": session_id}),
            "no session": rpc("tools/call", {"name": "lookup", "arguments": {"key": "a"}}),
            "unknown session": rpc("tools/call", {"name": "lookup", "session_id": "nope"}),
            "arguments not an object": rpc(
                "tools/call", {"name": "lookup", "arguments": [1], "session_id": session_id}
            ),
        }
        for case, message in errors.items():
            assert http.post("/mcp", json=message).json()["error"]["code"] == -32602, case
        assert http.post("/mcp", json=rpc("resources/list")).json()["error"]["code"] == -32601
        assert http.post("/mcp", json={"id": 1, "method": "tools/list"}).json()["error"]["code"] == -32600
        assert http.post("/mcp", content=b"{oops").json()["error"]["code"] == -32700
        notification = http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert notification.status_code == 202 and notification.content == b""
        http.post("/close", json={"session_id": session_id})


def test_mcp_over_websocket_uses_the_connection_session(keychain_server: ServerThread) -> None:
    async def main() -> None:
        async with websockets.connect(ws_url(keychain_server)) as ws:

            async def send(message: dict[str, Any]) -> dict[str, Any]:
                await ws.send(json.dumps(message))
                return json.loads(await ws.recv())

            listed = await send({"type": "mcp", "data": rpc("tools/list")})
            assert listed["type"] == "mcp" and {t["name"] for t in listed["data"]["result"]["tools"]} == {
                "answer",
                "lookup",
            }
            early = await send(
                {"type": "mcp", "data": rpc("tools/call", {"name": "lookup", "arguments": {"key": "a"}})}
            )
            assert early["data"]["error"]["data"]["code"] == "EPISODE_NOT_STARTED"
            reset = await send({"type": "reset", "data": {"seed": 2}})
            start = _START.search(reset["data"]["observation"]["text"]).group(1)  # type: ignore[union-attr]
            call = rpc("tools/call", {"name": "lookup", "arguments": {"key": start}}, 2)
            answer = await send({"type": "mcp", "data": call})
            assert answer["data"]["id"] == 2 and answer["data"]["result"]["content"][0]["text"].startswith(start)
            state = await send({"type": "state"})
            assert state["data"]["step_count"] == 1

    asyncio.run(main())


class FragileEnv(TextEnv):
    """Fails on demand: ``crash`` raises in step, ``infra`` fails as infrastructure, ``options.fail`` in reset."""

    blocking = True
    built = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        FragileEnv.built += 1

    def new_task(self, options: dict[str, Any]) -> Task:
        if options.get("fail"):
            raise RuntimeError("no task today")
        return Task("fragile", "Say anything.")

    def on_text(self, text: str) -> str:
        if text == "crash":
            raise RuntimeError("the env broke")
        if text == "infra":
            raise InfrastructureError("the machine went away", retryable=False)
        if text == "numpy":  # values JSON lacks are sent as jsonable() has them
            self.set_info("extra", {"score": np.float32(0.5), "seen": {3}, (1, 2): np.arange(2)})
        return f"echo {text}"


def test_an_env_that_raises_ends_its_episode_and_is_rebuilt() -> None:
    if "Fragile-v0" not in horizongym.registry:
        horizongym.register("Fragile-v0", FragileEnv)
    with ServerThread(create_app("Fragile-v0", max_sessions=2), **SERVER_CONFIG) as server:

        async def main() -> None:
            async with websockets.connect(ws_url(server)) as ws:

                async def send(kind: str, data: dict[str, Any]) -> dict[str, Any]:
                    await ws.send(json.dumps({"type": kind, "data": data}))
                    return json.loads(await ws.recv())

                assert (await send("reset", {}))["type"] == "observation"
                assert (await send("step", {"text": "hi"}))["data"]["observation"]["text"] == "echo hi"
                extra = (await send("step", {"text": "numpy"}))["data"]["observation"]["info"]["extra"]
                assert extra == {"score": 0.5, "seen": [3], "(1, 2)": [0, 1]}
                built = FragileEnv.built
                crash = (await send("step", {"text": "crash"}))["data"]
                info = crash["observation"]["info"]
                assert crash["observation"]["truncated"] is True and crash["done"] is True
                assert info["termination_reason"] == "env_error" and "the env broke" in info["termination_detail"]
                assert (await send("step", {"text": "hi"}))["data"]["code"] == "EPISODE_NOT_STARTED"
                assert (await send("reset", {}))["type"] == "observation"
                assert FragileEnv.built == built + 1  # rebuilt at the next reset
                infra = (await send("step", {"text": "infra"}))["data"]["observation"]["info"]
                assert infra["termination_reason"] == "infra_error" and infra["retryable"] is False
                failed = await send("reset", {"options": {"fail": True}})
                assert failed["type"] == "error" and failed["data"]["code"] == "EXECUTION_ERROR"
                assert "no task today" in failed["data"]["message"]
                assert (await send("reset", {}))["type"] == "observation"  # the session goes on

        asyncio.run(main())


def test_a_sessionless_http_reset_is_stateless_and_holds_no_slot(keychain_server: ServerThread) -> None:
    with httpx.Client(base_url=keychain_server.url) as http:
        before = http.get("/health").json()["active_sessions"]
        local = horizongym.make("KeyChain-v0")
        for seed in range(70):  # more than max_sessions: none is kept
            answer = http.post("/reset", json={"seed": seed, "unknown_key": 1}).json()  # unknown keys dropped
            assert "session_id" not in answer and answer["done"] is False
            assert answer["observation"]["text"] == local.reset(seed=seed)[0]
        assert http.get("/health").json()["active_sessions"] == before


def test_openenvs_mcp_client_calls_tools_through_mcp_alone(keychain_server: ServerThread) -> None:
    from openenv.core.mcp_client import MCPToolClient

    async def play() -> tuple[list[str], Any]:
        client = MCPToolClient(base_url=keychain_server.url)
        client.use_production_mode = True  # MCP over HTTP only: no reset message exists there
        try:
            names = [tool.name for tool in await client.list_tools()]
            return names, await client.call_tool("lookup", key="nope")
        finally:
            await client.close()

    names, result = asyncio.run(play())
    assert sorted(names) == ["answer", "lookup"]
    assert result["isError"] is False and result["_meta"]["info"]["turn"] == 1  # a reset session, stepped once
    assert "nope" in result["content"][0]["text"]


def test_openenvs_validator_accepts_the_server(keychain_server: ServerThread) -> None:
    from openenv.cli._validation import validate_running_environment

    report = validate_running_environment(keychain_server.url)
    failed = [c for c in report["criteria"] if not c["passed"]]
    assert report["passed"] and not failed, failed
    assert report["mode"] == "simulation"
