"""Tools for a chat template that knows none: the Hermes tool prompt written into the messages.

Some instruct models' templates (SmolLM2's) render ``role``/``content`` pairs only: passed
``tools`` are dropped, ``tool_calls`` vanish and a ``tool`` message becomes an unknown role.
:func:`fold_tools` rewrites the conversation so such a template renders what
:data:`~horizongym.agents.hf.CHATML_TOOLS_TEMPLATE` renders for a template that does know tools:

* the system turn gets ``# Tools`` and the tool schemas as JSON lines in ``<tools></tools>``,
  with the instruction to answer with ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  (the Hermes / Qwen2.5 format that :func:`horizongym.tools.parse_action` reads);
* an assistant message's ``tool_calls`` become such blocks after its text;
* consecutive ``tool`` messages become one user turn of ``<tool_response>`` blocks.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

Message = dict[str, Any]

DEFAULT_SYSTEM = "You are a helpful assistant."

TOOLS_PROMPT = """

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{tools}
</tools>

For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:
<tool_call>{{"name": <function-name>, "arguments": <args-json-object>}}</tool_call>"""


def template_takes_tools(template: Any) -> bool:
    """Whether a chat template renders ``tools`` itself (a template set, a dict, is left to itself)."""
    return not isinstance(template, str) or "tools" in template


def tools_system_prompt(system: str | None, tools: list[dict[str, Any]]) -> str:
    """The system text with the tool list appended (``system`` defaults to :data:`DEFAULT_SYSTEM`)."""
    listing = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
    return (system or DEFAULT_SYSTEM) + TOOLS_PROMPT.format(tools=listing)


def call_block(call: dict[str, Any]) -> str:
    """One OpenAI tool call (``{"function": {"name", "arguments"}}`` or flat) as a ``<tool_call>`` block."""
    function = call.get("function", call)
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        with contextlib.suppress(json.JSONDecodeError):  # else shown as the string it is
            arguments = json.loads(arguments)
    payload = {"name": function.get("name"), "arguments": arguments}
    return f"<tool_call>{json.dumps(payload, ensure_ascii=False)}</tool_call>"


def fold_tools(messages: list[Message], tools: list[dict[str, Any]] | None) -> list[Message]:
    """``messages`` with the tools, tool calls and tool results written as text (see the module docstring)."""
    folded: list[Message] = []
    rest = messages
    if tools:
        first_is_system = bool(messages) and messages[0].get("role") in ("system", "developer")
        system = str(messages[0].get("content") or "") if first_is_system else None
        folded.append({"role": "system", "content": tools_system_prompt(system, tools)})
        rest = messages[1:] if first_is_system else messages
    for message in rest:
        role = message.get("role")
        content = str(message.get("content") or "")
        if role == "tool":
            block = f"<tool_response>\n{content}\n</tool_response>"
            if folded and folded[-1].get("tool_responses"):
                folded[-1]["content"] += "\n" + block
            else:
                folded.append({"role": "user", "content": block, "tool_responses": True})
        elif role == "assistant" and message.get("tool_calls"):
            blocks = "\n".join(call_block(call) for call in message["tool_calls"])
            folded.append({"role": "assistant", "content": f"{content}\n{blocks}" if content else blocks})
        else:
            folded.append({"role": "system" if role == "developer" else role, "content": content})
    for message in folded:
        message.pop("tool_responses", None)
    return folded


__all__ = ["call_block", "fold_tools", "template_takes_tools", "tools_system_prompt"]
