"""``horizongym train ENV --policy team:CONFIG``: AgentDropout learns a team's graph on real env episodes.

The team: two scripted experts and a ``random`` member worth three votes, so whenever it speaks in
the last round it outvotes both experts. Dropping it is what pays; the learned graph must drop it,
score no lower than the full graph on held-out tasks, spend fewer prompt tokens, and play under
``horizongym rollout --policy team:OUT/team.json``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from horizongym.agents.base import Action, Message, Policy, PolicyUnavailable
from horizongym.agents.scripted import expert_for
from horizongym.agents.team import GraphParameters, TeamConfig, TeamGraph, TeamPolicy
from horizongym.cli import main
from horizongym.training.agentdropout.env_play import EnvPlay, EnvPlayError
from horizongym.training.rollouts import EnvRecipe, read_episodes

SMALL = ["--node-batches", "2", "--node-batch-size", "6", "--edge-batches", "2", "--edge-batch-size", "6"]


EXAMPLES = Path(__file__).resolve().parent.parent / "agents" / "team" / "examples"
ADVERSARY = EXAMPLES / "search_adversary.json"
"""Two experts and a random ``persuader`` worth three votes, two rounds, a majority vote."""


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("horizongym: error: ") and "\n" not in err, err
    return err


def test_train_drops_the_persuasive_member_and_the_learned_team_plays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", "SearchJudge-v0", "--policy", f"team:{ADVERSARY}", "--out", str(out), *SMALL]
    assert main([*argv, "--eval-queries", "6", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("team search-adversary on SearchJudge-v0: ") and "persuader (round 2)" in printed
    assert {p.name for p in out.iterdir()} == {"graph.json", "team.json", "log.jsonl", "summary.json"}

    learned = GraphParameters.load(out / "graph.json")
    assert not learned.active[-1, 2]  # the persuader is silent in the round the vote reads
    assert learned.active[-1, :2].all()
    assert learned.metadata["agentdropout"]["config"]["node_batch_size"] == 6
    assert learned.metadata["train_seeds"] == list(range(12))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["batch"]) for r in log] == [("node", 0), ("node", 1), ("edge", 0), ("edge", 1)]

    summary = json.loads((out / "summary.json").read_text())
    full = summary["full"]
    assert summary["eval_queries"] == 6 and summary["eval_env_kwargs"] == {"split": "test"}
    for mode in ("sampled", "deterministic"):
        figures = summary["learned"][mode]
        assert figures["accuracy"] >= full["accuracy"]
        assert figures["prompt_tokens"] < full["prompt_tokens"]
        assert figures["edges"] < full["edges"]
    assert summary["learned"]["deterministic"]["accuracy"] > full["accuracy"]  # the expert answer now wins
    assert summary["training_cost"]["plays"] == 24 and summary["training_cost"]["prompt_tokens"] > 0
    assert "persuader" in summary["dropped"][-1]

    team_config = json.loads((out / "team.json").read_text())
    assert team_config["graph"] == "graph.json" and TeamConfig.model_validate(team_config).graph_mode == "deterministic"

    episodes = tmp_path / "learned.jsonl"
    rollout = ["rollout", "SearchJudge-v0", "--policy", f"team:{out / 'team.json'}", "-n", "2", "--quiet"]
    assert main([*rollout, "--out", str(episodes)]) == 0
    played = list(read_episodes(episodes))
    assert len(played) == 2 and all(e.outcome == "completed" for e in played)
    for episode in played:
        for step in episode.steps:
            trace = step.policy_trace or {}
            assert trace["mode"] == "deterministic"
            assert trace["graph"]["active"] == learned.active.astype(int).tolist()
            assert all(entry["agent"] != "persuader" for entry in trace["rounds"][-1])
            persuader_calls = trace["tokens"]["per_agent"].get("persuader", {"calls": 0})["calls"]
            assert persuader_calls == int(learned.active[:, 2].sum())  # a dropped round costs it nothing


def test_email_inbox_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    team = EXAMPLES / "email_vote.json"
    one_batch = ["--node-batches", "1", "--node-batch-size", "2", "--edge-batches", "1", "--edge-batch-size", "2"]
    argv = ["train", "EmailInbox-v0", "--policy", f"team:{team}", "--out", str(out), *one_batch]
    assert main([*argv, "--eval-queries", "2", "--quiet"]) == 0
    assert "team email-vote on EmailInbox-v0" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training_cost"]["plays"] == 4 and summary["train_queries"] == 2
    assert (out / "graph.json").is_file() and json.loads((out / "team.json").read_text())["graph"] == "graph.json"


def test_train_team_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    team = ADVERSARY
    out = tmp_path / "run"
    base = ["train", "SearchJudge-v0", "--policy", f"team:{team}", "--out", str(out), "--quiet"]
    assert main([*base, "--resume"]) == 2
    assert "--resume is not supported for team training" in one_line_error(capsys)
    assert main([*base, "--steps", "5"]) == 2
    assert "--steps: not a team-training setting" in one_line_error(capsys)
    assert main([*base, "--node-batches", "0", "--edge-batches", "0"]) == 2
    assert "nothing to train" in one_line_error(capsys)
    assert main([*base, "--alpha", "1.5"]) == 2
    assert "--alpha" in one_line_error(capsys)
    missing = ["train", "SearchJudge-v0", "--policy", f"team:{tmp_path / 'none.json'}", "--out", str(out)]
    assert main(missing) == 2
    assert "cannot read the team config" in one_line_error(capsys)
    (tmp_path / "bad.json").write_text(json.dumps({"name": "x", "rounds": 0, "agents": []}))
    assert main(["train", "SearchJudge-v0", "--policy", f"team:{tmp_path / 'bad.json'}", "--out", str(out)]) == 2
    assert "field rounds" in one_line_error(capsys)
    out.mkdir()
    (out / "summary.json").write_text("{}")
    assert main(base) == 2
    assert "already holds a training run" in one_line_error(capsys)
    assert not (out / "graph.json").exists()


class Unreachable(Policy):
    """A member whose server is gone: every call fails as infrastructure."""

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        raise PolicyUnavailable("the model server at http://127.0.0.1:9 refused the connection")


def test_an_infrastructure_failure_raises_instead_of_scoring_zero() -> None:
    config = TeamConfig.model_validate(
        {"name": "t", "rounds": 1, "agents": [{"name": "a", "policy": "expert"}, {"name": "b", "policy": "x"}]}
    )
    team = TeamPolicy(config, [expert_for("SearchJudge-v0"), Unreachable()])
    play = EnvPlay(team, EnvRecipe("SearchJudge-v0"), max_attempts=2)
    graph = team.parameters.realise("fixed")
    with pytest.raises(EnvPlayError, match=r"task seed 3 ended in infra_error after 2 tries .*refused"):
        asyncio.run(play(graph, 3))
    alone = graph.active.copy()
    alone[0, 1] = False  # without the unreachable member the episode is the team's, and counts
    result = asyncio.run(play(TeamGraph(alone, graph.spatial, graph.temporal), 3))
    assert result.utility > 0 and result.prompt_tokens > 0 and result.completion_tokens > 0
