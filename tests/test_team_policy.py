"""The team policy, layer by layer: inbox text, who reads whom, dropped agents, token accounts,
the decision node, config errors, ``with_graph`` and the firewall's calling side."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from horizongym.agents.base import Action, Message, Policy, PolicyError
from horizongym.agents.specs import PolicySpecError, make_policy
from horizongym.agents.team import (
    AuditContext,
    GraphParameters,
    InboxMessage,
    Screened,
    TeamConfig,
    TeamConfigError,
    TeamGraph,
    TeamMessage,
    TeamPolicy,
    load_team_config,
)
from horizongym.agents.team.decision import Ballot, majority, tag_arguments_of, vote_key
from horizongym.agents.team.prompts import INBOX_FOOTER, parse_inbox, render_inbox
from horizongym.tools import ToolCall

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "search",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


class Scripted(Policy):
    """Replies ``{name}{round}`` (or what ``reply`` says) and records every conversation it was given."""

    def __init__(self, name: str, reply: Callable[[list[Message]], Action] | None = None) -> None:
        self.label = name
        self.calls: list[list[Message]] = []
        self.reply = reply
        self.closed = 0

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        self.calls.append(messages)
        if self.reply is not None:
            return self.reply(messages)
        header = messages[-1]["content"].split("\n")[0]  # "[team round R of T] You are NAME."
        return Action(text=f"{self.label}{header.split()[2]}")

    async def aclose(self) -> None:
        self.closed += 1


def team_config(names: list[str], rounds: int, **fields: Any) -> TeamConfig:
    agents = [{"name": n, "policy": "random", "prompt": f"role {n}"} for n in names]
    return TeamConfig.model_validate({"name": "t", "rounds": rounds, "agents": agents, **fields})


def graph(active: list[list[int]], spatial: list[Any], temporal: list[Any]) -> TeamGraph:
    n = len(active[0])
    return TeamGraph(
        active=np.array(active, dtype=bool),
        spatial=np.array(spatial, dtype=bool).reshape(len(active), n, n),
        temporal=np.array(temporal, dtype=bool).reshape(max(len(active) - 1, 0), n, n),
    )


CONVERSATION: list[Message] = [{"role": "system", "content": "ENV RULES"}, {"role": "user", "content": "Question: q"}]


def play(team: TeamPolicy, conversation: list[Message] = CONVERSATION, seed: int | None = 1) -> Action:
    return asyncio.run(team.act(conversation, [SEARCH_TOOL], seed=seed))


def test_inbox_round_trip_keeps_angle_brackets() -> None:
    inbox = [
        InboxMessage("alice", 0, "<search>x</search> a < b > c"),
        InboxMessage("bob", 1, 'line one\n<tool_call>{"name": "s"}</tool_call>'),
    ]
    text = render_inbox("carol", 1, 2, inbox)
    assert text.splitlines()[0] == "[team round 2 of 2] You are carol."
    assert '<message from="alice" round="1"><search>x</search> a < b > c</message>' in text
    assert text.endswith(INBOX_FOOTER)
    assert parse_inbox(text) == inbox
    assert parse_inbox(render_inbox("carol", 0, 1, [])) == []


def test_speaking_order_and_exact_member_prompts() -> None:
    # round 0: c -> a (a reads c); round 1: a -> b; temporal: b reads a's and c's round-0 messages, a its own
    g = graph(
        [[1, 1, 1], [1, 1, 1]],
        [[[0, 0, 0], [0, 0, 0], [1, 0, 0]], [[0, 1, 0], [0, 0, 0], [0, 0, 0]]],
        [[[1, 1, 0], [0, 0, 0], [0, 1, 0]]],
    )
    members = [Scripted("A"), Scripted("B"), Scripted("C")]
    team = TeamPolicy(team_config(["a", "b", "c"], 2), members).with_graph(g)
    action = play(team)
    assert g.speaking_order(0) == [1, 2, 0] and g.speaking_order(1) == [0, 1, 2]
    system = {"role": "system", "content": "role a\n\nENV RULES"}
    question = {"role": "user", "content": "Question: q"}
    assert members[0].calls[0] == [
        system,
        question,
        {
            "role": "user",
            "content": '[team round 1 of 2] You are a.\n<message from="c" round="1">C1</message>\n' + INBOX_FOOTER,
        },
    ]
    assert members[0].calls[1][-1]["content"] == (
        '[team round 2 of 2] You are a.\n<message from="a" round="1">A1</message>\n' + INBOX_FOOTER
    )
    assert members[1].calls[1][-1]["content"] == (
        '[team round 2 of 2] You are b.\n<message from="a" round="1">A1</message>\n'
        '<message from="c" round="1">C1</message>\n<message from="a" round="2">A2</message>\n' + INBOX_FOOTER
    )
    assert members[1].calls[0][-1]["content"] == "[team round 1 of 2] You are b.\n" + INBOX_FOOTER
    assert members[2].calls[1][-1]["content"] == "[team round 2 of 2] You are c.\n" + INBOX_FOOTER
    rounds = action.trace["rounds"]  # type: ignore[index]
    assert [[e["agent"] for e in r] for r in rounds] == [["b", "c", "a"], ["a", "b", "c"]]
    assert action.trace["mode"] == "fixed"  # type: ignore[index]
    # no env system message: the role prompt alone is the system message
    play(team, [{"role": "user", "content": "Question: q"}])
    assert members[0].calls[-2][0] == {"role": "system", "content": "role a"}


def test_levels_of_a_round_are_called_together() -> None:
    started: list[str] = []
    gate = asyncio.Event()

    class Waits(Scripted):
        async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
            started.append(self.label)
            if len(started) == 2:
                gate.set()
            await asyncio.wait_for(gate.wait(), 5)  # only returns if both level-0 members run at once
            return Action(text=self.label)

    g = graph([[1, 1, 1]], [[[0, 0, 1], [0, 0, 1], [0, 0, 0]]], [])
    team = TeamPolicy(team_config(["a", "b", "c"], 1), [Waits("A"), Waits("B"), Waits("C")]).with_graph(g)
    assert play(team).text in ("A", "B", "C")
    assert started[:2] == ["A", "B"]


def test_dropped_agent_is_never_called_costs_nothing_and_is_in_no_prompt() -> None:
    parameters = GraphParameters.full(3, 2)
    parameters.active[:, 1] = False
    members = [Scripted("A"), Scripted("B"), Scripted("C")]
    team = TeamPolicy(team_config(["a", "b", "c"], 2), members, parameters)
    action = play(team)
    assert members[1].calls == []
    every_prompt = json.dumps([m for member in members for call in member.calls for m in call])
    assert 'from=\\"b\\"' not in every_prompt and "B1" not in every_prompt
    tokens = action.trace["tokens"]  # type: ignore[index]
    assert "b" not in tokens["per_agent"]
    assert all("b" not in (e["source"], e["target"]) for e in tokens["per_edge"])
    assert all(e["agent"] != "b" for r in action.trace["rounds"] for e in r)  # type: ignore[index]
    assert action.trace["graph"]["active"] == [[1, 0, 1], [1, 0, 1]]  # type: ignore[index]


def test_token_accounts_by_hand() -> None:
    # one round, x -> y. Each prompt: role "a b" (2 words) + "q1 q2 q3" (3) + header
    # "[team round 1 of 1] You are x." (8) + footer (13) = 26; y also reads
    # '<message from="x" round="1">one two</message>' (4 words): 30
    g = graph([[1, 1]], [[[0, 1], [0, 0]]], [])
    config = TeamConfig.model_validate(
        {
            "name": "t",
            "rounds": 1,
            "agents": [
                {"name": "x", "policy": "random", "prompt": "a b"},
                {"name": "y", "policy": "random", "prompt": "a b"},
            ],
        }
    )
    members = [Scripted("x", lambda m: Action(text="one two")), Scripted("y", lambda m: Action(text="three"))]
    action = play(TeamPolicy(config, members).with_graph(g), [{"role": "user", "content": "q1 q2 q3"}])
    assert len(INBOX_FOOTER.split()) == 13
    tokens = action.trace["tokens"]  # type: ignore[index]
    assert tokens["prompt"] == 56 and tokens["completion"] == 3 and tokens["calls"] == 2
    assert tokens["base_prompt"] == 52
    assert tokens["per_agent"] == {
        "x": {"prompt": 26, "completion": 2, "calls": 1},
        "y": {"prompt": 30, "completion": 1, "calls": 1},
    }
    assert tokens["per_edge"] == [{"round": 0, "kind": "spatial", "source": "x", "target": "y", "tokens": 4}]
    assert tokens["per_round"] == {"0": {"prompt": 56, "completion": 3, "calls": 2}}
    assert tokens["per_kind"] == {"member": {"prompt": 56, "completion": 3, "calls": 2}}


def test_token_ids_when_the_member_gives_them_and_proportional_edge_shares() -> None:
    g = graph([[1, 1]], [[[0, 1], [0, 0]]], [])
    # y's prompt is 30 words of which the edge is 4: with 60 prompt token ids the edge's share is 8
    members = [
        Scripted("x", lambda m: Action(text="one two", prompt_token_ids=list(range(52)), token_ids=[1, 2, 3])),
        Scripted("y", lambda m: Action(text="three", prompt_token_ids=list(range(60)), token_ids=[9])),
    ]
    config = TeamConfig.model_validate(
        {
            "name": "t",
            "rounds": 1,
            "agents": [
                {"name": "x", "policy": "random", "prompt": "a b"},
                {"name": "y", "policy": "random", "prompt": "a b"},
            ],
        }
    )
    tokens = play(TeamPolicy(config, members).with_graph(g), [{"role": "user", "content": "q1 q2 q3"}]).trace["tokens"]  # type: ignore[index]
    assert tokens["per_agent"]["x"] == {"prompt": 52, "completion": 3, "calls": 1}
    assert tokens["per_agent"]["y"] == {"prompt": 60, "completion": 1, "calls": 1}
    assert tokens["per_edge"][0]["tokens"] == 8 and tokens["base_prompt"] == 104


def test_majority_weights_ties_and_tool_call_normalisation() -> None:
    tags = tag_arguments_of([SEARCH_TOOL])
    assert tags == {"search": "query"}
    assert majority([Ballot("a", "x"), Ballot("b", "y"), Ballot("c", "y")], tags).winner == 1
    assert majority([Ballot("a", "x", 3), Ballot("b", "y"), Ballot("c", "y")], tags).winner == 0
    assert majority([Ballot("a", "x"), Ballot("b", "y")], tags).winner == 0  # tie: the earliest speaker
    assert majority([Ballot("a", "y", 2), Ballot("b", "x"), Ballot("c", "x")], tags).winner == 0  # tie at 2
    hermes = '<tool_call>{"name": "search", "arguments": {"query": "paris"}}</tool_call>'
    assert vote_key("<search> paris </search>", tags) == vote_key(hermes, tags)
    first = '<tool_call>{"name": "f", "arguments": {"a": 1, "b": [2]}}</tool_call>'
    second = 'I think so.\n<tool_call>{"name": "f", "arguments": {"b": [2], "a": 1}}</tool_call>'
    assert vote_key(first, tags) == vote_key(second, tags)
    assert vote_key("  plain answer \n", tags) == "plain answer"
    vote = majority(
        [Ballot("a", "<search>rome</search>"), Ballot("b", hermes), Ballot("c", "<search>paris</search>")], tags
    )
    assert vote.winner == 1 and vote.tally[vote.key] == 2


def test_majority_returns_the_winners_own_action() -> None:
    call = ToolCall("search", {"query": "paris"})
    members = [
        Scripted("a", lambda m: Action(text="<search>rome</search>")),
        Scripted("b", lambda m: Action(tool_calls=[call])),
        Scripted("c", lambda m: Action(text="<search>paris</search>")),
    ]
    action = play(TeamPolicy(team_config(["a", "b", "c"], 1), members))
    assert action.tool_calls == [call] and action.text == ""  # b speaks before c
    assert action.token_ids is None and action.prompt_token_ids is None
    assert action.trace["decision"]["winner"] == "b"  # type: ignore[index]


def test_refer_decision_reads_the_last_round_and_is_charged() -> None:
    refer = Scripted("judge", lambda m: Action(text="<search>final</search>"))
    members = [Scripted("A"), Scripted("B")]
    config = team_config(["a", "b"], 2, decision={"kind": "refer", "policy": "random", "prompt": "Decide."})
    team = TeamPolicy(config, members, refer=refer).with_graph(
        graph([[1, 1], [1, 1]], [[[0, 0], [0, 0]], [[0, 1], [0, 0]]], [[[0, 0], [0, 0]]])
    )
    action = play(team)
    assert action.text == "<search>final</search>"
    (messages,) = refer.calls
    assert messages[0] == {"role": "system", "content": "Decide.\n\nENV RULES"}
    assert messages[1] == {"role": "user", "content": "Question: q"}
    assert parse_inbox(messages[2]["content"]) == [InboxMessage("a", 1, "A2"), InboxMessage("b", 1, "B2")]
    tokens = action.trace["tokens"]  # type: ignore[index]
    decision_words = sum(len(m["content"].split()) for m in messages)
    assert tokens["per_kind"]["decision"] == {"prompt": decision_words, "completion": 1, "calls": 1}
    assert "judge" not in tokens["per_agent"]
    assert action.trace["decision"] == {"kind": "refer", "action": "<search>final</search>"}  # type: ignore[index]


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


GOOD = {"name": "t", "rounds": 2, "agents": [{"name": "a", "policy": "random"}, {"name": "b", "policy": "random"}]}


@pytest.mark.parametrize(
    ("data", "suffix", "says"),
    [
        ({**GOOD, "agents": [{"name": "a", "policy": "random"}] * 2}, ".json", "repeated: a"),
        ({**GOOD, "rounds": 0}, ".json", "field rounds:"),
        ({"name": "t", "agents": GOOD["agents"]}, ".json", "field rounds: Field required"),
        ({**GOOD, "decision": {"kind": "refer"}}, ".json", 'field decision: Value error, kind "refer" needs'),
        ({**GOOD, "agents": [{"name": "a", "policy": "random", "votes": 0}]}, ".json", "field agents.0.votes"),
        ({**GOOD, "colour": "red"}, ".json", "field colour: Extra inputs"),
        ("{not json", ".json", "is not valid JSON"),
        ("rounds = [", ".toml", "is not valid TOML"),
        (GOOD, ".yaml", "write it as .json or .toml"),
        ({**GOOD, "graph": "missing.json"}, ".json", "field graph: cannot read the team graph"),
    ],
)
def test_config_errors_are_one_line_naming_file_and_field(tmp_path: Path, data: Any, suffix: str, says: str) -> None:
    path = write(tmp_path / f"team{suffix}", data)
    with pytest.raises(TeamConfigError) as caught:
        load_team_config(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and says in message, message
    with pytest.raises(PolicySpecError, match="team config"):
        make_policy(f"team:{path}", "SearchJudge-v0")


def test_config_loads_toml_and_a_saved_graph_of_the_right_shape(tmp_path: Path) -> None:
    saved = GraphParameters.full(2, 2)
    saved.spatial_logits[:] = 3.0
    saved.save(tmp_path / "graph.json")
    write(
        tmp_path / "team.toml",
        'name = "t"\nrounds = 2\ngraph = "graph.json"\n[[agents]]\nname = "a"\npolicy = "random"\n'
        '[[agents]]\nname = "b"\npolicy = "expert"\nvotes = 2\n',
    )
    config, parameters = load_team_config(tmp_path / "team.toml")
    assert config.graph_mode == "deterministic" and config.agents[1].votes == 2
    assert np.array_equal(parameters.spatial_logits, saved.spatial_logits)
    GraphParameters.full(3, 2).save(tmp_path / "graph.json")
    with pytest.raises(TeamConfigError, match="is for 3 agents and 2 rounds, the team has 2 agents and 2 rounds"):
        load_team_config(tmp_path / "team.toml")


def test_a_team_inside_a_team_is_refused(tmp_path: Path) -> None:
    inner = write(tmp_path / "inner.json", GOOD)
    outer = write(tmp_path / "outer.json", {**GOOD, "agents": [{"name": "a", "policy": f"team:{inner}"}]})
    with pytest.raises(PolicySpecError, match=r"field agents\.a\.policy: a team cannot be a member of a team"):
        make_policy(f"team:{outer}", "SearchJudge-v0")
    with pytest.raises(PolicySpecError, match="unknown policy 'nope'"):
        make_policy(
            f"team:{write(tmp_path / 'bad.json', {**GOOD, 'agents': [{'name': 'a', 'policy': 'nope'}]})}", "X-v0"
        )


def test_with_graph_plays_that_graph_and_sampling_follows_the_seed() -> None:
    members = [Scripted("A"), Scripted("B"), Scripted("C")]
    team = TeamPolicy(team_config(["a", "b", "c"], 2, mode="sampled"), members)
    first, again = play(team, seed=5), play(team, seed=5)
    assert first.trace["graph"] == again.trace["graph"] and first.trace["mode"] == "sampled"  # type: ignore[index]
    assert first.trace["graph"]["choices"]  # type: ignore[index]
    graphs = {json.dumps(play(team, seed=s).trace["graph"]) for s in range(8)}  # type: ignore[index]
    assert len(graphs) > 1
    chosen = team.parameters.realise("sampled", np.random.default_rng(123))
    fixed = team.with_graph(chosen)
    assert fixed.members is not team.members or fixed.members == team.members
    assert all(m is n for m, n in zip(fixed.members, team.members, strict=True))
    for seed in range(3):
        assert play(fixed, seed=seed).trace["graph"] == chosen.to_dict()  # type: ignore[index]
    with pytest.raises(ValueError, match="graph for 2 agents"):
        team.with_graph(GraphParameters.full(2, 2).realise("fixed"))
    with pytest.raises(ValueError, match="graph for 3 agents and 1 rounds"):
        team.parameters = GraphParameters.full(3, 1)


def test_aclose_closes_each_member_once() -> None:
    shared = Scripted("S")
    refer = Scripted("R", lambda m: Action(text="x"))
    config = team_config(["a", "b"], 1, decision={"kind": "refer", "policy": "random"})
    team = TeamPolicy(config, [shared, shared], refer=refer)
    asyncio.run(team.aclose())
    asyncio.run(team.with_graph(GraphParameters.full(2, 1).realise("fixed")).aclose())
    asyncio.run(team.aclose())
    assert shared.closed == 1 and refer.closed == 1


def test_member_errors_name_the_member() -> None:
    def broken(messages: list[Message]) -> Action:
        raise PolicyError("server said no")

    team = TeamPolicy(team_config(["a", "b"], 1), [Scripted("A"), Scripted("B", broken)])
    with pytest.raises(PolicyError, match="team t: member b failed: server said no"):
        play(team)
    silent = TeamPolicy(team_config(["a", "b"], 1), [Scripted(n, lambda m: Action(text=" ")) for n in "ab"])
    with pytest.raises(PolicyError, match="team t: no member gave a message"):
        play(silent)


class HideWord:
    """A test double firewall: asks once for a rewrite of any draft containing ``word``, then hides it."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.contexts: list[AuditContext] = []

    async def screen(
        self, draft: TeamMessage, context: AuditContext, rewrite: Callable[[str], Awaitable[TeamMessage]]
    ) -> Screened:
        self.contexts.append(context)
        audits: list[dict[str, Any]] = []
        if self.word in draft.text:
            audits.append({"flagged": True, "text": draft.text})
            draft = await rewrite(f"do not say {self.word}")
        hidden = self.word in draft.text
        return Screened(draft, hidden, audits, auditor_prompt_tokens=10, auditor_completion_tokens=2)


