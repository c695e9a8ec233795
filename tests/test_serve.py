"""The OpenAI-compatible server, end to end: real uvicorn, real tiny model, the official client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from horizongym.agents.openai_api import OpenAIPolicy
from horizongym.agents.serving import ServerThread, create_app

MODEL = "tiny-keychain"


@pytest.fixture(scope="module")
def server(trained_model_dir: Path) -> Iterator[ServerThread]:
    app = create_app(trained_model_dir, MODEL, max_new_tokens=120)
    with ServerThread(app) as running:
        yield running


@pytest.fixture()
def client(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=60)


def test_models_and_health(client: openai.OpenAI, server: ServerThread) -> None:
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    health = httpx.get(f"http://{server.host}:{server.port}/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_tool_call_then_tool_result(client: openai.OpenAI, keychain_dialogue: dict[str, Any]) -> None:
    d = keychain_dialogue
    first = client.chat.completions.create(
        model=MODEL, messages=d["first"], tools=d["tools"], tool_choice="auto", temperature=0, seed=1
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"key": "amber"}
    assert first.usage is not None and first.usage.completion_tokens > 0
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens

    # Send the assistant's call back as the official client reports it, plus the tool's result.
    messages = [
        *d["first"],
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "amber = 4821"},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=d["tools"], temperature=0)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == d["second_completion"]
    assert not second.choices[0].message.tool_calls


def test_streaming_and_logprobs(client: openai.OpenAI, keychain_dialogue: dict[str, Any]) -> None:
    d = keychain_dialogue
    stream = client.chat.completions.create(
        model=MODEL,
        messages=d["first"],
        tools=d["tools"],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["tool_calls"]
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    functions = [tc.function for tc in deltas if tc.function is not None]
    assert [(f.name, json.loads(f.arguments or "")) for f in functions] == [("lookup", {"key": "amber"})]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    plain = client.chat.completions.create(
        model=MODEL, messages=d["second"], tools=d["tools"], temperature=0, logprobs=True, max_tokens=5
    )
    choice = plain.choices[0]
    assert choice.finish_reason == "length" and choice.message.content == d["second_completion"][:5]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    assert len(choice.logprobs.content) == 5 and all(t.logprob <= 0 for t in choice.logprobs.content)


def test_tool_choice_none_returns_text(client: openai.OpenAI, keychain_dialogue: dict[str, Any]) -> None:
    d = keychain_dialogue
    reply = client.chat.completions.create(
        model=MODEL, messages=d["first"], tools=d["tools"], tool_choice="none", temperature=0, max_tokens=8
    )
    assert not reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_errors_have_openai_shape(client: openai.OpenAI, server: ServerThread) -> None:
    messages: list[Any] = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-nope", messages=messages)
    assert unknown.value.body is not None and "gpt-nope" in unknown.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=messages, temperature=5)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=messages, n=2)
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10_000)
    assert too_long.value.code == "context_length_exceeded"

    raw = httpx.post(f"{server.base_url}/chat/completions", content=b"{not json")
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param", "code"}
    raw = httpx.post(f"{server.base_url}/chat/completions", json={"model": MODEL, "messages": [{"role": "x"}]})
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{server.base_url}/nowhere").json()["error"]["code"] == "not_found"


def test_concurrent_requests_are_batched_for_the_http_policy(
    server: ServerThread, keychain_dialogue: dict[str, Any]
) -> None:
    d = keychain_dialogue
    local = server.app.state.server.policy
    before = sum(size * count for size, count in local.batch_size_counts.items())

    async def run() -> list[Any]:
        remote = OpenAIPolicy(server.base_url, MODEL, temperature=0.0, max_tokens=100, max_retries=0)
        try:
            return list(await asyncio.gather(*(remote.act(d["first"], d["tools"]) for _ in range(4))))
        finally:
            await remote.aclose()

    actions = asyncio.run(run())
    for action in actions:
        assert [(c.name, c.arguments) for c in action.tool_calls] == [("lookup", {"key": "amber"})]
        assert action.finish_reason == "tool_calls" and action.text == ""
    assert sum(size * count for size, count in local.batch_size_counts.items()) == before + 4
    assert max(local.batch_size_counts) > 1
