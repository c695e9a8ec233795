"""Tools folded into the messages for chat templates that know none, in the Hermes and SmolLM2 styles."""

from __future__ import annotations

import json
from typing import Any

from horizongym.agents.tool_prompt import fold_tools, template_tool_style
from horizongym.tools import ToolCall, parse_action

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Read a key.",
            "parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
        },
    }
]
CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"key": "amber"}'}}
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "Play KeyChain."},
    {"role": "user", "content": "Find amber."},
    {"role": "assistant", "content": "", "tool_calls": [CALL, CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": "amber = 4821"},
    {"role": "tool", "tool_call_id": "c1", "content": "amber = 4821"},
]


def test_the_style_follows_the_template() -> None:
    assert template_tool_style("{{ 'You are a helpful AI assistant named SmolLM' }}") == "smollm2"
    assert template_tool_style("{% for m in messages %}{{ m.content }}{% endfor %}") == "hermes"
    assert template_tool_style({"default": "..."}) == "hermes"


def test_smollm2_style_lists_functions_and_calls_as_json_lists() -> None:
    system, user, assistant, tool = fold_tools(MESSAGES, TOOLS, "smollm2")
    assert system["role"] == "system"
    assert system["content"].startswith("You are an expert in composing functions.")
    assert system["content"].endswith("]</tool_call>\n\nPlay KeyChain.")
    listed = system["content"].split("<tools>")[1].split("</tools>")[0]
    assert json.loads(listed) == [TOOLS[0]["function"]]  # unwrapped, as in SmolLM2's training data
    assert user == {"role": "user", "content": "Find amber."}
    assert assistant["content"].startswith("<tool_call>[\n") and assistant["content"].endswith("\n]</tool_call>")
    assert parse_action(assistant["content"]).calls == [ToolCall("lookup", {"key": "amber"})] * 2
    assert tool["role"] == "user" and tool["content"].count("<tool_response>") == 2


def test_hermes_style_is_one_block_per_call() -> None:
    system, _, assistant, _ = fold_tools(MESSAGES, TOOLS, "hermes")
    assert system["content"].startswith("Play KeyChain.\n\n# Tools\n")
    assert assistant["content"].count("<tool_call>{") == 2
    assert parse_action(assistant["content"]).calls == [ToolCall("lookup", {"key": "amber"})] * 2