def test_firewall_rewrites_hides_and_charges_the_auditor() -> None:
    def stubborn(messages: list[Message]) -> Action:
        return Action(text="BAD again" if messages[-1]["content"].startswith("[auditor]") else "BAD")

    def fixes(messages: list[Message]) -> Action:
        return Action(text="good" if messages[-1]["content"].startswith("[auditor]") else "BAD first")

    members = [Scripted("a", stubborn), Scripted("b", fixes), Scripted("C")]
    firewall = HideWord("BAD")
    # one round: a -> b -> c
    g = graph([[1, 1, 1]], [[[0, 1, 1], [0, 0, 1], [0, 0, 0]]], [])
    team = TeamPolicy(team_config(["a", "b", "c"], 1), members, firewall=firewall).with_graph(g)
    action = play(team)
    rewrite_call = members[0].calls[1]
    assert rewrite_call[:-1] == members[0].calls[0]
    assert rewrite_call[-1] == {"role": "user", "content": "[auditor] do not say BAD\nRewrite your message."}
    inbox_of_c = parse_inbox(members[2].calls[0][-1]["content"])
    assert inbox_of_c == [InboxMessage("b", 0, "good")]  # a's hidden message is in no inbox
    assert firewall.contexts[2] == AuditContext("Question: q", inbox_of_c)
    assert action.text in ("good", "C1")
    entries = {e["agent"]: e for e in action.trace["rounds"][0]}  # type: ignore[index]
    assert entries["a"]["hidden"] and entries["a"]["text"] == "BAD again" and not entries["b"]["hidden"]
    assert entries["b"]["audits"] == [{"flagged": True, "text": "BAD first"}]
    tally = action.trace["decision"]["tally"]  # type: ignore[index]
    assert all("BAD" not in row["key"] for row in tally)
    tokens = action.trace["tokens"]  # type: ignore[index]
    assert tokens["per_kind"]["auditor"] == {"prompt": 30, "completion": 6, "calls": 3}
    assert tokens["per_kind"]["retry"]["calls"] == 2 and tokens["per_agent"]["a"]["calls"] == 2
    assert action.trace["fallback"] is False  # type: ignore[index]


def test_firewall_fallback_reruns_without_it_when_at_most_one_message_survives() -> None:
    members = [Scripted("a", lambda m: Action(text="BAD")), Scripted("b", lambda m: Action(text="BAD")), Scripted("C")]
    team = TeamPolicy(team_config(["a", "b", "c"], 1), members, firewall=HideWord("BAD"))
    action = play(team)
    assert action.trace["fallback"] is True  # type: ignore[index]
    assert [e["hidden"] for e in action.trace["rounds"][0]] == [False, False, False]  # type: ignore[index]
    assert [e["hidden"] for e in action.trace["screened_rounds"][0]] == [True, True, False]  # type: ignore[index]
    assert action.text == "BAD"  # the unaudited rerun's majority
    assert action.trace["tokens"]["per_kind"]["member"]["calls"] == 6  # type: ignore[index]
