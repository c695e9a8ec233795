"""Typed tool-call errors.

Every error a model can cause with a tool call is one of these classes. Each renders
itself as an observation that says what was wrong and how to fix it, so a malformed call
costs the model a turn and a format penalty, never an exception in the environment.
"""

from __future__ import annotations


class ToolCallError(Exception):
    """Base class: something in a tool call the model must fix."""

    kind: str = "tool_error"

    def __init__(self, message: str, *, tool: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tool = tool

    def observation(self) -> str:
        """The text handed back to the model."""
        where = f" (tool '{self.tool}')" if self.tool else ""
        return f"Error [{self.kind}]{where}: {self.message}"


class InvalidJSON(ToolCallError):
    """The body of a `<tool_call>` block or of OpenAI `arguments` is not valid JSON."""

    kind = "invalid_json"


class MalformedToolCall(ToolCallError):
    """Valid JSON, but not shaped like a tool call (missing `name`, arguments not an object...)."""

    kind = "malformed_tool_call"


class UnknownTool(ToolCallError):
    """The named tool does not exist in this environment."""

    kind = "unknown_tool"


class InvalidArguments(ToolCallError):
    """The arguments do not validate against the tool's pydantic model."""

    kind = "invalid_arguments"


class ToolTimeout(ToolCallError):
    """The tool ran longer than its time limit."""

    kind = "tool_timeout"


class ToolCrashed(ToolCallError):
    """The tool raised an exception while running."""

    kind = "tool_crashed"


class NoToolCall(ToolCallError):
    """The action contained no tool call although the environment needs one."""

    kind = "no_tool_call"
