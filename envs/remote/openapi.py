"""The env server's OpenAPI document (``GET /openapi.json``): its HTTP endpoints and their bodies.

OpenEnv's validator (``openenv validate URL``) reads ``info.version`` and the paths: a server that
has ``/reset`` runs in OpenEnv's *simulation* mode and must have ``/step`` and ``/state`` too.
The request and answer bodies are the JSON schemas of :mod:`horizongym.envs.remote.protocol`.
"""

from __future__ import annotations

from typing import Any

import horizongym
from horizongym.envs.remote.protocol import ResetData, SessionState, TextAction, TextObservation

_SESSION_ID = {"type": "string", "description": 'the session a POST /reset with "session": true answered'}
_OBSERVATION_ANSWER = {
    "type": "object",
    "properties": {
        "observation": {"$ref": "#/components/schemas/TextObservation"},
        "reward": {"type": ["number", "null"]},
        "done": {"type": "boolean"},
        "session_id": _SESSION_ID,
    },
    "required": ["observation", "done"],
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(summary: str, answer: dict[str, Any], body: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "OK", **_json(answer)}}}
    if body is not None:
        operation["requestBody"] = {"required": False, **_json(body)}
    return operation


def openapi_document(env_id: str, description: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a server of ``env_id``."""
    reset_body = {
        "allOf": [{"$ref": "#/components/schemas/ResetData"}],
        "properties": {"session": {"type": "boolean"}, "session_id": _SESSION_ID},
    }
    step_body = {
        "type": "object",
        "properties": {"action": {"$ref": "#/components/schemas/TextAction"}, "session_id": _SESSION_ID},
        "required": ["action", "session_id"],
    }
    anything = {"type": "object"}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"horizongym/{env_id}", "description": description, "version": horizongym.__version__},
        "paths": {
            "/reset": {
                "post": _operation("Start an episode (stateless, or in a session)", _OBSERVATION_ANSWER, reset_body)
            },
            "/step": {"post": _operation("Step the session's env with one action", _OBSERVATION_ANSWER, step_body)},
            "/state": {"get": _operation("The session's state", {"$ref": "#/components/schemas/SessionState"})},
            "/close": {
                "post": _operation("Close a session and its env", anything, {"properties": {"session_id": _SESSION_ID}})
            },
            "/schema": {"get": _operation("JSON schemas of action, observation and state", anything)},
            "/metadata": {"get": _operation("The env's id, description and version", anything)},
            "/health": {"get": _operation("Health, active and maximum sessions", anything)},
            "/mcp": {"post": _operation("MCP JSON-RPC 2.0: initialize, tools/list, tools/call", anything, anything)},
        },
        "components": {
            "schemas": {
                model.__name__: model.model_json_schema()
                for model in (ResetData, TextAction, TextObservation, SessionState)
            }
        },
    }
