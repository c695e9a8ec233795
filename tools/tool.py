"""Typed tools: a Python callable whose arguments form a pydantic model.

A tool's OpenAI function schema is derived from that model, never written by hand.
Mark functions or methods with :func:`tool`; gather them in a :class:`ToolSet`.
"""

from __future__ import annotations

import inspect
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import pydantic

from horizongym.failures import InfrastructureError
from horizongym.tools.errors import InvalidArguments, ToolCallError, ToolCrashed, ToolTimeout, UnknownTool

_MARK = "__horizongym_tool__"


@dataclass(frozen=True)
class ToolOptions:
    """What :func:`tool` records on a function."""

    name: str | None = None
    description: str | None = None
    timeout_s: float | None = None
    tag: bool = False


@dataclass(frozen=True)
class ToolCall:
    """One call a model made: a tool name and its (still unvalidated) JSON arguments."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass
class ToolResult:
    """What a tool returned, or the error that replaced its output."""

    call: ToolCall
    content: str
    error: ToolCallError | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
    tag: bool = False,
) -> Any:
    """Mark a function or method as a tool.

    Use bare (``@tool``) or with options (``@tool(tag=True, timeout_s=5)``). ``tag=True``
    also accepts the call as ``<name>text</name>``; the tool must then take exactly one
    string argument. The docstring's first paragraph is the description; an ``Args:``
    section describes the parameters.
    """

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        setattr(f, _MARK, ToolOptions(name=name, description=description, timeout_s=timeout_s, tag=tag))
        return f

    return mark(fn) if fn is not None else mark


def is_tool(obj: object) -> bool:
    return hasattr(obj, _MARK)


def _docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {arg: description})."""
    if not doc:
        return "", {}
    text = inspect.cleandoc(doc)
    head, _, rest = text.partition("\nArgs:\n")
    params: dict[str, str] = {}
    for line in rest.splitlines():
        match = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$", line)
        if match:
            params[match.group(1)] = match.group(2).strip()
        elif line.strip() and not line.startswith((" ", "\t")):
            break
    return " ".join(head.split("\n\n")[0].split()), params


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _type_text(schema: dict[str, Any]) -> str:
    """A JSON schema's type in a few characters: ``string``, ``string[]``, ``string?`` (optional)."""
    if "anyOf" in schema:
        options = [option for option in schema["anyOf"] if option.get("type") != "null"]
        text = "|".join(_type_text(option) for option in options) or "any"
        return text + "?" if len(options) < len(schema["anyOf"]) else text
    kind = str(schema.get("type", "any"))
    if kind == "array" and isinstance(schema.get("items"), dict):
        return _type_text(schema["items"]) + "[]"
    return kind


