"""MCP's JSON-RPC 2.0 shapes for the env server: requests, answers, tools, and a tool call's result.

The env server speaks MCP (``initialize``, ``tools/list``, ``tools/call``) over ``POST /mcp`` and
the WebSocket ``mcp`` message (OpenEnv's ``WSMCPMessage``). An env's tools are listed with the
schemas derived from their Python signatures (MCP's ``name``, ``description``, ``inputSchema``);
a ``tools/call`` is that one call rendered as a Hermes ``<tool_call>`` action and stepped through
the env, so rewards and turn limits count as for any action. Its result carries the observation
as text content and the step's reward, ``terminated``, ``truncated`` and ``info`` in ``_meta``.

Errors use JSON-RPC's codes: :data:`PARSE_ERROR` (the body is not JSON), :data:`INVALID_REQUEST`
(not a JSON-RPC 2.0 request), :data:`METHOD_NOT_FOUND`, :data:`INVALID_PARAMS` (an unknown tool,
arguments that are not an object, a missing or unknown session); :data:`SERVER_ERROR` carries the
session's own error code in ``data.code`` (``EPISODE_NOT_STARTED``, ``CAPACITY_REACHED``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from horizongym.envs.contract import ERROR, TERMINATION_REASON, TOOL_RESULTS
from horizongym.tools import ToolCall
from horizongym.tools.parser import render_tool_calls

PROTOCOL_VERSION: Final = "2025-06-18"
"""The MCP revision whose shapes the server answers with."""

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
SERVER_ERROR: Final = -32000

METHODS: Final = ("initialize", "ping", "tools/list", "tools/call", "openenv/session/create", "openenv/session/close")


class RpcError(Exception):
    """A JSON-RPC error answer: its code, message and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


@dataclass(frozen=True)
class RpcRequest:
    """A checked JSON-RPC 2.0 request. ``notification``: it has no ``id`` and gets no answer."""

    id: str | int | None
    method: str
    params: dict[str, Any]
    notification: bool


def parse_request(message: Any) -> RpcRequest:
    """``message`` (decoded JSON) as a request; :class:`RpcError` ``INVALID_REQUEST`` or ``INVALID_PARAMS``."""
    if not isinstance(message, Mapping):
        raise RpcError(INVALID_REQUEST, "a JSON-RPC request is one JSON object (batches are not served)")
    request_id = message.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, str | int)):
        raise RpcError(INVALID_REQUEST, "'id' must be a string, a whole number or null")
    if message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, "'jsonrpc' must be \"2.0\"", {"id": request_id})
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise RpcError(INVALID_REQUEST, "'method' must be a non-empty string", {"id": request_id})
    params = message.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise RpcError(INVALID_PARAMS, "'params' must be an object", {"id": request_id})
    return RpcRequest(request_id, method, dict(params), "id" not in message)


def result_message(request_id: str | int | None, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_message(request_id: str | int | None, error: RpcError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def request_id_of(message: Any) -> str | int | None:
    """The ``id`` of a request that failed its checks, when it has a usable one (else null)."""
    request_id = message.get("id") if isinstance(message, Mapping) else None
    return request_id if isinstance(request_id, str | int) and not isinstance(request_id, bool) else None


def initialize_result(name: str, version: str, instructions: str) -> dict[str, Any]:
    """The answer to ``initialize``: the protocol revision, the tools capability, who serves."""
    return {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": name, "version": version},
        "instructions": instructions,
    }


def mcp_tools(schemas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI function schemas (``info["tools"]``) as MCP tools: ``name``, ``description``, ``inputSchema``."""
    tools = []
    for schema in schemas:
        function = schema.get("function", schema)
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        tools.append(
            {"name": function["name"], "description": function.get("description") or "", "inputSchema": parameters}
        )
    return tools


def tool_call_action(params: Mapping[str, Any], schemas: list[dict[str, Any]]) -> str:
    """The text action of a ``tools/call``: the one call as a Hermes ``<tool_call>`` block.

    :class:`RpcError` ``INVALID_PARAMS`` for a missing or unknown tool name or arguments that are not an object.
    """
    name = params.get("name")
    known = [tool["name"] for tool in mcp_tools(schemas)]
    if not isinstance(name, str) or not name:
        raise RpcError(INVALID_PARAMS, f"tools/call needs params.name, one of: {', '.join(known) or '(none)'}")
    if name not in known:
        raise RpcError(INVALID_PARAMS, f"unknown tool {name!r}; the tools are: {', '.join(known) or '(none)'}")
    arguments = params.get("arguments", {})
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise RpcError(INVALID_PARAMS, "tools/call params.arguments must be an object")
    return render_tool_calls([ToolCall(name, dict(arguments))])


def call_result(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A step's observation payload as a ``tools/call`` result.

    ``isError`` is true when the call failed (bad arguments, a tool error: ``info["error"]``) or
    the env failed (``env_error`` / ``infra_error``).
    """
    observation = payload["observation"]
    info = observation.get("info") or {}
    failed = bool(info.get(ERROR)) or any(r.get("error") for r in info.get(TOOL_RESULTS) or [])
    failed = failed or info.get(TERMINATION_REASON) in ("env_error", "infra_error")
    return {
        "content": [{"type": "text", "text": observation["text"]}],
        "isError": failed,
        "_meta": {
            "reward": payload.get("reward"),
            "terminated": observation["terminated"],
            "truncated": observation["truncated"],
            "info": info,
        },
    }


__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHODS",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "PROTOCOL_VERSION",
    "SERVER_ERROR",
    "RpcError",
    "RpcRequest",
    "call_result",
    "error_message",
    "initialize_result",
    "mcp_tools",
    "parse_request",
    "request_id_of",
    "result_message",
    "tool_call_action",
]
