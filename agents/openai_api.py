"""A policy that asks any OpenAI-compatible chat-completions server for each action.

Whose failure: a server that cannot be reached, drops the connection, keeps answering 429/5xx
past the retries, or answers something that is not JSON raises
:class:`~horizongym.agents.base.PolicyUnavailable` (an infrastructure failure the rollout engine
retries on a fresh env, never trained on); a request the server refuses (4xx: a wrong model
name, a bad key) or a reply without a choice is a :class:`~horizongym.agents.base.PolicyError`.

Token in, token out through a server: with ``return_token_ids`` the policy asks for vLLM's
``logprobs`` and ``return_token_ids`` and keeps the prompt's and the completion's token ids and
the completion's log-probs on each :class:`~horizongym.agents.base.Action` (``horizongym serve``
and vLLM answer them), so a trainer can learn from what the server sampled. A trainer that
publishes new LoRA adapters switches the policy to each with :meth:`OpenAIPolicy.use_model`;
every action records the ``policy_version`` its request named.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx

from horizongym.agents.base import Action, ContextLengthExceeded, Message, Policy, PolicyError, PolicyUnavailable
from horizongym.tools import ToolCall, parse_openai_tool_calls

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIPolicy(Policy):
    """``POST {base_url}/chat/completions`` through a pooled async ``httpx`` client.

    Retries 429/5xx and connection failures with exponential backoff and jitter (honouring
    ``Retry-After``), caps requests in flight at ``max_concurrency``, passes the tools as
    OpenAI tool schemas, and reads both ``tool_calls`` and plain text from the reply.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 1.0,
        max_tokens: int | None = None,
        max_concurrency: int = 32,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 120.0,
        extra_body: dict[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        return_token_ids: bool = False,
        policy_version: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{self.base_url}#{model}"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.extra_body = extra_body or {}
        self.return_token_ids = return_token_ids
        self.policy_version = policy_version
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(timeout_s, connect=10.0)
        self._max_concurrency, self._transport = max_concurrency, transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client_of_loop: httpx.AsyncClient | None = None
        self._slots_of_loop: asyncio.Semaphore | None = None
        self.requests_sent = 0

    def _connection(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """The client and the concurrency cap of the running event loop (each ``asyncio.run`` has its own)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._client_of_loop is None or self._slots_of_loop is None:
            limits = httpx.Limits(
                max_connections=self._max_concurrency, max_keepalive_connections=self._max_concurrency
            )
            self._client_of_loop = httpx.AsyncClient(
                headers=self._headers, timeout=self._timeout, limits=limits, transport=self._transport
            )
            self._slots_of_loop = asyncio.Semaphore(self._max_concurrency)
            self._loop = loop
        return self._client_of_loop, self._slots_of_loop

    async def check(self) -> list[str]:
        """Ask ``/models``; return the served model ids, or raise :class:`PolicyError` saying why not."""
        try:
            response = await self._connection()[0].get(f"{self.base_url}/models")
        except httpx.HTTPError as exc:
            raise PolicyUnavailable(f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise PolicyError(f"{self.base_url}/models answered HTTP {response.status_code}: {response.text[:200]}")
        listing = _json_of(response, f"{self.base_url}/models")
        data = listing.get("data", []) if isinstance(listing, dict) else []
        return [str(item.get("id")) for item in data if isinstance(item, dict)]

    def use_model(self, model: str, policy_version: int | None = None) -> None:
        """Send the next requests to ``model`` (e.g. a newly loaded LoRA adapter), recording ``policy_version``."""
        self.model, self.policy_version = model, policy_version
        self.name = f"openai:{self.base_url}#{model}"

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        model, version = self.model, self.policy_version  # as this request names them, whatever switches meanwhile
        body: dict[str, Any] = {"model": model, "messages": messages, "temperature": self.temperature}
        if tools:
            body["tools"] = tools
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if seed is not None:
            body["seed"] = seed
        if self.return_token_ids:
            body["logprobs"] = True
            body["return_token_ids"] = True
        body.update(self.extra_body)
        reply = await self._post(body)
        try:
            choice = reply["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise PolicyError(f"unexpected reply from {self.base_url}: {json.dumps(reply)[:300]}") from exc
        prompt_ids, token_ids, logprobs = self._tokens(reply, choice) if self.return_token_ids else (None, None, None)
        parsed = parse_openai_tool_calls(message)
        calls = [ToolCall(c.name, c.arguments, c.id) for c in parsed.calls]
        if parsed.errors:  # a server-side call we cannot read: hand its raw form to the env to report
            raw = json.dumps(message.get("tool_calls"), ensure_ascii=False)
            text, calls = (parsed.text + "\n" + raw).strip(), []
        else:
            text = parsed.text
        return Action(
            text=text,
            tool_calls=calls,
            prompt_token_ids=prompt_ids,
            token_ids=token_ids,
            logprobs=logprobs,
            finish_reason=choice.get("finish_reason"),
            policy_version=version,
        )

    def _tokens(self, reply: dict[str, Any], choice: dict[str, Any]) -> tuple[list[int], list[int], list[float]]:
        """The prompt ids, completion ids and completion log-probs of a reply to ``return_token_ids``."""
        prompt_ids, token_ids = reply.get("prompt_token_ids"), choice.get("token_ids")
        entries = (choice.get("logprobs") or {}).get("content")
        if not isinstance(prompt_ids, list) or not isinstance(token_ids, list) or not isinstance(entries, list):
            raise PolicyError(
                f"{self.base_url} answered without prompt_token_ids, token_ids or logprobs: it must support "
                "vLLM's return_token_ids (horizongym serve, vLLM >= 0.10.2) for training through a server"
            )
        try:
            logprobs = [float(entry["logprob"]) for entry in entries]
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyError(f"{self.base_url} answered logprobs entries without a number: {exc!r}") from exc
        if len(logprobs) != len(token_ids):
            raise PolicyError(f"{self.base_url} answered {len(logprobs)} log-probs for {len(token_ids)} tokens")
        return [int(i) for i in prompt_ids], [int(i) for i in token_ids], logprobs

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/chat/completions"
        client, slots = self._connection()
        async with slots:
            for attempt in range(self.max_retries + 1):
                last = attempt == self.max_retries
                try:
                    self.requests_sent += 1
                    response = await client.post(url, json=body)
                except (httpx.TransportError, httpx.TimeoutException) as exc:
                    if last:
                        raise PolicyUnavailable(f"cannot reach {url}: {type(exc).__name__}: {exc}") from exc
                    await asyncio.sleep(self._delay(attempt, None))
                    continue
                if response.status_code in RETRY_STATUS and not last:
                    await asyncio.sleep(self._delay(attempt, response.headers.get("retry-after")))
                    continue
                if response.status_code >= 400:
                    message = f"{url} answered HTTP {response.status_code}: {response.text[:300]}"
                    if "context_length_exceeded" in response.text:
                        raise ContextLengthExceeded(message)
                    if response.status_code in RETRY_STATUS or response.status_code >= 500:
                        raise PolicyUnavailable(f"{message} (after {attempt + 1} tries)")
                    raise PolicyError(message)
                result = _json_of(response, url)
                if not isinstance(result, dict):
                    raise PolicyError(f"unexpected reply from {url}: {json.dumps(result)[:300]}")
                return result
        raise PolicyError(f"no answer from {url}")  # unreachable: the loop returns or raises

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), 60.0)
            except ValueError:
                pass
        return self.backoff_s * (2**attempt) * (0.5 + random.random())

    async def aclose(self) -> None:
        if self._client_of_loop is not None and self._loop is asyncio.get_running_loop():
            await self._client_of_loop.aclose()
        self._client_of_loop = self._slots_of_loop = self._loop = None


def _json_of(response: httpx.Response, url: str) -> Any:
    """The JSON body of a successful answer; :class:`PolicyUnavailable` when it is not JSON (a broken
    server or proxy, a cut-off body: not the model's doing)."""
    try:
        return response.json()
    except ValueError as exc:
        raise PolicyUnavailable(
            f"{url} answered HTTP {response.status_code} with a body that is not JSON: {response.text[:200]!r}"
        ) from exc
