"""The LongChain-v0 expert, plainly and inside the Markovian workspace.

Plainly it reads the newest observation (``k0042 = -> k7315``) and looks up the next key,
or answers the number at the end of the chain. Inside the workspace
(:mod:`horizongym.envs.workspace`) it reads the ``Result:`` section, falls back to the
``Next key:`` it wrote in its report (or the start key in the question), and replies with a
round: an updated report and one tag action, formatted by :func:`workspace_action`.
"""

from __future__ import annotations

import re
from typing import Any

from horizongym.agents.base import Action, Message
from horizongym.agents.scripted import ScriptedPolicy, last_content
from horizongym.envs.workspace import REPORT_HEADER, RESULT_HEADER
from horizongym.tools import ToolCall

_START = re.compile(r"Start key: (k\d+)")
_VALUE = re.compile(r"^(k\d+) = (?:-> (k\d+)|(\S+))$", re.MULTILINE)
_NEXT_KEY = re.compile(r"Next key: (k\d+)")
_LOOKUPS = re.compile(r"Lookups: (\d+)")


def workspace_action(report: str, action: str, think: str | None = None) -> str:
    """One workspace round: an optional ``<think>``, the ``<report>``, then the inner env's ``action``."""
    head = f"<think>{think}</think>\n" if think else ""
    return f"{head}<report>{report}</report>\n{action}"


def _in_workspace(text: str) -> bool:
    return f"\n\n{REPORT_HEADER}" in text


def _result_section(text: str) -> str:
    marker = f"\n\n{RESULT_HEADER}\n"
    return text.rsplit(marker, 1)[1] if marker in text else ""


def _report_section(text: str) -> str:
    marker = f"\n\n{REPORT_HEADER}"
    return text.rsplit(marker, 1)[1] if marker in text else ""


class LongChainExpert(ScriptedPolicy):
    """Look up the start key, follow each ``-> key`` pointer, answer the first number; in rounds inside a workspace."""

    name = "expert"

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        text = last_content(messages)
        if _in_workspace(text):
            return Action(text=self._round(text))
        value = _VALUE.match(text.strip())
        if value and value.group(2):
            return Action(tool_calls=[ToolCall("lookup", {"key": value.group(2)})])
        if value:
            return Action(tool_calls=[ToolCall("answer", {"value": value.group(3)})])
        start = _START.search(text) or next(
            (m for m in (_START.search(str(msg.get("content", ""))) for msg in messages) if m), None
        )
        return Action(tool_calls=[ToolCall("lookup", {"key": start.group(1) if start else ""})])

    @staticmethod
    def _round(text: str) -> str:
        """The reply to one workspace observation: the state is in the report and the last result."""
        report = _report_section(text)
        start = _START.search(text)
        done = _LOOKUPS.search(report)
        lookups = int(done.group(1)) if done else 0
        value = _VALUE.search(_result_section(text))
        if value and value.group(3):
            return workspace_action(
                f"The chain ends at {value.group(1)} = {value.group(3)}.", f"<answer>{value.group(3)}</answer>"
            )
        if value:
            key, lookups = value.group(2), lookups + 1
        else:
            remembered = _NEXT_KEY.search(report)
            key = remembered.group(1) if remembered else start.group(1) if start else ""
        return workspace_action(f"Lookups: {lookups}. Next key: {key}.", f"<lookup>{key}</lookup>")
