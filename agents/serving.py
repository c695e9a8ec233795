"""An OpenAI-compatible chat server for a local transformers model (Starlette + uvicorn).

``horizongym serve MODEL_DIR --port P`` calls :func:`serve`; tests and scripts use
:func:`create_app` with :class:`ServerThread`. Endpoints:

* ``GET /v1/models``, ``GET /v1/models/{model}``: the model served and the LoRA adapters loaded
  (an adapter's card has vLLM's ``root``, its folder, and ``parent``, the base model).
* ``POST /v1/chat/completions``: OpenAI's request fields ``model`` (the base model or a loaded
  adapter), ``messages``, ``tools``, ``tool_choice`` (``"auto"`` or ``"none"``), ``temperature``,
  ``top_p``, ``max_tokens`` / ``max_completion_tokens``, ``seed``, ``n`` (1 only), ``logprobs``,
  ``stream`` (Server-Sent Events: the finished result sent as chunks) and
  ``stream_options.include_usage``. Hermes ``<tool_call>`` blocks in the generated text become
  ``message.tool_calls``. vLLM's token fields, for token-in/token-out training: with
  ``return_token_ids`` the reply carries ``prompt_token_ids`` (the rendered prompt) and each
  choice ``token_ids`` (the sampled completion; when streaming, the prompt's on the first chunk
  and the completion's on the last); with ``return_tokens_as_token_ids`` each ``logprobs`` entry
  names its token as ``"token_id:N"``.
* vLLM's dynamic LoRA API: ``POST /v1/load_lora_adapter`` ``{"lora_name", "lora_path"}`` reads a
  ``peft`` adapter folder into the model under that name, ``POST /v1/unload_lora_adapter``
  ``{"lora_name"}`` drops it (:mod:`horizongym.agents.lora`). Both answer 200 with vLLM's plain
  text (``Success: LoRA adapter 'NAME' added successfully.``); errors as vLLM gives them: 400
  ``InvalidUserInput`` for a missing field or a name loaded twice, 404 ``NotFoundError`` for no
  adapter at the path or an unknown name, 400 ``BadRequestError`` for an adapter that does not fit
  the model. Requests name a loaded adapter as their ``model``.
* ``GET /health``.

Errors have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``: 400 for an
invalid request, 404 for an unknown model or path (the LoRA endpoints put the status in ``code``,
as vLLM does).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import pydantic
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from horizongym.agents.hf import BASE_ADAPTER, ContextLengthExceeded, TransformersPolicy
from horizongym.agents.lora import AdapterError, LoraAdapters
from horizongym.serverthread import ServerThread as _ServerThread
from horizongym.tools import parse_action


class _Function(pydantic.BaseModel):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = pydantic.Field(default_factory=dict)
    strict: bool | None = None


class _ToolSpec(pydantic.BaseModel):
    type: Literal["function"] = "function"
    function: _Function


class _CallFunction(pydantic.BaseModel):
    name: str
    arguments: str | dict[str, Any] = "{}"


class _Call(pydantic.BaseModel):
    id: str | None = None
    type: Literal["function"] = "function"
    function: _CallFunction


class _ChatMessage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[_Call] | None = None
    tool_call_id: str | None = None


class _StreamOptions(pydantic.BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(pydantic.BaseModel):
    """The fields of OpenAI's chat-completions request this server honours (others are ignored)."""

    model_config = pydantic.ConfigDict(extra="ignore")

    model: str
    messages: list[_ChatMessage] = pydantic.Field(min_length=1)
    tools: list[_ToolSpec] | None = None
    tool_choice: Literal["auto", "none"] | None = None
    temperature: float | None = pydantic.Field(default=None, ge=0, le=2)
    top_p: float | None = pydantic.Field(default=None, gt=0, le=1)
    max_tokens: int | None = pydantic.Field(default=None, ge=1)
    max_completion_tokens: int | None = pydantic.Field(default=None, ge=1)
    seed: int | None = None
    n: Literal[1] | None = None
    stream: bool | None = False
    stream_options: _StreamOptions | None = None
    logprobs: bool | None = False
    top_logprobs: Literal[0] | None = None
    return_token_ids: bool | None = None
    """vLLM's: answer ``prompt_token_ids`` and each choice's ``token_ids``."""
    return_tokens_as_token_ids: bool | None = None
    """vLLM's: name each ``logprobs`` entry's token as ``"token_id:N"``."""

    @pydantic.model_validator(mode="after")
    def _check_messages(self) -> ChatCompletionRequest:
        for message in self.messages:
            if message.role == "tool" and message.content is None:
                raise ValueError("a 'tool' message needs 'content'")
            if message.role in ("system", "developer", "user") and message.content is None:
                raise ValueError(f"a '{message.role}' message needs 'content'")
        return self


