"""The KeyChain-v0 expert: reads only the observations, follows the chain, answers."""

from __future__ import annotations

import re
from typing import Any

from horizongym.agents.base import Action, Message
from horizongym.agents.scripted import ScriptedPolicy, last_content
from horizongym.tools import ToolCall

_START = re.compile(r"Start key: (\w+)")
_VALUE = re.compile(r"^(\w+) = (-> (\w+)|(\S+))$")


class KeyChainExpert(ScriptedPolicy):
    """Look up the start key, follow each ``-> key`` pointer, answer the first number."""

    name = "expert"

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        text = last_content(messages).strip()
        value = _VALUE.match(text)
        if value and value.group(3):
            return Action(tool_calls=[ToolCall("lookup", {"key": value.group(3)})])
        if value:
            return Action(tool_calls=[ToolCall("answer", {"value": value.group(4)})])
        start = _START.search(text) or next(
            (m for m in (_START.search(str(msg.get("content", ""))) for msg in messages) if m), None
        )
        return Action(tool_calls=[ToolCall("lookup", {"key": start.group(1) if start else ""})])
