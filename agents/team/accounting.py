"""Token accounts of a team turn: per agent, per edge, per round and per kind of call.

Each call is charged its prompt and completion tokens: the lengths of
``Action.prompt_token_ids`` / ``Action.token_ids`` when the policy returns them, else
:func:`count_tokens` of the text, ``len(text.split())`` — whitespace words, so scripted and
HTTP members are charged by words.

A member call's prompt is split into ``base`` (role prompt, env conversation, and the inbox's
fixed header and footer lines) and one share per incoming edge: the tokens of that edge's
``<message>`` line. Counted in words the parts add up exactly; when the policy reports the
prompt's token ids, the prompt's length is split in proportion to the words of each part
(``edge = round(P · w_edge / w_prompt)``, ``base = P − Σ edge``), since the policy's tokenizer is
not at hand. Edges are keyed ``(round, kind, source, target)`` as
:meth:`~horizongym.agents.team.graph.TeamGraph.edges` lists them (a temporal edge into round
``r`` has round ``r``). Call kinds: ``member``, ``retry`` (a rewrite the firewall asked for),
``auditor``, ``decision``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from horizongym.agents.base import Action, Message

CallKind = Literal["member", "decision", "auditor", "retry"]
EdgeKey = tuple[int, str, str, str]
"""``(round, kind, source name, target name)``."""


def count_tokens(text: str) -> int:
    """Whitespace words: how a member that reports no token ids is charged."""
    return len(text.split())


def prompt_words(messages: Sequence[Message]) -> int:
    """Words of every message's content, and of the tool calls an assistant message carries."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += count_tokens(content)
        if message.get("tool_calls"):
            total += count_tokens(json.dumps(message["tool_calls"], ensure_ascii=False))
    return total


def call_tokens(action: Action, messages: Sequence[Message]) -> tuple[int, int]:
    """``(prompt, completion)`` tokens of one call: token id counts when known, else words."""
    prompt = len(action.prompt_token_ids) if action.prompt_token_ids is not None else prompt_words(messages)
    completion = len(action.token_ids) if action.token_ids is not None else count_tokens(action.env_action())
    return prompt, completion


def split_prompt(prompt_tokens: int, total_words: int, edge_words: Mapping[EdgeKey, int]) -> dict[EdgeKey, int]:
    """Each edge's share of ``prompt_tokens`` (module docstring); exact when the prompt was counted in words."""
    if prompt_tokens == total_words:
        return dict(edge_words)
    scale = prompt_tokens / max(total_words, 1)
    return {edge: round(words * scale) for edge, words in edge_words.items()}


@dataclass
class _Tally:
    prompt: int = 0
    completion: int = 0
    calls: int = 0

    def add(self, prompt: int, completion: int, calls: int = 1) -> None:
        self.prompt += prompt
        self.completion += completion
        self.calls += calls

    def to_dict(self) -> dict[str, int]:
        return {"prompt": self.prompt, "completion": self.completion, "calls": self.calls}


@dataclass
class TokenAccounts:
    """What a team turn spent, summed as the calls are charged (module docstring)."""

    total: _Tally = field(default_factory=_Tally)
    base: _Tally = field(default_factory=_Tally)
    per_agent: dict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    per_round: dict[int, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    per_kind: dict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    per_edge: dict[EdgeKey, int] = field(default_factory=lambda: defaultdict(int))

    def charge(
        self,
        kind: CallKind,
        round_: int,
        prompt: int,
        completion: int,
        *,
        agent: str | None = None,
        edges: Mapping[EdgeKey, int] | None = None,
    ) -> None:
        """One call of ``kind`` in round ``round_``; ``edges`` is the prompt's share of each incoming edge."""
        self.total.add(prompt, completion)
        self.per_round[round_].add(prompt, completion)
        self.per_kind[kind].add(prompt, completion)
        if agent is not None:
            self.per_agent[agent].add(prompt, completion)
        shares = dict(edges or {})
        for edge, tokens in shares.items():
            self.per_edge[edge] += tokens
        if kind in ("member", "retry"):
            self.base.add(prompt - sum(shares.values()), 0)

    def to_dict(self) -> dict[str, Any]:
        """The trace's ``tokens`` entry (JSON-safe)."""
        return {
            "prompt": self.total.prompt,
            "completion": self.total.completion,
            "calls": self.total.calls,
            "base_prompt": self.base.prompt,
            "per_agent": {name: tally.to_dict() for name, tally in self.per_agent.items()},
            "per_edge": [
                {"round": r, "kind": kind, "source": source, "target": target, "tokens": tokens}
                for (r, kind, source, target), tokens in sorted(self.per_edge.items())
            ],
            "per_round": {str(r): tally.to_dict() for r, tally in sorted(self.per_round.items())},
            "per_kind": {kind: tally.to_dict() for kind, tally in self.per_kind.items()},
        }
