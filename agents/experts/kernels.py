"""The KernelGen-v0 expert: submits a hand-written kernel for the task when it has one, then finishes.

It reads the task id and the language from the first observation, submits
``SOLUTIONS[task][language]`` (:mod:`horizongym.agents.experts.kernel_solutions`) through the
``submit`` tool once, and calls ``finish`` after seeing the result (or at once, for a task it
has no kernel for). It proves the build, check, timing and reward path end to end.
``KernelExpert(form="kernelbench")`` submits the task's KernelBench-form (``load_inline``) file
instead, where one exists (:data:`~horizongym.agents.experts.kernel_solutions.KERNELBENCH_SOLUTIONS`).
"""

from __future__ import annotations

import re
from typing import Any

from horizongym.agents.base import Action, Message
from horizongym.agents.experts.kernel_solutions import KERNELBENCH_SOLUTIONS, SOLUTIONS
from horizongym.agents.scripted import ScriptedPolicy
from horizongym.tools import ToolCall

_TASK = re.compile(r"^Task: L\d+/(\w+)", re.MULTILINE)
_LANGUAGE = re.compile(r"Language: (\w+)")
_RESULT = re.compile(r"^Result: ", re.MULTILINE)


FORMS = ("load_kernel", "kernelbench")
"""How the expert writes a candidate: ``load_kernel`` (the env's own API) or KernelBench's ``load_inline``."""


def solution_for(task_name: str, language: str, form: str = "load_kernel") -> str | None:
    """The expert's candidate file for a task in ``cpp`` or ``cuda`` and one of :data:`FORMS`, or None."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if form == "kernelbench":
        return KERNELBENCH_SOLUTIONS.get(task_name) if language == "cpp" else None
    return SOLUTIONS.get(task_name, {}).get(language)


class KernelExpert(ScriptedPolicy):
    """Submit the hand-written kernel once, then finish."""

    name = "expert"

    def __init__(self, form: str = "load_kernel") -> None:
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        self.form = form

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        texts = [str(m.get("content") or "") for m in messages]
        if any(_RESULT.search(text) for text in texts):
            return Action(tool_calls=[ToolCall("finish", {})])
        task = next((m for m in map(_TASK.search, texts) if m), None)
        language = next((m for m in map(_LANGUAGE.search, texts) if m), None)
        code = solution_for(task.group(1), language.group(1), self.form) if task and language else None
        if code is None:
            return Action(tool_calls=[ToolCall("finish", {})])
        return Action(tool_calls=[ToolCall("submit", {"code": code})])
