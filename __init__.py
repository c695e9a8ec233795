"""horizongym: Gymnasium-compatible multi-turn text environments for tool-using LLM agents."""

from horizongym.envs import (
    Task,
    TextEnv,
    UnknownEnvironment,
    describe,
    load_plugins,
    make,
    register,
    registry,
    spec,
)
from horizongym.tools import Tool, ToolCall, ToolSet, tool

__version__ = "0.1.0"

load_plugins()  # last: plugins may use anything above

__all__ = [
    "Task",
    "TextEnv",
    "Tool",
    "ToolCall",
    "ToolSet",
    "UnknownEnvironment",
    "__version__",
    "describe",
    "make",
    "register",
    "registry",
    "spec",
    "tool",
]
