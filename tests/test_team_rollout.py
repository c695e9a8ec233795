"""Teams under the real engine and CLI: rollouts on SearchJudge-v0 and EmailInbox-v0 with the example
teams, a team of two tiny transformers members (token ids in the accounts), and ``team-graph``."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import horizongym
from horizongym.agents.base import Action, Message, Policy
from horizongym.agents.specs import make_policy
from horizongym.agents.team import TeamPolicy
from horizongym.cli import main
from horizongym.training.rollouts import read_episodes

EXAMPLES = Path(horizongym.__file__).parent / "agents" / "team" / "examples"


@pytest.mark.parametrize(
    ("env_id", "config"), [("SearchJudge-v0", "search_vote.json"), ("EmailInbox-v0", "email_vote.json")]
)
def test_rollout_with_a_team_matches_the_experts_majority(tmp_path: Path, env_id: str, config: str) -> None:
    team_out, expert_out = tmp_path / "team.jsonl", tmp_path / "expert.jsonl"
    common = ["rollout", env_id, "-n", "3", "--quiet"]
    assert main([*common, "--policy", f"team:{EXAMPLES / config}", "--out", str(team_out)]) == 0
    assert main([*common, "--policy", "expert", "--out", str(expert_out)]) == 0
    team = sorted(read_episodes(team_out), key=lambda e: e.seed)  # episodes are written as they finish
    experts = sorted(read_episodes(expert_out), key=lambda e: e.seed)
    assert [e.seed for e in team] == [e.seed for e in experts]
    # two experts outvote the random member, so the team plays the expert's episode
    assert [e.success for e in team] == [e.success for e in experts]
    assert [[s.action for s in e.steps] for e in team] == [[s.action for s in e.steps] for e in experts]
    for episode in team:
        assert episode.outcome == "completed"
        for step in episode.steps:
            trace = step.policy_trace
            assert trace is not None and trace["team"] in ("search-vote", "email-vote")
            assert [len(r) for r in trace["rounds"]] == [3, 3]
            assert trace["decision"]["kind"] == "majority" and trace["decision"]["action"] == step.action
            assert trace["tokens"]["per_kind"]["member"]["calls"] == 6
            assert trace["decision"]["winner"] in ("researcher", "checker", "searcher", "reviewer")
    svg_path = tmp_path / "turn.svg"
    assert main(["team-graph", str(team_out), "--episode", "0", "--turn", "2", "--out", str(svg_path)]) == 0
    root = ET.fromstring(svg_path.read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    circles = root.findall(".//{http://www.w3.org/2000/svg}circle")
    assert (
        len([c for c in circles if c.find("{http://www.w3.org/2000/svg}title") is not None]) == 6
    )  # 3 agents x 2 rounds


def test_team_graph_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "expert.jsonl"
    assert main(["rollout", "SearchJudge-v0", "-n", "1", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["team-graph", str(out), "--out", str(tmp_path / "x.svg")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no team trace" in err
    assert main(["team-graph", str(out), "--episode", "4", "--out", str(tmp_path / "x.svg")]) == 2
    assert main(["team-graph", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "x.svg")]) == 2
    assert not (tmp_path / "x.svg").exists()


def test_dropped_agent_is_drawn_hollow(tmp_path: Path) -> None:
    from horizongym.agents.team import GraphParameters
    from horizongym.agents.team.picture import turn_svg

    team = make_policy(f"team:{EXAMPLES / 'search_vote.json'}", "SearchJudge-v0")
    assert isinstance(team, TeamPolicy)
    parameters = GraphParameters.full(3, 2)
    parameters.active[1, 2] = False
    team.parameters = parameters
    env = horizongym.make("SearchJudge-v0")
    observation, info = env.reset(seed=0)
    action = asyncio.run(team.act([{"role": "user", "content": observation}], info["tools"], seed=0))
    root = ET.fromstring(turn_svg(action.trace or {}))
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "guesser, round 2: dropped" in titles and "guesser, round 1: spoke" in titles


class Recording(Policy):
    """Passes calls to a real policy and keeps its actions (to check the accounts against them)."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.actions: list[Action] = []

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        action = await self.inner.act(messages, tools, seed=seed)
        self.actions.append(action)
        return action

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_team_of_tiny_transformers_is_charged_by_token_ids(tmp_path: Path, tiny_model_dir: Path) -> None:
    from horizongym.agents.tiny import build_tiny_model

    other = build_tiny_model(tmp_path / "other", seed=1)
    config = tmp_path / "team.json"
    config.write_text(
        json.dumps(
            {
                "name": "tiny",
                "rounds": 2,
                "agents": [
                    {"name": "one", "policy": f"hf:{tiny_model_dir}", "prompt": "You are one.", "max_tokens": 6},
                    {"name": "two", "policy": f"hf:{other}", "prompt": "You are two.", "max_tokens": 5},
                ],
            }
        )
    )
    team = make_policy(f"team:{config}", "KeyChain-v0")
    assert isinstance(team, TeamPolicy)
    team.members = [Recording(m) for m in team.members]
    env = horizongym.make("KeyChain-v0")
    observation, info = env.reset(seed=0)
    try:
        action = asyncio.run(team.act([{"role": "user", "content": observation}], info["tools"], seed=3))
    finally:
        asyncio.run(team.aclose())
    tokens = (action.trace or {})["tokens"]
    for name, member in zip(("one", "two"), team.members, strict=True):
        assert isinstance(member, Recording) and len(member.actions) == 2
        prompt = sum(len(a.prompt_token_ids or []) for a in member.actions)
        completion = sum(len(a.token_ids or []) for a in member.actions)
        assert tokens["per_agent"][name] == {"prompt": prompt, "completion": completion, "calls": 2}
        assert 0 < completion <= 2 * (6 if name == "one" else 5)
    words = sum(len(str(m.get("content", "")).split()) for m in [{"content": observation}])
    assert tokens["prompt"] > 4 * words  # byte-level ids, far more than whitespace words
    assert tokens["base_prompt"] + sum(e["tokens"] for e in tokens["per_edge"]) == tokens["prompt"]
    assert action.token_ids is None and action.trace is not None
