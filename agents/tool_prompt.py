"""Tools for a chat template that knows none: a tool prompt written into the messages.

Some instruct models' templates (SmolLM2's) render ``role``/``content`` pairs only: passed
``tools`` are dropped, ``tool_calls`` vanish and a ``tool`` message becomes an unknown role.
:func:`fold_tools` rewrites the conversation so such a template renders the tools, in one of two
styles (:data:`ToolStyle`):

* ``"hermes"``: what :data:`~horizongym.agents.hf.CHATML_TOOLS_TEMPLATE` renders for a template
  that does know tools: the system turn gets ``# Tools`` and the tool schemas as JSON lines in
  ``<tools></tools>``, with the instruction to answer with
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (the Hermes / Qwen2.5 format);
* ``"smollm2"``: the function-calling format SmolLM2-Instruct was fine-tuned on (Argilla's
  Synth-APIGen data; the prompt of the SmolLM2-1.7B-Instruct model card and of Ollama's
  ``smollm2`` template): a system turn "You are an expert in composing functions...", the tools
  as one JSON list in ``<tools></tools>``, and the calls as a JSON *list* in one block,
  ``<tool_call>[{"name": ..., "arguments": {...}}]</tool_call>``.

In both styles an assistant message's ``tool_calls`` become such blocks after its text, and
consecutive ``tool`` messages become one user turn of ``<tool_response>`` blocks. Both call forms
are read by :func:`horizongym.tools.parse_action`.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Literal

Message = dict[str, Any]
ToolStyle = Literal["hermes", "smollm2"]

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

SMOLLM2_TOOLS_PROMPT = """\
You are an expert in composing functions. You are given a question and a set of possible functions.
Based on the question, you will need to make one or more function/tool calls to achieve the purpose.
If none of the functions can be used, point it out and refuse to answer.
If the given question lacks the parameters required by the function, also point it out.

You have access to the following tools:
<tools>{tools}</tools>

The output MUST strictly adhere to the following format, and NO other text MUST be included.
The example format is as follows. Please make sure the parameter type is correct. If no function call is \
needed, please make the tool calls an empty list '[]'.
<tool_call>[
{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}},
... (more tool calls as required)
]</tool_call>"""
"""SmolLM2-Instruct's function-calling system prompt (SmolLM2-1.7B-Instruct model card)."""


def template_takes_tools(template: Any) -> bool:
    """Whether a chat template renders ``tools`` itself (a template set, a dict, is left to itself)."""
    return not isinstance(template, str) or "tools" in template


def template_tool_style(template: Any) -> ToolStyle:
    """The tool style a tool-less chat template's model was trained on: ``"smollm2"`` for SmolLM2's
    template (it names the model), else ``"hermes"``."""
    return "smollm2" if isinstance(template, str) and "SmolLM" in template else "hermes"


def tools_system_prompt(system: str | None, tools: list[dict[str, Any]], style: ToolStyle = "hermes") -> str:
    """The system text with the tool list (``system`` defaults to :data:`DEFAULT_SYSTEM`).

    ``"smollm2"``: :data:`SMOLLM2_TOOLS_PROMPT` with the functions (``{"name", "description",
    "parameters"}``, unwrapped from OpenAI's ``{"type": "function", "function": ...}`` as in the
    training data), followed by ``system`` when one is given."""
    if style == "smollm2":
        functions = [tool.get("function", tool) for tool in tools]
        prompt = SMOLLM2_TOOLS_PROMPT.format(tools=json.dumps(functions, ensure_ascii=False))
        return f"{prompt}\n\n{system}" if system else prompt
    listing = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
    return (system or DEFAULT_SYSTEM) + TOOLS_PROMPT.format(tools=listing)


def _payload(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function", call)
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        with contextlib.suppress(json.JSONDecodeError):  # else shown as the string it is
            arguments = json.loads(arguments)
    return {"name": function.get("name"), "arguments": arguments}


def call_block(call: dict[str, Any]) -> str:
    """One OpenAI tool call (``{"function": {"name", "arguments"}}`` or flat) as a ``<tool_call>`` block."""
    return f"<tool_call>{json.dumps(_payload(call), ensure_ascii=False)}</tool_call>"


def calls_block(calls: list[dict[str, Any]], style: ToolStyle = "hermes") -> str:
    """An assistant's tool calls as text: one block each (``"hermes"``), or one block holding a
    JSON list of them (``"smollm2"``: ``<tool_call>[\\n{...},\\n{...}\\n]</tool_call>``)."""
    if style == "smollm2":
        items = ",\n".join(json.dumps(_payload(call), ensure_ascii=False) for call in calls)
        return f"<tool_call>[\n{items}\n]</tool_call>"
    return "\n".join(call_block(call) for call in calls)


def fold_tools(
    messages: list[Message], tools: list[dict[str, Any]] | None, style: ToolStyle = "hermes"
) -> list[Message]:
    """``messages`` with the tools, tool calls and tool results written as text (see the module docstring)."""
    folded: list[Message] = []
    rest = messages
    if tools:
        first_is_system = bool(messages) and messages[0].get("role") in ("system", "developer")
        system = str(messages[0].get("content") or "") if first_is_system else None
        folded.append({"role": "system", "content": tools_system_prompt(system, tools, style)})
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
            blocks = calls_block(message["tool_calls"], style)
            folded.append({"role": "assistant", "content": f"{content}\n{blocks}" if content else blocks})
        else:
            folded.append({"role": "system" if role == "developer" else role, "content": content})
    for message in folded:
        message.pop("tool_responses", None)
    return folded


__all__ = [
    "SMOLLM2_TOOLS_PROMPT",
    "ToolStyle",
    "call_block",
    "calls_block",
    "fold_tools",
    "template_takes_tools",
    "template_tool_style",
    "tools_system_prompt",
]
