"""An episode as an ATIF trajectory: the Agent Trajectory Interchange Format of Harbor.

Spec: Harbor's RFC 0001, "Agent Trajectory Interchange Format (ATIF) Specification"
(``rfcs/0001-trajectory-format.md`` of github.com/harbor-framework/harbor; Harbor's validating
models are ``harbor.models.trajectories``). This module writes ``schema_version`` "ATIF-v1.6" and
uses only fields that exist in v1.6 (the RFC's current v1.7 still reads v1.6 documents); the
fields used, as the RFC states them:

* **root**: ``schema_version``; ``session_id``; ``agent`` (``name``, ``version``, optional
  ``model_name``, ``tool_definitions`` (OpenAI function schemas, since v1.5) and ``extra``);
  ``steps`` (at least one); ``final_metrics``; ``extra``. No other key at any level.
* **step**: ``step_id`` (1, 2, 3, ... in order); ``timestamp`` (ISO 8601); ``source``
  (``system``, ``user`` or ``agent``); ``message`` (a string); for ``agent`` steps only:
  ``tool_calls`` (``tool_call_id``, ``function_name``, ``arguments`` (an object)) and
  ``metrics``; ``observation`` (``results``: ``source_call_id``, the id of one of *this
  step's* tool calls or absent, and ``content``); ``extra``.
* **metrics** (per agent step): ``prompt_tokens``, ``completion_tokens``,
  ``prompt_token_ids`` (v1.4), ``completion_token_ids`` (v1.3), ``logprobs``.
* **final_metrics**: ``total_prompt_tokens``, ``total_completion_tokens``, ``total_steps``, ``extra``.

How an :class:`~horizongym.training.rollouts.trajectory.Episode` maps onto it: the system prompt is a
``system`` step and the first observation a ``user`` step. Each turn is one ``agent`` step: the
assistant's text as ``message``, its tool calls (native calls with their ids; calls the env parsed
out of a text action with ids ``call_<turn>_<i>``), and as ``observation`` what the policy was shown
next: one result per ``tool`` message, paired with its call, or one unpaired result holding the
env's text answer. Token ids and log-probs go to the step's ``metrics`` where the policy kept them;
rewards, reward components, errors and timings to its ``extra``. An action whose step never returned
(the env raised or ran out of time) is a last ``agent`` step with no observation. The episode's env,
seed, task, outcome and reward are the root's ``extra``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from horizongym import __version__
from horizongym.agents.base import Message
from horizongym.training.rollouts.trajectory import Episode, Step

ATIF_VERSION: Final = "ATIF-v1.6"
AGENT_NAME: Final = "horizongym"


def atif_trajectory(episode: Episode, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """``episode`` as one ATIF trajectory (a JSON object), offering ``tools`` (OpenAI schemas).

    Raises ValueError for an episode with no messages (its env failed before the first
    observation): a trajectory needs at least one step.
    """
    messages = episode.messages
    if not messages:
        raise ValueError(
            f"episode (seed {episode.seed}, sample {episode.sample}) of {episode.env_id} has no messages: "
            "its env failed before the first observation"
        )
    clock = _Clock(episode.started_at)
    steps: list[dict[str, Any]] = []
    index = 0
    while index < len(messages) and messages[index].get("role") in ("system", "user"):
        message = messages[index]
        steps.append(_step(len(steps) + 1, clock.now(), message["role"], _text(message.get("content"))))
        index += 1
    for turn, step in enumerate(episode.steps):
        if index < len(messages) and messages[index].get("role") == "assistant":
            assistant = messages[index]
            index += 1
        else:  # a record without its assistant message: the action is the step's
            assistant = {"role": "assistant", "content": step.action}
        replies: list[Message] = []
        while index < len(messages) and messages[index].get("role") != "assistant":
            replies.append(messages[index])
            index += 1
        clock.advance(step.policy_seconds)
        steps.append(_agent_step(len(steps) + 1, clock.now(), turn, step, assistant, replies))
        clock.advance(step.env_seconds)
    if index < len(messages):  # the action whose step raised or ran out of time: it has no answer
        unfinished = messages[index]
        record = _agent_step(len(steps) + 1, clock.now(), len(episode.steps), None, unfinished, [])
        record["extra"] = {"unfinished": True, **({"error": episode.error} if episode.error else {})}
        steps.append(record)
    return {
        "schema_version": ATIF_VERSION,
        "session_id": session_id(episode),
        "agent": _agent(episode, tools),
        "steps": steps,
        "final_metrics": _final_metrics(episode, len(steps)),
        "extra": _episode_facts(episode),
    }


def session_id(episode: Episode) -> str:
    """What names the episode: ``KeyChain-v0/seed-3/sample-0/expert``."""
    policy = f"/{episode.policy}" if episode.policy else ""
    return f"{episode.env_id}/seed-{episode.seed}/sample-{episode.sample}{policy}"


class _Clock:
    """The wall-clock time of each step: the episode's start plus the policy and env time before it."""

    def __init__(self, started_at: float) -> None:
        self.time = started_at

    def advance(self, seconds: float) -> None:
        self.time += seconds

    def now(self) -> str | None:
        """ISO 8601 in UTC; None for records that lack a start time."""
        return datetime.fromtimestamp(self.time, UTC).isoformat() if self.time > 0 else None


def _step(step_id: int, timestamp: str | None, source: str, message: str) -> dict[str, Any]:
    step: dict[str, Any] = {"step_id": step_id}
    if timestamp is not None:
        step["timestamp"] = timestamp
    step["source"] = source
    step["message"] = message
    return step


