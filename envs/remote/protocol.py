"""OpenEnv's wire contract, spoken by a served horizongym env and by :class:`RemoteEnv`.

OpenEnv (``openenv-core``, ``openenv.core.env_server``) serves one env instance per WebSocket
session at ``/ws``. The client sends ``{"type": "reset" | "step" | "state" | "close" | "mcp",
"data": {...}}``; the server answers ``{"type": "observation" | "state" | "mcp" | "error",
"data": {...}}``. An observation travels as OpenEnv's ``serialize_observation`` writes it::

    {"observation": {<the observation's fields>}, "reward": float | None, "done": bool}

A horizongym step becomes the observation fields of :class:`TextObservation`: the text, Gymnasium's
``terminated`` / ``truncated`` (OpenEnv's ``done`` is their "or") and the step's ``info`` as JSON,
so a remote env keeps the whole env ↔ engine contract (:mod:`horizongym.envs.contract`). An action
is :class:`TextAction`, ``{"text": ...}``: what ``env.step`` takes.

Errors are ``{"type": "error", "data": {"message": ..., "code": ...}}`` with one of
:class:`ErrorCode`: OpenEnv's codes, and ours for what OpenEnv leaves unnamed.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pydantic

MAX_MESSAGE_BYTES: Final = 1 << 20
"""The largest message a session takes (1 MiB); a larger one is refused with ``MESSAGE_TOO_LARGE``."""

MAX_ANSWER_BYTES: Final = 64 << 20
"""The largest answer a client reads (64 MiB). An observation is the env's to size (a long SWE
test log, sent once as the text and once in ``info.tool_results``), so answers may pass the 1 MiB
that bounds what a session takes from a client."""


class ErrorCode(enum.StrEnum):
    """Why a message was refused. The first seven are OpenEnv's ``WSErrorCode``."""

    INVALID_JSON = "INVALID_JSON"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    CAPACITY_REACHED = "CAPACITY_REACHED"
    FACTORY_ERROR = "FACTORY_ERROR"
    SESSION_ERROR = "SESSION_ERROR"
    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"
    EPISODE_NOT_STARTED = "EPISODE_NOT_STARTED"
    """A step before the session's first reset, or after its episode ended."""
    UNKNOWN_SESSION = "UNKNOWN_SESSION"
    """An HTTP or MCP request naming a session that does not exist (closed, timed out, never made)."""


class TextAction(pydantic.BaseModel):
    """One action: the text ``env.step`` takes (OpenEnv's ``Action``, with its ``metadata``)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    text: str
    metadata: dict[str, Any] = pydantic.Field(default_factory=dict)


class TextObservation(pydantic.BaseModel):
    """One observation (OpenEnv's ``Observation``: ``done``, ``reward``, ``metadata``, and ours)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    text: str
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = pydantic.Field(default_factory=dict)
    done: bool = False
    reward: float | None = None
    metadata: dict[str, Any] = pydantic.Field(default_factory=dict)


class ResetData(pydantic.BaseModel):
    """What a ``reset`` carries (OpenEnv's ``ResetRequest`` plus Gymnasium's ``options``). Other keys
    are dropped, as OpenEnv drops the ones its env's ``reset`` does not take."""

    model_config = pydantic.ConfigDict(extra="ignore")

    seed: int | None = pydantic.Field(default=None, ge=0)
    episode_id: str | None = pydantic.Field(default=None, max_length=255)
    options: dict[str, Any] | None = None


class SessionState(pydantic.BaseModel):
    """A session's ``state`` (OpenEnv's ``State``: ``episode_id``, ``step_count``; and ours)."""

    model_config = pydantic.ConfigDict(extra="allow")

    episode_id: str | None = None
    step_count: int = 0
    env_id: str = ""
    task_id: str | None = None
    done: bool = False


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: tuples and sets as lists, numpy values as Python numbers,
    pydantic models and dataclasses as dicts, any other object as its ``str``."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pydantic.BaseModel):
        return jsonable(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return str(value)


def observation_payload(
    text: str, reward: float | None, terminated: bool, truncated: bool, info: Mapping[str, Any]
) -> dict[str, Any]:
    """One env result as OpenEnv's serialized observation (``reward`` None after a reset)."""
    observation = {"text": text, "terminated": terminated, "truncated": truncated, "info": jsonable(info)}
    return {"observation": observation, "reward": reward, "done": terminated or truncated}


def step_result(payload: Mapping[str, Any]) -> tuple[str, float, bool, bool, dict[str, Any]]:
    """A serialized observation back as ``env.step``'s five values; ``ValueError`` if it is not one."""
    try:
        observation = TextObservation.model_validate(payload["observation"])
        reward = float(payload.get("reward") or 0.0)
    except (KeyError, TypeError, ValueError, pydantic.ValidationError) as exc:
        raise ValueError(f"not an observation payload: {exc}") from None
    terminated = observation.terminated
    if payload.get("done") is True and not (terminated or observation.truncated):
        terminated = True  # an OpenEnv server that says only ``done``: the episode ended
    return observation.text, reward, terminated, observation.truncated, observation.info


def error_message(code: ErrorCode, message: str, **details: Any) -> dict[str, Any]:
    """An error answer: ``{"type": "error", "data": {"message", "code", **details}}``."""
    return {"type": "error", "data": {"message": message, "code": code.value, **jsonable(details)}}
