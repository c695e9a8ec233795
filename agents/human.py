"""A person at the terminal as the policy: reads each action from standard input."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

from horizongym.agents.base import Action, Message, Policy, PolicyError


class HumanPolicy(Policy):
    """Shows the newest observation and reads one action.

    A line ending in a backslash continues the action on the next line. ``/tools`` lists
    the offered tools; ``/quit`` (or end of input) stops the episode.
    """

    name = "human"

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        return await asyncio.to_thread(self._read, tools)

    def _read(self, tools: list[dict[str, Any]]) -> Action:
        lines: list[str] = []
        while True:
            self.stdout.write("action> " if not lines else "...> ")
            self.stdout.flush()
            line = self.stdin.readline()
            if not line:
                raise PolicyError("end of input")
            line = line.rstrip("\n")
            if not lines and line.strip() == "/quit":
                raise PolicyError("quit")
            if not lines and line.strip() == "/tools":
                for schema in tools:
                    fn = schema["function"]
                    params = ", ".join(fn["parameters"].get("properties", {}))
                    self.stdout.write(f"  {fn['name']}({params}): {fn.get('description', '')}\n")
                continue
            if line.endswith("\\"):
                lines.append(line[:-1])
                continue
            lines.append(line)
            return Action(text="\n".join(lines))
