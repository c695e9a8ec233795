"""A team of role agents on a communication graph, acting as one :class:`~horizongym.agents.base.Policy`.

Each turn (AgentPrune, arXiv 2410.02506; AgentDropout, arXiv 2503.18891):

1. realise the graph: ``GraphParameters.realise(mode, rng)``, the rng seeded from the turn's
   ``seed`` when given, else the team's own generator (seeded from ``config.seed``); a team made by
   :meth:`TeamPolicy.with_graph` plays its one graph every turn;
2. for each round ``r`` call the active members in ``speaking_order(r)``; members whose in-round
   sources have all spoken are called together (one ``asyncio.gather`` per level of the round's
   DAG). Each reads its role prompt, the env conversation and an inbox of its temporal sources'
   round ``r − 1`` messages and its spatial sources' round ``r`` messages
   (:mod:`~horizongym.agents.team.prompts`); a dropped member is never called and is in no inbox;
3. with a firewall (AgentDropoutV2, arXiv 2602.23258), each draft is screened before anyone reads
   it: the firewall may ask for rewrites and may hide the message from later members and from the
   decision node. When at most one message of the whole turn survives, the turn is played again
   without the firewall (``"fallback": true`` in the trace; the first attempt's tokens still count);
4. the decision node (:mod:`~horizongym.agents.team.decision`) turns the last round's visible
   messages into the env action.

The action carries no token ids (the team's text is not one model's sample) and a JSON-safe
``trace``: the graph, every message, the decision and the token accounts
(:mod:`~horizongym.agents.team.accounting`).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from horizongym.agents.base import Action, ContextLengthExceeded, Message, Policy, PolicyError, PolicyUnavailable
from horizongym.agents.team.accounting import TokenAccounts, call_tokens, count_tokens, prompt_words, split_prompt
from horizongym.agents.team.config import TeamConfig, load_team_config
from horizongym.agents.team.decision import Ballot, majority, refer_messages, tag_arguments_of
from horizongym.agents.team.graph import GraphParameters, TeamGraph
from horizongym.agents.team.messages import AuditContext, InboxMessage, MessageFirewall, TeamMessage
from horizongym.agents.team.prompts import last_user_text, member_messages, message_line

MemberFactory = Callable[[str, float | None, int | None], Policy]
"""Builds a member from ``(spec, temperature, max_tokens)``."""


class NestedTeamError(ValueError):
    """A team member that is itself a team."""


def build_team(path: str | Path, make_member: MemberFactory, *, firewall: MessageFirewall | None = None) -> TeamPolicy:
    """The team a config file describes, its members built by ``make_member`` (a team in a team is refused)."""
    config, parameters = load_team_config(path)
    specs = [(f"agents.{a.name}", a.policy) for a in config.agents]
    if config.decision.kind == "refer" and config.decision.policy:
        specs.append(("decision", config.decision.policy))
    for where, spec in specs:
        if spec.startswith("team:"):
            raise NestedTeamError(f"team config {path}: field {where}.policy: a team cannot be a member of a team")
    members = [make_member(a.policy, a.temperature, a.max_tokens) for a in config.agents]
    refer = None
    if config.decision.kind == "refer" and config.decision.policy:
        refer = make_member(config.decision.policy, config.decision.temperature, config.decision.max_tokens)
    return TeamPolicy(config, members, parameters, refer=refer, firewall=firewall)


@dataclass
class _Said:
    """One member's message in one round, with the action it came from."""

    message: TeamMessage
    action: Action
    hidden: bool = False
    audits: list[dict[str, Any]] = field(default_factory=list)

    def entry(self) -> dict[str, Any]:
        m = self.message
        return {"agent": m.agent, "round": m.round, "text": m.text, "hidden": self.hidden, "audits": self.audits}


@dataclass
class _Turn:
    """What the members said in one play of the graph: ``said[r][agent index]``."""

    said: list[dict[int, _Said]]

    def visible(self, r: int, agent: int) -> _Said | None:
        said = self.said[r].get(agent)
        return None if said is None or said.hidden else said

    def surviving(self) -> int:
        return sum(not s.hidden for round_ in self.said for s in round_.values())

    def rounds(self, order: Sequence[Sequence[int]]) -> list[list[dict[str, Any]]]:
        return [[self.said[r][i].entry() for i in order[r] if i in self.said[r]] for r in range(len(self.said))]