class Tool:
    """A callable with a pydantic argument model and a derived OpenAI function schema."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float | None = None,
        tag: bool = False,
    ) -> None:
        options: ToolOptions = getattr(fn, _MARK, ToolOptions())
        self.fn = fn
        self.name = name or options.name or fn.__name__
        doc_description, param_docs = _docstring_parts(fn.__doc__)
        self.description = description or options.description or doc_description
        self.timeout_s = timeout_s if timeout_s is not None else options.timeout_s
        self.args_model, self._takes_model = self._argument_model(fn, param_docs)
        self.tag_argument: str | None = None
        if tag or options.tag:
            required = [n for n, f in self.args_model.model_fields.items() if f.is_required()]
            if len(self.args_model.model_fields) < 1 or len(required) != 1:
                raise TypeError(f"tag tool '{self.name}' must take exactly one required string argument")
            self.tag_argument = required[0]

    def _argument_model(
        self, fn: Callable[..., Any], param_docs: dict[str, str]
    ) -> tuple[type[pydantic.BaseModel], bool]:
        signature = inspect.signature(fn)
        hints = get_type_hints(fn, include_extras=True)
        params = [p for p in signature.parameters.values() if p.name != "self"]
        if len(params) == 1:
            annotation = hints.get(params[0].name)
            if inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel):
                return annotation, True
        fields: dict[str, Any] = {}
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"tool '{self.name}' cannot take *args or **kwargs")
            annotation = hints.get(p.name, str)
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (annotation, pydantic.Field(default, description=param_docs.get(p.name)))
        model_name = "".join(part.title() for part in self.name.split("_")) + "Arguments"
        config = pydantic.ConfigDict(extra="forbid", coerce_numbers_to_str=True)
        return pydantic.create_model(model_name, __config__=config, **fields), False

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling schema of this tool."""
        parameters = _strip_titles(self.args_model.model_json_schema())
        parameters.setdefault("properties", {})
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": parameters},
        }

    def validate(self, arguments: dict[str, Any]) -> pydantic.BaseModel:
        """Validate JSON arguments; raise :class:`InvalidArguments` with pydantic's message."""
        try:
            return self.args_model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            expected = ", ".join(self.args_model.model_fields)
            raise InvalidArguments(f"{problems}. Expected arguments: {{{expected}}}.", tool=self.name) from None

    def run(self, arguments: dict[str, Any]) -> str:
        """Validate, call, and return the output as text.

        What the call did wrong raises :class:`ToolCallError` (the model is told); an
        :class:`~horizongym.failures.InfrastructureError` passes through untouched: a dead machine
        is not the model's mistake, and the rollout engine records it as an ``infra_error``.
        """
        model = self.validate(arguments)
        if self._takes_model:
            call: Callable[[], Any] = lambda: self.fn(model)  # noqa: E731
        else:
            values = {name: getattr(model, name) for name in self.args_model.model_fields}
            call = lambda: self.fn(**values)  # noqa: E731
        output = self._call_with_limit(call)
        return output if isinstance(output, str) else str(output)

    def _call_with_limit(self, call: Callable[[], Any]) -> Any:
        if self.timeout_s is None:
            try:
                return call()
            except (ToolCallError, InfrastructureError):
                raise
            except Exception as exc:
                raise ToolCrashed(f"{type(exc).__name__}: {exc}", tool=self.name) from exc
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = call()
            except BaseException as exc:
                box["error"] = exc

        # Python cannot stop a thread: a call past its limit runs on, its result ignored. Tools that
        # may hang should bound their own work (subprocess timeouts, socket timeouts) as well.
        worker = threading.Thread(target=target, name=f"tool-{self.name}", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            raise ToolTimeout(f"no result after {self.timeout_s:g} s; try a smaller request", tool=self.name)
        if "error" in box:
            error = box["error"]
            if isinstance(error, ToolCallError | InfrastructureError):
                raise error
            raise ToolCrashed(f"{type(error).__name__}: {error}", tool=self.name) from error
        return box.get("value")

    def signature_text(self) -> str:
        """A one-line human description, e.g. ``lookup(key: string) - Read a key.``"""
        props = self.schema()["function"]["parameters"].get("properties", {})
        args = ", ".join(f"{n}: {_type_text(p)}" for n, p in props.items())
        return f"{self.name}({args}) - {self.description}"

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


@dataclass
class ToolSet:
    """The tools an environment offers, by name."""

    tools: dict[str, Tool] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Iterable[Tool | Callable[..., Any]]) -> ToolSet:
        tools = [item if isinstance(item, Tool) else Tool(item) for item in items]
        names = [t.name for t in tools]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate tool names: {sorted(duplicates)}")
        return cls({t.name: t for t in tools})

    @classmethod
    def from_object(cls, obj: object) -> ToolSet:
        """Collect the methods of ``obj`` marked with :func:`tool`, bound to ``obj``."""
        found: list[Tool] = []
        for attr in dir(type(obj)):
            member = getattr(type(obj), attr, None)
            if callable(member) and is_tool(member):
                found.append(Tool(getattr(obj, attr)))
        return cls.of(found)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools.values())

    def __len__(self) -> int:
        return len(self.tools)

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    def tag_arguments(self) -> dict[str, str]:
        """``{tag tool name: its single string argument}`` for ``<name>text</name>`` actions."""
        return {t.name: t.tag_argument for t in self.tools.values() if t.tag_argument}

    def invoke(self, call: ToolCall) -> ToolResult:
        """Run one call; every failure becomes a :class:`ToolResult` carrying the error."""
        started = time.perf_counter()
        tool_ = self.tools.get(call.name)
        try:
            if tool_ is None:
                known = ", ".join(sorted(self.tools)) or "(none)"
                raise UnknownTool(f"no tool named '{call.name}'. Available tools: {known}.")
            content = tool_.run(call.arguments)
            return ToolResult(call, content, None, time.perf_counter() - started)
        except ToolCallError as error:
            return ToolResult(call, error.observation(), error, time.perf_counter() - started)

    def instructions(self) -> str:
        """Short text telling a plain-text model how to call these tools."""
        lines = [f"- {t.signature_text()}" for t in self.tools.values()]
        tag_lines = [f"<{name}>{arg}</{name}>" for name, arg in self.tag_arguments().items()]
        text = (
            "Tools:\n" + "\n".join(lines) + '\nCall a tool with <tool_call>{"name": "TOOL", "arguments": {...}}'
            "</tool_call>."
        )
        if tag_lines:
            text += " Shorthand: " + ", ".join(tag_lines) + "."
        return text
