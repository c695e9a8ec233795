"""Scripted policies: a base for per-environment experts, a registry of experts, and a random policy."""

from __future__ import annotations

import importlib
import json
import random
from collections.abc import Callable
from typing import Any

from horizongym.agents.base import Action, Message, Policy
from horizongym.agents.experts import BUILTIN_EXPERTS
from horizongym.tools import ToolCall


class ScriptedPolicy(Policy):
    """A policy written as plain Python: override :meth:`decide` (synchronous, no I/O).

    ``seed`` is the engine's per-turn sampling seed; a policy that draws random numbers
    builds its generator from it (``random.Random(seed)``) so episodes are reproducible.
    """

    name = "scripted"

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        raise NotImplementedError

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        return self.decide(messages, tools, seed)


_EXPERTS: dict[str, Callable[[], ScriptedPolicy] | str] = dict(BUILTIN_EXPERTS)
"""Expert of each env id: a class (``register_expert``) or a ``"module:Class"`` not imported yet."""


def register_expert(env_id: str) -> Callable[[type[ScriptedPolicy]], type[ScriptedPolicy]]:
    """Class decorator: ``@register_expert("KeyChain-v0")`` makes it the expert of that env."""

    def add(cls: type[ScriptedPolicy]) -> type[ScriptedPolicy]:
        _EXPERTS[env_id.removeprefix("horizongym/")] = cls
        return cls

    return add


def expert_for(env_id: str) -> ScriptedPolicy:
    """A new instance of the expert registered for ``env_id`` (a built-in one is imported now)."""
    key = env_id.removeprefix("horizongym/")
    entry = _EXPERTS.get(key)
    if entry is None:
        known = ", ".join(sorted(_EXPERTS)) or "(none)"
        raise KeyError(f"no expert policy for '{env_id}'. Environments with an expert: {known}")
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = _EXPERTS[key] = getattr(importlib.import_module(module), name)
    return entry()


def experts() -> list[str]:
    """The env ids that have an expert."""
    return sorted(_EXPERTS)


def last_content(messages: list[Message]) -> str:
    """The text of the last message (the newest observation)."""
    content = messages[-1].get("content") if messages else ""
    return content if isinstance(content, str) else ""


_WORDS = ["amber", "0", "42", "", "yes", "no", "x" * 40, "ünï", '"quoted"', "{", "null"]


class RandomPolicy(ScriptedPolicy):
    """Random actions: valid-looking calls with random arguments, and every kind of malformed one.

    Useful as a baseline and as a fuzzer of environments: about a third of its actions are
    broken on purpose (bad JSON, unknown tool, missing arguments, plain text).
    """

    name = "random"

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        rng = random.Random(seed)
        kind = rng.random()
        if not tools or kind < 0.1:
            return Action(text=rng.choice(_WORDS))
        schema = tools[rng.randrange(len(tools))]["function"]
        if kind < 0.2:
            return Action(text='<tool_call>{"name": "' + schema["name"] + '", "arguments": {</tool_call>')
        if kind < 0.3:
            return Action(tool_calls=[ToolCall(name="no_such_tool", arguments={})])
        arguments = {name: self._value(spec, rng) for name, spec in schema["parameters"].get("properties", {}).items()}
        if rng.random() < 0.5:
            return Action(tool_calls=[ToolCall(name=schema["name"], arguments=arguments)])
        body = json.dumps({"name": schema["name"], "arguments": arguments})
        return Action(text=f"<tool_call>{body}</tool_call>")

    @staticmethod
    def _value(spec: dict[str, Any], rng: random.Random) -> Any:
        kind = spec.get("type")
        if kind == "integer":
            return rng.randint(-5, 100)
        if kind == "number":
            return rng.gauss(0.0, 1.0)
        if kind == "boolean":
            return bool(rng.random() < 0.5)
        if kind == "array":
            return [rng.choice(_WORDS) for _ in range(rng.randint(0, 2))]
        return rng.choice(_WORDS)
