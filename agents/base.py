"""The policy contract: turn a conversation into the next action.

``await policy.act(messages, tools)`` takes OpenAI chat messages and OpenAI tool schemas
and returns an :class:`Action`. Local policies also return the prompt's and the
completion's token ids and the completion's log-probs, so training never re-tokenizes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from horizongym.failures import InfrastructureError
from horizongym.tools import ToolCall, render_tool_calls

Message = dict[str, Any]


@dataclass(slots=True)
class Action:
    """A policy's reply: free text and/or structured tool calls, plus tokens when known."""

    text: str = ""
    tool_calls: Sequence[ToolCall] = ()
    prompt_token_ids: list[int] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    finish_reason: str | None = None
    policy_version: int | None = None
    """Which version of the policy's weights produced this action (a served LoRA adapter's), when known."""
    trace: dict[str, Any] | None = None
    """What a composite policy did inside this turn, JSON-safe (a team's graph, messages and token
    accounts); the rollout engine stores it as the step's ``policy_trace``."""

    def env_action(self) -> str:
        """The text given to ``env.step``: the free text, then any structured calls as Hermes blocks."""
        if not self.tool_calls:
            return self.text
        blocks = render_tool_calls(self.tool_calls)
        return f"{self.text}\n{blocks}" if self.text else blocks

    def message(self, call_ids: list[str] | None = None) -> Message:
        """The OpenAI assistant message for this action."""
        message: Message = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            ids = call_ids or [c.id or f"call_{i}" for i, c in enumerate(self.tool_calls)]
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
                }
                for call_id, c in zip(ids, self.tool_calls, strict=True)
            ]
        return message


class PolicyError(RuntimeError):
    """A policy could not produce an action (unreachable server, bad model path...)."""


class PolicyUnavailable(PolicyError, InfrastructureError):
    """The policy's server could not be reached or kept failing (an infrastructure failure, retryable)."""


class ContextLengthExceeded(PolicyError):
    """The conversation no longer fits the model's context window (the episode is truncated)."""


class Policy:
    """Base class of every policy. Subclasses implement :meth:`act`."""

    name: str = "policy"

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        """Return the next action for the conversation ``messages`` given the offered ``tools``.

        ``seed`` (when given) makes a sampling policy's choice reproducible.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections, threads or models. Safe to call twice."""
        return None