def _agent_step(
    step_id: int, timestamp: str | None, turn: int, step: Step | None, assistant: Message, replies: list[Message]
) -> dict[str, Any]:
    record = _step(step_id, timestamp, "agent", _text(assistant.get("content")))
    calls = _tool_calls(turn, step, assistant)
    if calls:
        record["tool_calls"] = calls
    if replies:
        record["observation"] = {"results": [_result(reply) for reply in replies]}
    if step is not None:
        if metrics := _metrics(step):
            record["metrics"] = metrics
        record["extra"] = _step_facts(step)
    return record


def _tool_calls(turn: int, step: Step | None, assistant: Message) -> list[dict[str, Any]]:
    """The action's native tool calls with their ids, else the calls the env parsed from its text."""
    native = assistant.get("tool_calls") or []
    if native:
        return [
            {
                "tool_call_id": str(call.get("id")),
                "function_name": call["function"]["name"],
                "arguments": _arguments(call["function"].get("arguments")),
            }
            for call in native
        ]
    parsed = step.tool_calls if step is not None else ()
    return [
        {
            "tool_call_id": call.get("id") or f"call_{turn}_{i}",
            "function_name": str(call.get("name")),
            "arguments": _arguments(call.get("arguments")),
        }
        for i, call in enumerate(parsed)
    ]


def _arguments(value: Any) -> dict[str, Any]:
    """A call's arguments as the object ATIF wants (OpenAI messages carry them as JSON text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"arguments": value}
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"arguments": value}


def _result(reply: Message) -> dict[str, Any]:
    """One observation result: a tool message paired with its call, or the env's text answer."""
    result: dict[str, Any] = {}
    if reply.get("role") == "tool" and reply.get("tool_call_id"):
        result["source_call_id"] = str(reply["tool_call_id"])
    result["content"] = _text(reply.get("content"))
    return result


def _metrics(step: Step) -> dict[str, Any]:
    """The turn's tokens and log-probs, where the policy kept them (a local model's)."""
    metrics: dict[str, Any] = {}
    if step.prompt_token_ids is not None:
        metrics["prompt_tokens"] = len(step.prompt_token_ids)
        metrics["prompt_token_ids"] = list(step.prompt_token_ids)
    if step.token_ids is not None:
        metrics["completion_tokens"] = len(step.token_ids)
        metrics["completion_token_ids"] = list(step.token_ids)
    if step.logprobs is not None:
        metrics["logprobs"] = list(step.logprobs)
    return metrics


def _step_facts(step: Step) -> dict[str, Any]:
    """The turn's record beyond the conversation: reward, its components, errors, timings."""
    facts: dict[str, Any] = {
        "turn": step.turn,
        "reward": step.reward,
        "reward_components": dict(step.reward_components),
        "policy_seconds": step.policy_seconds,
        "env_seconds": step.env_seconds,
    }
    if step.error is not None:
        facts["error"] = step.error
    errors = [
        {"name": result.get("name"), "id": result.get("id"), "error": result["error"]}
        for result in step.tool_results
        if result.get("error")
    ]
    if errors:
        facts["tool_errors"] = errors
    if step.terminated:
        facts["terminated"] = True
    if step.truncated:
        facts["truncated"] = True
    if step.info:
        facts["info"] = _jsonable(step.info)
    return facts


def _agent(episode: Episode, tools: list[dict[str, Any]]) -> dict[str, Any]:
    agent: dict[str, Any] = {"name": AGENT_NAME, "version": __version__}
    if tools:
        agent["tool_definitions"] = tools
    if episode.policy:
        agent["extra"] = {"policy": episode.policy}
    return agent


def _final_metrics(episode: Episode, total_steps: int) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    prompts = [len(s.prompt_token_ids) for s in episode.steps if s.prompt_token_ids is not None]
    completions = [len(s.token_ids) for s in episode.steps if s.token_ids is not None]
    if prompts:
        metrics["total_prompt_tokens"] = sum(prompts)
    if completions:
        metrics["total_completion_tokens"] = sum(completions)
    metrics["total_steps"] = total_steps
    components: dict[str, float] = {}
    for step in episode.steps:
        for name, value in step.reward_components.items():
            components[name] = components.get(name, 0.0) + value
    metrics["extra"] = {
        "total_reward": episode.total_reward,
        "reward_components": components,
        "turns": episode.num_turns,
        "seconds": episode.seconds,
    }
    return metrics


def _episode_facts(episode: Episode) -> dict[str, Any]:
    """What identifies the episode and how it ended (horizongym's record, beyond ATIF's fields)."""
    facts: dict[str, Any] = {
        "env_id": episode.env_id,
        "env_kwargs": _jsonable(episode.env_kwargs),
        "seed": episode.seed,
        "sample": episode.sample,
        "task_id": episode.task_id,
        "policy": episode.policy,
        "success": episode.success,
        "total_reward": episode.total_reward,
        "outcome": episode.outcome,
        "trainable": episode.trainable,
        "termination_reason": episode.termination_reason,
    }
    for key in ("termination_detail", "error"):
        if (value := getattr(episode, key)) is not None:
            facts[key] = value
    if episode.attempts:
        facts["attempts"] = [attempt.model_dump(mode="json") for attempt in episode.attempts]
    return facts


def _text(content: Any) -> str:
    """A message's content as text (None is empty; a list of parts is their text joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _jsonable(value: Any) -> Any:
    """``value`` as JSON values (what ``json.dumps`` cannot write becomes its text)."""
    return json.loads(json.dumps(value, default=str))
