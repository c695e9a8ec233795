"""Tool declaration, tool-call parsing and typed tool errors."""

from horizongym.tools.errors import (
    InvalidArguments,
    InvalidJSON,
    MalformedToolCall,
    NoToolCall,
    ToolCallError,
    ToolCrashed,
    ToolTimeout,
    UnknownTool,
)
from horizongym.tools.parser import (
    ParsedAction,
    is_plain_text,
    parse_action,
    parse_openai_tool_calls,
    render_tool_calls,
)
from horizongym.tools.tool import Tool, ToolCall, ToolResult, ToolSet, is_tool, tool

__all__ = [
    "InvalidArguments",
    "InvalidJSON",
    "MalformedToolCall",
    "NoToolCall",
    "ParsedAction",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "ToolCrashed",
    "ToolResult",
    "ToolSet",
    "ToolTimeout",
    "UnknownTool",
    "is_plain_text",
    "is_tool",
    "parse_action",
    "parse_openai_tool_calls",
    "render_tool_calls",
    "tool",
]