class APIError(Exception):
    """An error answered in OpenAI's JSON shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


def _validation_error(exc: pydantic.ValidationError) -> APIError:
    location = ".".join(str(part) for part in exc.errors()[0]["loc"])
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
    return APIError(400, f"Invalid request: {problems}", param=location or None, code="invalid_value")


def _tool_calls(text: str) -> tuple[str | None, list[dict[str, Any]]]:
    """Split generated text into the content outside ``<tool_call>`` blocks and OpenAI tool calls."""
    parsed = parse_action(text)
    if not parsed.calls or parsed.errors:  # a malformed block stays visible to the client, never dropped
        return text, []
    calls = [
        {
            "id": f"call_{secrets.token_hex(12)}",
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
        }
        for call in parsed.calls
    ]
    return parsed.text or None, calls


class ChatServer:
    """The request handlers, bound to one policy and one model name (and the adapters loaded on it)."""

    def __init__(self, policy: TransformersPolicy, model_name: str, *, own_policy: bool = False) -> None:
        self.policy, self.model_name, self.own_policy = policy, model_name, own_policy
        self.created = int(time.time())
        self.adapters = LoraAdapters(policy)
        self.completions: Counter[str] = Counter()
        """Completions answered per model name (the base model's or an adapter's): for tests and monitoring."""
        self._adapter_changes = asyncio.Lock()

    def model_card(self, name: str | None = None) -> dict[str, Any]:
        """The ``/v1/models`` card of the base model, or of the loaded adapter ``name``."""
        if name is None or name == self.model_name:
            return {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "horizongym"}
        adapter = self.adapters.loaded[name]
        return {
            "id": name,
            "object": "model",
            "created": adapter.created,
            "owned_by": "horizongym",
            "root": adapter.path,
            "parent": self.model_name,
        }

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.model_name})

    async def list_models(self, request: Request) -> Response:
        cards = [self.model_card(), *(self.model_card(name) for name in self.adapters.loaded)]
        return JSONResponse({"object": "list", "data": cards})

    async def get_model(self, request: Request) -> Response:
        name = request.path_params["model"]
        if name != self.model_name and name not in self.adapters:
            raise self._unknown_model(name)
        return JSONResponse(self.model_card(name))

    def _unknown_model(self, name: str) -> APIError:
        served = ", ".join(repr(n) for n in [self.model_name, *self.adapters.loaded])
        return APIError(
            404,
            f"The model '{name}' does not exist; this server serves {served}.",
            param="model",
            code="model_not_found",
        )

    # ----- vLLM's dynamic LoRA API -------------------------------------------------------
    async def load_lora_adapter(self, request: Request) -> Response:
        body = await _json_object(request)
        name, path = body.get("lora_name"), body.get("lora_path")
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            raise _lora_error(400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput")
        if name == self.model_name:
            raise _lora_error(400, f"'{name}' is the base model's name; give the adapter another.", "InvalidUserInput")
        async with self._adapter_changes:
            try:
                await asyncio.to_thread(self.adapters.load, name, path)
            except AdapterError as exc:
                raise _lora_error(exc.status, str(exc), exc.kind) from None
        return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.")

    async def unload_lora_adapter(self, request: Request) -> Response:
        body = await _json_object(request)
        name = body.get("lora_name")
        if not isinstance(name, str) or not name:
            raise _lora_error(400, "'lora_name' needs to be provided to unload a LoRA adapter.", "InvalidUserInput")
        async with self._adapter_changes:
            try:
                await asyncio.to_thread(self.adapters.unload, name)
            except AdapterError as exc:
                raise _lora_error(exc.status, str(exc), exc.kind) from None
        return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")

    async def chat_completions(self, request: Request) -> Response:
        body = await _json_object(request)
        try:
            req = ChatCompletionRequest.model_validate(body)
        except pydantic.ValidationError as exc:
            raise _validation_error(exc) from None
        if req.model != self.model_name and req.model not in self.adapters:
            raise self._unknown_model(req.model)
        result = await self._complete(req)
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(
                _sse(_chunks(result, include_usage)),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        return JSONResponse(result)

    async def _complete(self, req: ChatCompletionRequest) -> dict[str, Any]:
        messages = [m.model_dump(exclude_none=True) for m in req.messages]
        use_tools = bool(req.tools) and req.tool_choice != "none"
        tools = [t.model_dump(exclude_none=True) for t in req.tools or []] if use_tools else []
        try:
            prompt_ids = self.policy.encode(messages, tools)
        except Exception as exc:  # a template that rejects the conversation
            raise APIError(400, f"The messages cannot be rendered with the chat template: {exc}") from None
        max_tokens = req.max_completion_tokens or req.max_tokens
        room = self.policy.context_length - len(prompt_ids)
        if room < 1 or (max_tokens is not None and max_tokens > room):
            raise APIError(
                400,
                f"This model's context holds {self.policy.context_length} tokens; the messages take "
                f"{len(prompt_ids)} and max_tokens asks for {max_tokens or 1} more.",
                param="messages",
                code="context_length_exceeded",
            )
        if req.model in self.adapters:
            adapter: str | None = req.model
        else:  # the base model: its own weights, whether or not adapters are loaded beside it
            adapter = BASE_ADAPTER if self.adapters.loaded else None
        try:
            generation = await self.policy.generate(
                prompt_ids,
                seed=req.seed,
                max_new_tokens=max_tokens or min(self.policy.max_new_tokens, room),
                temperature=req.temperature,
                top_p=req.top_p,
                adapter=adapter,
            )
        except ContextLengthExceeded as exc:
            raise APIError(400, str(exc), param="messages", code="context_length_exceeded") from None
        tokenizer = self.policy.tokenizer
        self.policy.remember(messages, tools, prompt_ids, generation.token_ids)
        text = tokenizer.decode(generation.token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        content, calls = _tool_calls(text) if use_tools else (text, [])
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        finish_reason = "tool_calls" if calls else generation.finish_reason
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "finish_reason": finish_reason,
            "logprobs": None,
        }
        if req.logprobs:
            entries = _token_logprobs(
                tokenizer, generation.token_ids, generation.logprobs, as_ids=bool(req.return_tokens_as_token_ids)
            )
            choice["logprobs"] = {"content": entries}
        if req.return_token_ids:
            choice["token_ids"] = generation.token_ids
        self.completions[req.model] += 1
        prompt_tokens, completion_tokens = len(prompt_ids), len(generation.token_ids)
        result: dict[str, Any] = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": None,
        }
        if req.return_token_ids:
            result["prompt_token_ids"] = prompt_ids
        return result


async def _json_object(request: Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object (400 otherwise)."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.", code="invalid_json")
    return body


def _lora_error(status: int, message: str, kind: str) -> APIError:
    """An error of the LoRA endpoints in vLLM's shape: its error type, the HTTP status as ``code``."""
    return APIError(status, message, type=kind, code=status)


