"""One parser for the tool calls models really emit.

Formats read, in this order of precedence:

1. Hermes / Qwen blocks: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, one or several;
   a block may hold a JSON list of such calls (SmolLM2-Instruct's format,
   ``<tool_call>[{"name": ...}, ...]</tool_call>``; ``[]`` is no call).
2. Fenced JSON calls, when no block is found: a Markdown code fence tagged ``json`` whose body is
   one call object or a list of them, each with ``"name"`` and ``"arguments"`` (a fence holding any
   other JSON is text, not a call).
3. OpenAI ``tool_calls`` structures, given as Python objects or as JSON text: a message with a
   ``tool_calls`` list, or the list itself, each item ``{"id", "type": "function",
   "function": {"name", "arguments": "<json string>"}}``.
4. Tag actions ``<name>text</name>`` for the tag tools an environment declares.

The parser never raises: anything it cannot read becomes a typed error in the result.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from horizongym.tools.errors import InvalidJSON, MalformedToolCall, ToolCallError
from horizongym.tools.tool import ToolCall

_HERMES = re.compile(r"<tool_call>(.*?)(</tool_call>|$)", re.DOTALL)
_FENCED_JSON = re.compile(r"```json[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_EXAMPLE = '<tool_call>{"name": "TOOL", "arguments": {"ARG": "VALUE"}}</tool_call>'


@dataclass(slots=True)
class ParsedAction:
    """An action split into free text, tool calls, and the errors found while reading it."""

    text: str
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[ToolCallError] = field(default_factory=list)


@functools.cache
def _tag_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<{re.escape(name)}>(.*?)(</{re.escape(name)}>|$)", re.DOTALL)


def _loads(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except (ValueError, RecursionError) as exc:
        return None, str(exc).split("\n")[0]


def _call_from_object(obj: Any, call_id: str | None = None) -> ToolCall | ToolCallError:
    """Read ``{"name", "arguments"}`` (Hermes) or ``{"function": {...}}`` (OpenAI)."""
    if not isinstance(obj, Mapping):
        return MalformedToolCall(f"a tool call must be a JSON object, got {type(obj).__name__}. Use {_EXAMPLE}")
    if isinstance(obj.get("function"), Mapping):
        call_id = obj.get("id") if isinstance(obj.get("id"), str) else call_id
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return MalformedToolCall(f'the tool call has no "name" string. Use {_EXAMPLE}')
    arguments: Any = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):
        if not arguments.strip():
            arguments = {}
        else:
            decoded, problem = _loads(arguments)
            if problem is not None:
                return InvalidJSON(f"the arguments are not valid JSON ({problem}).", tool=name)
            arguments = decoded
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        return MalformedToolCall('"arguments" must be a JSON object of argument names to values.', tool=name)
    return ToolCall(name=name, arguments=dict(arguments), id=call_id)


def _calls_from_body(obj: Any) -> list[ToolCall | ToolCallError]:
    """A ``<tool_call>`` body: one call object, or a JSON list of them (``[]``: none)."""
    if isinstance(obj, list):
        return [_call_from_object(item) for item in obj]
    return [_call_from_object(obj)]


def _is_call_shaped(obj: Any) -> bool:
    """A JSON value that is plainly meant as calls: an object with ``name`` and ``arguments``, or a
    non-empty list of such objects."""
    items = obj if isinstance(obj, list) and obj else [obj]
    return all(isinstance(item, Mapping) and "name" in item and "arguments" in item for item in items)


def parse_openai_tool_calls(tool_calls: Any) -> ParsedAction:
    """Read an OpenAI ``tool_calls`` list (or a message holding one)."""
    content = ""
    if isinstance(tool_calls, Mapping):
        content = tool_calls.get("content") or ""
        if not isinstance(content, str):
            content = ""
        tool_calls = tool_calls.get("tool_calls") or []
    result = ParsedAction(text=content)
    if not isinstance(tool_calls, list):
        result.errors.append(MalformedToolCall('"tool_calls" must be a list of tool calls.'))
        return result
    for item in tool_calls:
        parsed = _call_from_object(item)
        (result.errors if isinstance(parsed, ToolCallError) else result.calls).append(parsed)  # type: ignore[arg-type]
    return result


def _looks_like_openai(obj: Any) -> bool:
    if isinstance(obj, Mapping):
        return "tool_calls" in obj
    return (
        isinstance(obj, list)
        and bool(obj)
        and all(isinstance(item, Mapping) and isinstance(item.get("function"), Mapping) for item in obj)
    )


def parse_action(action: Any, tag_arguments: Mapping[str, str] | None = None) -> ParsedAction:
    """Split ``action`` into text, tool calls and errors. Never raises."""
    try:
        return _parse(action, tag_arguments or {})
    except Exception as exc:  # a last guard: a parser bug must not crash an episode
        return ParsedAction(text="", errors=[MalformedToolCall(f"the action could not be read ({exc!r}).")])


def is_plain_text(action: str) -> bool:
    """True if ``action`` cannot hold a tool call in any format (no tag, no code fence, no leading JSON)."""
    return "<" not in action and "```" not in action and action.lstrip()[:1] not in ("{", "[")


def _parse(action: Any, tag_arguments: Mapping[str, str]) -> ParsedAction:
    if isinstance(action, str) and is_plain_text(action):
        return ParsedAction(text=action.strip())
    if not isinstance(action, str):
        if _looks_like_openai(action):
            return parse_openai_tool_calls(action)
        return ParsedAction(text="", errors=[MalformedToolCall(f"unreadable action of type {type(action).__name__}.")])

    found: list[tuple[int, ToolCall | ToolCallError]] = []
    spans: list[tuple[int, int]] = []
    for match in _HERMES.finditer(action):
        spans.append(match.span())
        if not match.group(2):
            found.append((match.start(), MalformedToolCall("a <tool_call> block is not closed with </tool_call>.")))
            continue
        body = match.group(1).strip()
        obj, problem = _loads(body)
        if problem is not None:
            found.append(
                (match.start(), InvalidJSON(f"the <tool_call> body is not valid JSON ({problem}). Use {_EXAMPLE}"))
            )
        else:
            found.extend((match.start(), call) for call in _calls_from_body(obj))

    if not spans:
        for match in _FENCED_JSON.finditer(action):
            obj, problem = _loads(match.group(1).strip())
            if problem is None and _is_call_shaped(obj):
                spans.append(match.span())
                found.extend((match.start(), call) for call in _calls_from_body(obj))

    if not found and not spans:
        stripped = action.strip()
        if stripped[:1] in ("{", "["):
            obj, problem = _loads(stripped)
            if problem is None and _looks_like_openai(obj):
                return parse_openai_tool_calls(obj)

    candidates = [
        (match, name, argument)
        for name, argument in tag_arguments.items()
        if f"<{name}>" in action
        for match in _tag_pattern(name).finditer(action)
    ]
    # left to right, whatever the order the tools were declared in; a tag inside an earlier one is its text
    for match, name, argument in sorted(candidates, key=lambda c: c[0].start()):
        if any(start <= match.start() < end for start, end in spans):
            continue
        spans.append(match.span())
        if not match.group(2):
            found.append((match.start(), MalformedToolCall(f"<{name}> is not closed with </{name}>.", tool=name)))
        else:
            found.append((match.start(), ToolCall(name=name, arguments={argument: match.group(1).strip()})))

    text = action
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + text[end:]
    result = ParsedAction(text=text.strip())
    for _, item in sorted(found, key=lambda pair: pair[0]):
        (result.errors if isinstance(item, ToolCallError) else result.calls).append(item)  # type: ignore[arg-type]
    return result


def render_tool_calls(calls: Sequence[ToolCall]) -> str:
    """Write calls back as Hermes blocks (how a native tool call becomes a text action)."""
    return "\n".join(
        "<tool_call>" + json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False) + "</tool_call>"
        for c in calls
    )
