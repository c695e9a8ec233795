"""Scripted SWE-v0 policies: the expert applies the gold patch through the editor; another submits at once.

:class:`SWEExpert` reads the instance id from the first observation, looks the instance up
(:func:`horizongym.envs.swe.data.known_instance`), turns each hunk of its gold ``patch`` into
one ``str_replace_editor`` call (``create`` for a new file, ``bash rm`` for a deleted one),
runs the tests once with ``bash``, and submits. It proves the tools, the diff, the hidden tests
and the reward end to end. :class:`SWEDoNothing` submits the untouched repository: reward 0.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from horizongym.agents.base import Action, Message
from horizongym.agents.scripted import ScriptedPolicy
from horizongym.envs.swe.data import known_instance
from horizongym.envs.swe.patches import split_patch
from horizongym.tools import ToolCall

_INSTANCE = re.compile(r"^Instance: (\S+)", re.MULTILINE)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")


def edit_calls(patch: str, workdir: str = "/work") -> list[ToolCall]:
    """Editor calls that turn the starting files into the patched ones, one per hunk."""
    calls: list[ToolCall] = []
    for section in split_patch(patch):
        path = f"{workdir}/{section.path}"
        lines = section.text.splitlines()
        if any(line.startswith("+++ /dev/null") for line in lines):
            calls.append(ToolCall("bash", {"command": f"rm {shlex.quote(path)}"}))
            continue
        hunks: list[tuple[list[str], list[str]]] = []
        for line in lines:
            if _HUNK.match(line):
                hunks.append(([], []))
            elif hunks and line[:1] in (" ", "-", "+"):
                old, new = hunks[-1]
                if line[:1] != "+":
                    old.append(line[1:])
                if line[:1] != "-":
                    new.append(line[1:])
        if any(line.startswith("--- /dev/null") for line in lines):
            text = "\n".join(hunks[0][1]) + "\n" if hunks else ""
            calls.append(ToolCall("str_replace_editor", {"command": "create", "path": path, "file_text": text}))
            continue
        for old, new in hunks:
            arguments = {"command": "str_replace", "path": path, "old_str": "\n".join(old), "new_str": "\n".join(new)}
            calls.append(ToolCall("str_replace_editor", arguments))
    return calls


def _instance_id(messages: list[Message]) -> str | None:
    for message in messages:
        match = _INSTANCE.search(str(message.get("content") or ""))
        if match:
            return match.group(1)
    return None


class SWEExpert(ScriptedPolicy):
    """Apply the gold patch hunk by hunk with the editor, run the tests, submit."""

    name = "expert"

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        instance_id = _instance_id(messages)
        instance = known_instance(instance_id) if instance_id else None
        done = sum(1 for m in messages if m.get("role") == "assistant")
        if instance is None:
            return Action(tool_calls=[ToolCall("submit", {})])
        plan = [
            ToolCall("bash", {"command": "git status --short && ls"}),
            *edit_calls(instance.patch),
            ToolCall("bash", {"command": "git diff --stat"}),
            ToolCall("submit", {}),
        ]
        return Action(tool_calls=[plan[min(done, len(plan) - 1)]])


class SWEDoNothing(ScriptedPolicy):
    """Submit the repository as it is (a baseline that must score 0)."""

    name = "do-nothing"

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        return Action(tool_calls=[ToolCall("submit", {})])