def _token_logprobs(
    tokenizer: Any, token_ids: list[int], logprobs: list[float], *, as_ids: bool = False
) -> list[dict[str, Any]]:
    """OpenAI's per-token log-prob entries (``top_logprobs`` is always empty); ``as_ids``: vLLM's
    ``"token_id:N"`` names."""
    entries = []
    for token_id, logprob in zip(token_ids, logprobs, strict=True):
        token = f"token_id:{token_id}" if as_ids else tokenizer.decode([token_id])
        entries.append({"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8")), "top_logprobs": []})
    return entries


def _chunks(result: dict[str, Any], include_usage: bool) -> Iterator[dict[str, Any]]:
    """A finished completion as ``chat.completion.chunk`` objects, in the order OpenAI sends them."""
    head = {key: result[key] for key in ("id", "created", "model", "system_fingerprint")}
    head["object"] = "chat.completion.chunk"
    choice = result["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None) -> dict[str, Any]:
        return {
            **head,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": logprobs}],
        }

    first = chunk({"role": "assistant", "content": ""})
    if "prompt_token_ids" in result:
        first["prompt_token_ids"] = result["prompt_token_ids"]
    yield first
    if message.get("content"):
        yield chunk({"content": message["content"]}, logprobs=choice["logprobs"])
    for index, call in enumerate(message.get("tool_calls", [])):
        yield chunk({"tool_calls": [{"index": index, **call}]})
    last = chunk({}, finish_reason=choice["finish_reason"])
    if "token_ids" in choice:
        last["choices"][0]["token_ids"] = choice["token_ids"]
    yield last
    if include_usage:
        yield {**head, "choices": [], "usage": result["usage"]}


async def _sse(chunks: Iterator[dict[str, Any]]) -> AsyncIterator[str]:
    for item in chunks:
        yield f"data: {json.dumps(item, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return APIError(exc.status_code, message, code=code).response()


async def _server_error(request: Request, exc: Exception) -> Response:
    return APIError(500, f"The server failed: {exc!r}", type="server_error", code="internal_error").response()


def create_app(
    policy_or_model_dir: TransformersPolicy | str | Path,
    model_name: str | None = None,
    *,
    max_batch_size: int = 8,
    max_new_tokens: int = 1024,
) -> Starlette:
    """The Starlette app serving a policy (or the model in a folder, loaded here) as ``model_name``.

    ``model_name`` defaults to the folder's name. A policy built here is closed when the app
    shuts down; a policy passed in belongs to the caller.
    """
    if isinstance(policy_or_model_dir, TransformersPolicy):
        policy, own = policy_or_model_dir, False
        if model_name is None and policy.gguf_file:
            model_name = Path(policy.gguf_file).stem
        elif model_name is None:
            model_name = policy.model_path.name if policy.model_path else "local-model"
    else:
        path = Path(policy_or_model_dir)
        policy = TransformersPolicy(path, max_batch_size=max_batch_size, max_new_tokens=max_new_tokens)
        own, model_name = True, model_name or path.resolve().name
    server = ChatServer(policy, model_name, own_policy=own)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if server.own_policy:
            await server.policy.aclose()

    app = Starlette(
        routes=[
            Route("/health", server.health, methods=["GET"]),
            Route("/v1/models", server.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", server.get_model, methods=["GET"]),
            Route("/v1/chat/completions", server.chat_completions, methods=["POST"]),
            Route("/v1/load_lora_adapter", server.load_lora_adapter, methods=["POST"]),
            Route("/v1/unload_lora_adapter", server.unload_lora_adapter, methods=["POST"]),
        ],
        exception_handlers={APIError: _api_error, HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.server = server
    return app


def serve(
    model_dir: str | TransformersPolicy,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    model_name: str | None = None,
    max_batch_size: int = 8,
    max_new_tokens: int = 1024,
    log_level: str = "info",
) -> None:
    """Serve the model in ``model_dir`` (or a policy) until interrupted (``horizongym serve MODEL_DIR --port P``)."""
    import uvicorn

    app = create_app(model_dir, model_name, max_batch_size=max_batch_size, max_new_tokens=max_new_tokens)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


class ServerThread(_ServerThread):
    """Run an app with uvicorn in a background thread (see :class:`horizongym.serverthread.ServerThread`).

    Use as a context manager: ``with ServerThread(app) as server: ... server.base_url``.
    """

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://HOST:PORT/v1``."""
        return f"{self.url}/v1"


__all__ = ["APIError", "ChatCompletionRequest", "ServerThread", "create_app", "serve"]
