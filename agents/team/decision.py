"""The decision node: how a team's last-round messages become one env action.

``majority`` reads each message with the env's action parser
(:func:`horizongym.tools.parse_action`) and groups messages by a normalised key: the tool calls'
names and canonical JSON arguments (``json.dumps(..., sort_keys=True)``) when the message holds
calls, else its stripped text. So ``<search>x</search>`` and a Hermes block calling
``search(query="x")`` are one vote. Each agent brings its ``votes`` weight; the key with the
largest sum wins, a tie going to the key whose first voter speaks earliest. The team's action is
the winning group's first message as its member produced it (text and structured tool calls).

``refer`` (the "final refer" node of AgentPrune / AgentDropout) asks one more policy: it reads the
env conversation (under its own role prompt) plus an inbox of the last round's messages and
returns the env action. Its call is charged to the ``decision`` account.

The parser needs the env's tag tools (``<name>text</name>``); the team sees only the OpenAI
schemas, so :func:`tag_arguments_of` takes every tool with exactly one property, a required
string, as a tag tool.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from horizongym.agents.base import Message
from horizongym.agents.team.messages import InboxMessage
from horizongym.agents.team.prompts import render_decision_inbox, with_role
from horizongym.tools import parse_action


def tag_arguments_of(tools: Sequence[dict[str, Any]]) -> dict[str, str]:
    """``{tool name: its one string argument}`` for the tools that can be written as ``<name>text</name>``."""
    tags: dict[str, str] = {}
    for schema in tools:
        function = schema.get("function", schema)
        parameters = function.get("parameters") or {}
        properties = parameters.get("properties") or {}
        required = parameters.get("required") or []
        one = required[0] if len(properties) == 1 and len(required) == 1 else None
        if one in properties and properties[one].get("type") == "string":
            tags[str(function.get("name"))] = str(one)
    return tags


def vote_key(text: str, tag_arguments: dict[str, str]) -> str:
    """What a message votes for: its calls' names and canonical arguments, else its stripped text."""
    parsed = parse_action(text, tag_arguments)
    if parsed.calls:
        return json.dumps([[c.name, c.arguments] for c in parsed.calls], sort_keys=True, ensure_ascii=False)
    return text.strip()


@dataclass(frozen=True)
class Ballot:
    """One message put to the vote: who wrote it, its text, the weight of its author's vote."""

    agent: str
    text: str
    votes: float = 1.0


@dataclass(frozen=True)
class VoteResult:
    """The winning ballot's index and each key's total votes."""

    winner: int
    key: str
    tally: dict[str, float]


def majority(ballots: Sequence[Ballot], tag_arguments: dict[str, str]) -> VoteResult:
    """Weighted plurality over normalised keys (module docstring); ``ballots`` in speaking order."""
    if not ballots:
        raise ValueError("a vote needs at least one message")
    keys = [vote_key(b.text, tag_arguments) for b in ballots]
    tally: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, (key, ballot) in enumerate(zip(keys, ballots, strict=True)):
        tally[key] = tally.get(key, 0.0) + ballot.votes
        first.setdefault(key, i)
    best = max(tally.values())
    key = min((k for k, v in tally.items() if v == best), key=first.__getitem__)
    return VoteResult(first[key], key, tally)


def refer_messages(prompt: str, conversation: Sequence[Message], inbox: Sequence[InboxMessage]) -> list[Message]:
    """What the "final refer" policy reads: its prompt as the system message, the conversation, the inbox."""
    return [*with_role(prompt, conversation), {"role": "user", "content": render_decision_inbox(inbox)}]
