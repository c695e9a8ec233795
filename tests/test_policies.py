"""Scripted, human and OpenAI-compatible policies (the HTTP one against a real loopback server)."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from horizongym.agents import PolicyError, RandomPolicy, expert_for
from horizongym.agents.human import HumanPolicy
from horizongym.agents.openai_api import OpenAIPolicy
from horizongym.agents.specs import PolicySpecError, make_policy
from horizongym.training.rollouts import RolloutEngine


class ScriptedServer:
    """A real HTTP server on loopback that answers chat completions from a script of (status, body)."""

    def __init__(self, script: list[tuple[int, dict[str, Any]]]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0.01")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply(200, {"object": "list", "data": [{"id": "m1", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                owner.requests.append(json.loads(self.rfile.read(length)))
                status, body = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                self._reply(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }


TOOL_REPLY = _completion(
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": '{"key": "amber"}'}}
        ],
    },
    "tool_calls",
)


@pytest.fixture
def server_factory() -> Iterator[Any]:
    servers: list[ScriptedServer] = []

    def make(script: list[tuple[int, dict[str, Any]]]) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_openai_policy_reads_tool_calls_and_sends_tools(server_factory: Any) -> None:
    server = server_factory([(200, TOOL_REPLY)])

    async def go() -> Any:
        policy = OpenAIPolicy(server.url, "m1", temperature=0.5)
        try:
            assert await policy.check() == ["m1"]
            return await policy.act(
                [{"role": "user", "content": "hi"}], [{"type": "function", "function": {"name": "lookup"}}], seed=3
            )
        finally:
            await policy.aclose()

    action = asyncio.run(go())
    assert action.tool_calls[0].name == "lookup" and action.tool_calls[0].arguments == {"key": "amber"}
    assert action.tool_calls[0].id == "call_a"
    sent = server.requests[0]
    assert sent["model"] == "m1" and sent["seed"] == 3 and sent["temperature"] == 0.5
    assert sent["tools"][0]["function"]["name"] == "lookup"


def test_openai_policy_retries_429_and_5xx_then_succeeds(server_factory: Any) -> None:
    text_reply = _completion({"role": "assistant", "content": "<lookup>amber</lookup>"})
    server = server_factory([(429, {"error": {"message": "slow down"}}), (503, {"error": {}}), (200, text_reply)])

    async def go() -> Any:
        policy = OpenAIPolicy(server.url, "m1", backoff_s=0.01)
        try:
            return await policy.act([{"role": "user", "content": "hi"}], [])
        finally:
            await policy.aclose()

    action = asyncio.run(go())
    assert action.text == "<lookup>amber</lookup>" and not action.tool_calls
    assert len(server.requests) == 3


def test_openai_policy_gives_up_with_a_clear_error(server_factory: Any) -> None:
    server = server_factory([(500, {"error": {"message": "broken"}})])

    async def go() -> None:
        policy = OpenAIPolicy(server.url, "m1", backoff_s=0.001, max_retries=2)
        try:
            await policy.act([{"role": "user", "content": "hi"}], [])
        finally:
            await policy.aclose()

    with pytest.raises(PolicyError, match="HTTP 500"):
        asyncio.run(go())
    assert len(server.requests) == 3

    async def unreachable() -> None:
        policy = OpenAIPolicy("http://127.0.0.1:9/v1", "m1", backoff_s=0.001, max_retries=1)
        try:
            await policy.check()
        finally:
            await policy.aclose()

    with pytest.raises(PolicyError, match="cannot reach"):
        asyncio.run(unreachable())


def test_a_full_context_truncates_the_episode_with_its_own_reason(server_factory: Any) -> None:
    too_long = {"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}
    server = server_factory([(400, too_long)])
    policy = OpenAIPolicy(server.url, "m1")
    (episode,) = RolloutEngine("KeyChain-v0", policy, progress=False).run_sync(1)
    asyncio.run(policy.aclose())
    assert episode.termination_reason == "context_limit" and episode.truncated
    assert "context_length_exceeded" in (episode.error or "")


def test_openai_policy_caps_requests_in_flight(server_factory: Any) -> None:
    server = server_factory([(200, TOOL_REPLY)])
    policy = OpenAIPolicy(server.url, "m1", max_concurrency=3)
    episodes = RolloutEngine("KeyChain-v0", policy, concurrency=12, max_turns=2, progress=False).run_sync(12)
    asyncio.run(policy.aclose())
    assert len(episodes) == 12 and all(e.num_turns == 2 for e in episodes)
    assert all(e.messages[2]["role"] == "tool" for e in episodes)
    assert len(server.requests) == 24
    # the second request of an episode carries the tool result for the first call
    second = [r for r in server.requests if len(r["messages"]) == 3]
    assert second and second[0]["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_a",
        "content": second[0]["messages"][2]["content"],
    }


def test_expert_solves_every_keychain_task_and_random_does_not() -> None:
    expert = RolloutEngine("KeyChain-v0", expert_for("KeyChain-v0"), concurrency=8, progress=False).run_sync(40)
    assert all(e.success for e in expert)
    random_eps = RolloutEngine("KeyChain-v0", RandomPolicy(), concurrency=8, progress=False).run_sync(40)
    assert sum(bool(e.success) for e in random_eps) < 5
    assert any(s.error for e in random_eps for s in e.steps), "the random policy should produce malformed calls"


def test_human_policy_reads_lines_lists_tools_and_quits() -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "lookup", "description": "Read a key.", "parameters": {"properties": {"key": {}}}},
        }
    ]
    out = io.StringIO()
    human = HumanPolicy(stdin=io.StringIO("/tools\nfirst \\\nsecond\n/quit\n"), stdout=out)
    action = asyncio.run(human.act([], tools))
    assert action.text == "first \nsecond"
    assert "lookup(key): Read a key." in out.getvalue()
    with pytest.raises(PolicyError, match="quit"):
        asyncio.run(human.act([], tools))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("gpt", "unknown policy 'gpt'"),
        ("openai:localhost#m", "write openai:URL#MODEL"),
        ("hf:/no/such/dir", "no model at"),
    ],
)
def test_policy_specs_explain_mistakes(spec: str, fragment: str) -> None:
    with pytest.raises(PolicySpecError, match=fragment):
        make_policy(spec, "KeyChain-v0")


def test_openai_policy_serves_several_event_loops(server_factory: Any) -> None:
    server = server_factory([(200, TOOL_REPLY)])
    policy = OpenAIPolicy(server.url, "m1")
    for _ in range(2):  # a trainer runs the engine once per iteration, each time in a new loop
        episodes = RolloutEngine("KeyChain-v0", policy, max_turns=1, progress=False).run_sync(2)
        assert all(e.termination_reason == "max_turns" for e in episodes)
    asyncio.run(policy.aclose())