class TeamPolicy(Policy):
    """See the module docstring."""

    def __init__(
        self,
        config: TeamConfig,
        members: Sequence[Policy],
        parameters: GraphParameters | None = None,
        *,
        refer: Policy | None = None,
        firewall: MessageFirewall | None = None,
        graph: TeamGraph | None = None,
    ) -> None:
        if len(members) != len(config.agents):
            raise ValueError(
                f"team {config.name} has {len(config.agents)} agents but {len(members)} members were given"
            )
        if config.decision.kind == "refer" and refer is None:
            raise ValueError(f"team {config.name}: a refer decision needs its policy")
        self.config = config
        self.name = f"team:{config.name}"
        self.members = list(members)
        self.refer = refer
        self.firewall = firewall
        self._parameters = parameters or GraphParameters.full(len(members), config.rounds)
        self._check_shape(self._parameters)
        self._graph = graph
        self._rng = np.random.default_rng(config.seed)
        self._closed = False

    # ----- the graph ------------------------------------------------------------------------
    @property
    def parameters(self) -> GraphParameters:
        """The graph parameters each turn realises (AgentDropout trains and replaces them)."""
        return self._parameters

    @parameters.setter
    def parameters(self, value: GraphParameters) -> None:
        self._check_shape(value)
        self._parameters = value

    @property
    def agent_names(self) -> list[str]:
        return [a.name for a in self.config.agents]

    def _check_shape(self, parameters: GraphParameters) -> None:
        want = (len(self.config.agents), self.config.rounds)
        if (parameters.n_agents, parameters.rounds) != want:
            raise ValueError(
                f"team {self.config.name}: graph for {parameters.n_agents} agents and {parameters.rounds} rounds, "
                f"the team has {want[0]} agents and {want[1]} rounds"
            )

    def with_graph(self, graph: TeamGraph) -> TeamPolicy:
        """A copy sharing members and config whose every turn plays exactly ``graph``."""
        if (graph.n_agents, graph.rounds) != (len(self.members), self.config.rounds):
            raise ValueError(
                f"team {self.config.name}: graph for {graph.n_agents} agents and {graph.rounds} rounds, "
                f"the team has {len(self.members)} agents and {self.config.rounds} rounds"
            )
        twin = copy.copy(self)
        twin._graph = graph
        return twin

    def realise(self, rng: np.random.Generator) -> TeamGraph:
        """This turn's graph: the fixed one of :meth:`with_graph`, else one realised from the parameters."""
        if self._graph is not None:
            return self._graph
        return self._parameters.realise(self.config.graph_mode, rng)

    # ----- one turn ---------------------------------------------------------------------------
    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        rng = np.random.default_rng(seed) if seed is not None else self._rng
        graph = self.realise(rng)
        base_seed = int(rng.integers(2**31))
        accounts = TokenAccounts()
        turn = await self._play(graph, messages, tools, base_seed, accounts, self.firewall)
        discarded = None
        if self.firewall is not None and turn.surviving() <= 1:
            discarded, turn = turn, await self._play(graph, messages, tools, base_seed, accounts, None)
        action, decision = await self._decide(graph, turn, messages, tools, base_seed, accounts)
        order = [graph.speaking_order(r) for r in range(graph.rounds)]
        trace: dict[str, Any] = {
            "team": self.config.name,
            "agents": self.agent_names,
            "graph": graph.to_dict(),
            "mode": self._mode_of(graph),
            "rounds": turn.rounds(order),
            "decision": decision,
            "tokens": accounts.to_dict(),
        }
        if self.firewall is not None:
            trace["fallback"] = discarded is not None
            if discarded is not None:
                trace["screened_rounds"] = discarded.rounds(order)
        return Action(text=action.text, tool_calls=list(action.tool_calls), trace=trace)

    def _mode_of(self, graph: TeamGraph) -> str:
        if self._graph is None:
            return self.config.graph_mode
        return "sampled" if graph.choices else "fixed"

    async def _play(
        self,
        graph: TeamGraph,
        conversation: list[Message],
        tools: list[dict[str, Any]],
        base_seed: int,
        accounts: TokenAccounts,
        firewall: MessageFirewall | None,
    ) -> _Turn:
        turn = _Turn([{} for _ in range(graph.rounds)])
        task = last_user_text(conversation)
        for r in range(graph.rounds):
            for level in _levels(graph, r):
                said = await asyncio.gather(
                    *(
                        self._speak(graph, turn, r, j, conversation, tools, base_seed, accounts, firewall, task)
                        for j in level
                    )
                )
                for j, one in zip(level, said, strict=True):
                    if one is not None:
                        turn.said[r][j] = one
        if not any(turn.said):
            raise PolicyError(f"team {self.config.name}: no member gave a message this turn")
        return turn

    def _inbox(
        self, graph: TeamGraph, turn: _Turn, r: int, j: int
    ) -> list[tuple[InboxMessage, tuple[int, str, str, str]]]:
        """Member ``j``'s inbox in round ``r``, each message with its edge key."""
        names = self.agent_names
        inbox = []
        for kind, sources, from_round in (
            ("temporal", graph.temporal_sources(r, j), r - 1),
            ("spatial", graph.spatial_sources(r, j), r),
        ):
            for i in sources:
                said = turn.visible(from_round, i)
                if said is not None:
                    message = InboxMessage(names[i], from_round, said.message.text)
                    inbox.append((message, (r, kind, names[i], names[j])))
        return inbox

    async def _speak(
        self,
        graph: TeamGraph,
        turn: _Turn,
        r: int,
        j: int,
        conversation: list[Message],
        tools: list[dict[str, Any]],
        base_seed: int,
        accounts: TokenAccounts,
        firewall: MessageFirewall | None,
        task: str,
    ) -> _Said | None:
        agent = self.config.agents[j]
        inbox = self._inbox(graph, turn, r, j)
        messages = member_messages(agent.name, agent.prompt, conversation, r, graph.rounds, [m for m, _ in inbox])
        edge_words = {edge: count_tokens(message_line(m)) for m, edge in inbox}
        seed = _member_seed(base_seed, r, j)
        drafts: dict[str, Action] = {}

        async def call(kind: str, prompt: list[Message]) -> TeamMessage:
            try:
                action = await self.members[j].act(prompt, tools, seed=seed)
            except PolicyError as exc:
                raise _named(exc, f"team {self.config.name}: member {agent.name} failed: {exc}") from exc
            tokens_in, tokens_out = call_tokens(action, prompt)
            edges = split_prompt(tokens_in, prompt_words(prompt), edge_words)
            accounts.charge(
                "retry" if kind == "retry" else "member", r, tokens_in, tokens_out, agent=agent.name, edges=edges
            )
            text = action.env_action()
            drafts[text] = action
            return TeamMessage(agent.name, r, text, tokens_in, tokens_out)

        draft = await call("member", messages)
        if firewall is None:
            return _Said(draft, drafts[draft.text]) if draft.text.strip() else None

        async def rewrite(feedback: str) -> TeamMessage:
            note = {"role": "user", "content": f"[auditor] {feedback}\nRewrite your message."}
            return await call("retry", [*messages, note])

        screened = await firewall.screen(draft, AuditContext(task, [m for m, _ in inbox]), rewrite)
        accounts.charge("auditor", r, screened.auditor_prompt_tokens, screened.auditor_completion_tokens, agent=None)
        final = screened.message
        if not final.text.strip():
            return None
        return _Said(final, drafts.get(final.text, Action(text=final.text)), screened.hidden, list(screened.audits))

    async def _decide(
        self,
        graph: TeamGraph,
        turn: _Turn,
        conversation: list[Message],
        tools: list[dict[str, Any]],
        base_seed: int,
        accounts: TokenAccounts,
    ) -> tuple[Action, dict[str, Any]]:
        """The env action from the last round that has a visible message, and the decision's trace entry."""
        names = self.agent_names
        for r in reversed(range(graph.rounds)):
            spoken = [(i, s) for i in graph.speaking_order(r) if (s := turn.visible(r, i)) is not None]
            if spoken:
                break
        else:
            raise PolicyError(f"team {self.config.name}: every member's message was hidden; nothing to decide on")
        if self.config.decision.kind == "majority":
            ballots = [Ballot(names[i], s.message.text, self.config.agents[i].votes) for i, s in spoken]
            vote = majority(ballots, tag_arguments_of(tools))
            winner = spoken[vote.winner][1].action
            chosen = Action(text=winner.text, tool_calls=list(winner.tool_calls))
            entry: dict[str, Any] = {
                "kind": "majority",
                "action": chosen.env_action(),
                "winner": names[spoken[vote.winner][0]],
                "tally": [{"key": key, "votes": votes} for key, votes in vote.tally.items()],
            }
            return chosen, entry
        assert self.refer is not None
        inbox = [InboxMessage(names[i], r, s.message.text) for i, s in spoken]
        prompt = refer_messages(self.config.decision.prompt, conversation, inbox)
        try:
            action = await self.refer.act(prompt, tools, seed=_member_seed(base_seed, graph.rounds, 0))
        except PolicyError as exc:
            raise _named(exc, f"team {self.config.name}: the refer decision failed: {exc}") from exc
        tokens_in, tokens_out = call_tokens(action, prompt)
        accounts.charge("decision", r, tokens_in, tokens_out)
        chosen = Action(text=action.text, tool_calls=list(action.tool_calls))
        return chosen, {"kind": "refer", "action": chosen.env_action()}

    async def aclose(self) -> None:
        """Close each member (and the refer policy) once."""
        if self._closed:
            return
        self._closed = True
        seen: set[int] = set()
        for policy in [*self.members, *([self.refer] if self.refer is not None else [])]:
            if id(policy) not in seen:
                seen.add(id(policy))
                await policy.aclose()


def _levels(graph: TeamGraph, r: int) -> list[list[int]]:
    """Round ``r``'s speakers grouped by DAG level: a level's members read only earlier levels."""
    level: dict[int, int] = {}
    for j in graph.speaking_order(r):
        level[j] = 1 + max((level[i] for i in graph.spatial_sources(r, j)), default=-1)
    groups: list[list[int]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for j, depth in level.items():
        groups[depth].append(j)
    return groups


def _member_seed(base_seed: int, r: int, j: int) -> int:
    """Member ``j``'s sampling seed in round ``r`` of a turn (distinct per member and round)."""
    return int(np.random.SeedSequence([base_seed, r, j]).generate_state(1)[0])


def _named(exc: PolicyError, message: str) -> PolicyError:
    """``exc`` reworded to name the team and the member, keeping its kind (retryable, context limit, other)."""
    for kind in (PolicyUnavailable, ContextLengthExceeded):
        if isinstance(exc, kind):
            return kind(message)
    return PolicyError(message)
