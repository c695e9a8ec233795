"""An HTTP policy whose server fails is an infrastructure failure, not the policy's doing: a real
loopback server that answers 503, drops connections or answers what is not JSON makes
:class:`~horizongym.agents.base.PolicyUnavailable` (retryable); the rollout engine plays the
episode again, and records it as ``infra_error`` when every try failed. A request the server
refuses stays a :class:`~horizongym.agents.base.PolicyError`."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from horizongym.agents import PolicyError
from horizongym.agents.base import PolicyUnavailable
from horizongym.agents.openai_api import OpenAIPolicy
from horizongym.failures import infrastructure_cause
from horizongym.training.rollouts import RolloutEngine

ANSWER = {
    "id": "x",
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c0", "type": "function", "function": {"name": "answer", "arguments": '{"value": "0"}'}}
                ],
            },
        }
    ],
}


class FailingServer:
    """A real HTTP server on loopback: the first ``failures`` chat requests fail as ``how`` says
    (``503``, ``close``: the connection dropped without an answer, ``garbage``: a 200 that is not
    JSON, ``404``), the rest get :data:`ANSWER`."""

    def __init__(self, how: str, failures: int = 1_000_000) -> None:
        self.how, self.failures, self.requests = how, failures, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests += 1
                if owner.requests > owner.failures:
                    self._reply(200, json.dumps(ANSWER).encode())
                elif owner.how == "close":
                    self.close_connection = True  # hang up without a word
                elif owner.how == "garbage":
                    self._reply(200, b"<html>502 from a proxy</html>")
                else:
                    self._reply(int(owner.how), b'{"error": {"message": "no"}}')

            def _reply(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Any]:
    made: list[FailingServer] = []

    def make(how: str, failures: int = 1_000_000) -> FailingServer:
        made.append(FailingServer(how, failures))
        return made[-1]

    yield make
    for one in made:
        one.close()


def policy_of(server: FailingServer, retries: int = 2) -> OpenAIPolicy:
    return OpenAIPolicy(server.url, "m1", backoff_s=0.001, max_retries=retries)


def act_once(policy: OpenAIPolicy) -> None:
    async def go() -> None:
        try:
            await policy.act([{"role": "user", "content": "hi"}], [])
        finally:
            await policy.aclose()

    asyncio.run(go())


@pytest.mark.parametrize(("how", "words"), [("503", "HTTP 503"), ("close", "cannot reach"), ("garbage", "not JSON")])
def test_a_failing_server_is_a_retryable_infrastructure_failure(server: Any, how: str, words: str) -> None:
    failing = server(how)
    with pytest.raises(PolicyUnavailable, match=words) as raised:
        act_once(policy_of(failing, retries=2))
    cause = infrastructure_cause(raised.value)
    assert cause is not None and cause.retryable
    assert failing.requests == (3 if how != "garbage" else 1)  # retried at the HTTP level first (not a 200)


def test_a_refused_request_is_the_policys_failure(server: Any) -> None:
    refusing = server("404")
    with pytest.raises(PolicyError, match="HTTP 404") as raised:
        act_once(policy_of(refusing))
    assert infrastructure_cause(raised.value) is None and refusing.requests == 1


def test_the_engine_plays_an_episode_again_after_a_lost_server(server: Any) -> None:
    flaky = server("close", failures=2)  # the first try's two requests fail, then the server is back
    with RolloutEngine("KeyChain-v0", policy_of(flaky, retries=1), concurrency=1, progress=False) as engine:
        (episode,) = engine.run_sync(1)
    assert episode.outcome == "completed" and episode.terminated and episode.trainable
    (failed,) = episode.attempts
    assert failed.termination_reason == "infra_error" and failed.turns == 0
    assert failed.error is not None and "PolicyUnavailable" in failed.error
    assert flaky.requests == 3


def test_a_server_that_never_answers_gives_an_unscored_infra_error(server: Any) -> None:
    down = server("503")
    with RolloutEngine("KeyChain-v0", policy_of(down, retries=1), concurrency=1, progress=False, max_attempts=2) as e:
        (episode,) = e.run_sync(1)
    assert episode.outcome == "infra_error" and episode.retryable and not episode.trainable
    assert episode.termination_reason == "infra_error" and episode.total_reward == 0.0
    assert episode.error is not None and episode.error.startswith("policy: PolicyUnavailable")
    assert len(episode.attempts) == 1 and down.requests == 4
