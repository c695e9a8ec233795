"""The conversation a policy is shown, built turn by turn: one builder for the rollout engine and SFT.

The rules (the env steers them through two keys of :mod:`horizongym.envs.contract`):

* A context starts as ``[system prompt?, user: first observation]``.
* Each turn appends the policy's assistant message, then the env's answer: one ``tool``
  message per native tool call (OpenAI-compatible servers require one per call id; with
  several calls each holds its own result from ``info["tool_results"]``), or else one
  ``user`` message holding the observation.
* ``info["redact_previous_observation"]`` (a text) replaces the previous turn's answer in the
  context, e.g. information the agent judged useless; the record keeps the original.
* ``info["fresh_context"]`` starts a new context from this observation: ``[system prompt?,
  user: observation]`` (Markovian agents, IterResearch's workspace).

The rollout engine feeds the policy's live turns through :meth:`PolicyContext.add_turn`;
SFT replays a stored episode's turns through the very same method, so the prompts SFT trains
on are, by construction, the prompts a text policy samples from during RL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from horizongym.agents.base import Message
from horizongym.envs.contract import FRESH_CONTEXT, REDACT_PREVIOUS_OBSERVATION, TOOL_RESULTS

NOT_RUN = "(not run: the episode had ended)"


class PolicyContext:
    """The messages a policy sees next (``messages``), updated one turn at a time."""

    __slots__ = ("_previous", "messages", "system_prompt")

    def __init__(self, observation: str, system_prompt: str | None = None) -> None:
        self.system_prompt = system_prompt
        self.messages: list[Message] = self._opening(observation)
        self._previous: tuple[int, int] | None = None
        """The slice of ``messages`` holding the last turn's answer (what a redaction replaces)."""

    def _opening(self, observation: str) -> list[Message]:
        opening: list[Message] = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        opening.append({"role": "user", "content": observation})
        return opening

    def fork(self) -> PolicyContext:
        """An independent copy, for a branch forked here: its turns change the copy only.

        The message list is copied, not the messages: :meth:`add_turn` never changes a message in
        place (a redaction puts a new dict in its slot)."""
        copy = PolicyContext.__new__(PolicyContext)
        copy.system_prompt = self.system_prompt
        copy.messages = list(self.messages)
        copy._previous = self._previous
        return copy

    def add_turn(
        self, assistant: Message, observation: str, info: Mapping[str, Any], call_ids: Sequence[str] = ()
    ) -> list[Message]:
        """Add one turn: the policy's ``assistant`` message and the env's answer (``observation``, ``info``).

        ``call_ids`` are the ids of the action's native tool calls (empty for a text action).
        Returns the messages of this turn for the episode's record, which keeps what the context
        may later redact or drop.
        """
        messages = self.messages
        messages.append(assistant)
        redaction = info.get(REDACT_PREVIOUS_OBSERVATION)
        if redaction and self._previous is not None:
            for i in range(*self._previous):
                messages[i] = {**messages[i], "content": redaction}
        if info.get(FRESH_CONTEXT):
            self.messages = self._opening(observation)
            self._previous = (len(self.messages) - 1, len(self.messages))
            return [assistant, {"role": "user", "content": observation, FRESH_CONTEXT: True}]
        if not call_ids:
            reply = {"role": "user", "content": observation}
            messages.append(reply)
            self._previous = (len(messages) - 1, len(messages))
            return [assistant, reply]
        replies = tool_messages(observation, call_ids, info)
        messages.extend(replies)
        self._previous = (len(messages) - len(replies), len(messages))
        return [assistant, *replies]


def tool_messages(observation: str, call_ids: Sequence[str], info: Mapping[str, Any]) -> list[Message]:
    """One ``tool`` message per native tool call, as OpenAI-compatible servers require."""
    if len(call_ids) == 1:
        return [{"role": "tool", "tool_call_id": call_ids[0], "content": observation}]
    results = info.get(TOOL_RESULTS, [])
    return [
        {"role": "tool", "tool_call_id": call_id, "content": results[i]["content"] if i < len(results) else NOT_RUN}
        for i, call_id in enumerate(call_ids)
    ]
