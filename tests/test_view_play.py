"""Play in the browser's API (``/api/play/...``), driven over HTTP with Starlette's TestClient: a KeyChain
game played to the end with the expert's actions, stored in the play-out file and replayed by
``horizongym replay``; a continuation from turn 2 of a stored episode, stored as a branch in its run
file; the tool+arguments form; and every error, each one line with its status."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from horizongym.agents.experts.keychain import KeyChainExpert
from horizongym.training.rollouts import Episode, read_episodes
from horizongym.view.app import create_app
from horizongym.view.catalog import RunCatalog
from horizongym.view.play import BrowserPlay


def horizongym(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "horizongym", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def run(keychain_run_copy: Path) -> Path:
    return keychain_run_copy


@pytest.fixture
def client(run: Path, tmp_path: Path) -> Iterator[TestClient]:
    catalog = RunCatalog([run])
    app = Starlette(routes=BrowserPlay(catalog, tmp_path / "out" / "play.jsonl").routes())
    with TestClient(app) as test_client:
        yield test_client


def expert_move(observations: list[str], tools: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The KeyChain expert's next call (tool name, arguments) after these observations."""
    action = KeyChainExpert().decide([{"role": "user", "content": o} for o in observations], tools, None)
    call = action.tool_calls[0]
    return call.name, call.arguments


def post(client: TestClient, url: str, body: Any, status: int = 200) -> dict[str, Any]:
    answer = client.post(url, json=body)
    assert answer.status_code == status, answer.text
    return answer.json()


def test_a_keychain_game_played_to_the_end_is_stored_and_replays(client: TestClient, tmp_path: Path) -> None:
    session = post(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": 3})
    assert (session["env_id"], session["seed"], session["turn"], session["done"]) == ("KeyChain-v0", 3, 0, False)
    assert "Start key" in session["observation"]
    assert {t["function"]["name"] for t in session["tools"]} == {"lookup", "answer"}
    sid, seen, answer = session["session"], [session["observation"]], None
    while answer is None or not answer["done"]:
        name, arguments = expert_move(seen, session["tools"])
        text = f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"
        answer = post(client, f"/api/play/{sid}/step", {"action": text})
        seen.append(answer["observation"])
        assert answer["turn"] == len(seen) - 1
        assert answer["saved"] is None or answer["done"]
    assert (answer["terminated"], answer["reward"], answer["total_reward"]) == (True, 1.0, 1.0)
    assert answer["observation"] == "Correct." and answer["success"] is True
    saved = answer["saved"]
    play_out = tmp_path / "out" / "play.jsonl"
    assert saved == {"run": "r1", "path": str(play_out), "episode": 0, "branch": 0}

    (stored,) = read_episodes(play_out)
    assert (stored.env_id, stored.seed, stored.sample, stored.policy) == ("KeyChain-v0", 3, 0, "human")
    assert stored.branch == 0
    assert [s.observation for s in stored.steps] == seen[1:]
    assert (stored.success, stored.termination_reason, stored.outcome, stored.total_reward) == (
        True,
        "terminated",
        "completed",
        1.0,
    )
    assert stored.messages[0] == {"role": "user", "content": seen[0]}
    assert stored.steps[0].policy_seconds >= 0 and stored.seconds > 0
    # a second game of the same seed is the person's next sample, not a duplicate line
    again = post(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": 3})
    post(client, f"/api/play/{again['session']}/step", {"action": "<answer>0</answer>"})
    assert post(client, f"/api/play/{again['session']}/quit", {})["saved"]["episode"] == 1
    assert [e.sample for e in read_episodes(play_out)] == [0, 1]

    replayed = horizongym("replay", str(play_out), "--quiet")
    assert replayed.returncode == 0 and "all 2 replayed episodes match" in replayed.stdout, replayed.stdout


def test_the_tool_form_renders_a_tool_call_block(client: TestClient, tmp_path: Path) -> None:
    session = post(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": 0})
    name, arguments = expert_move([session["observation"]], session["tools"])
    answer = post(client, f"/api/play/{session['session']}/step", {"tool": name, "arguments": arguments})
    assert answer["observation"].startswith(f"{arguments['key']} = ")
    assert answer["reward_components"] == {} and answer["info_error"] is None
    # a tool the env does not have is refused before the env sees it; the env's own errors are the game's
    post(client, f"/api/play/{session['session']}/step", {"tool": "open", "arguments": {}}, 400)
    wrong = post(client, f"/api/play/{session['session']}/step", {"tool": "lookup", "arguments": {"kee": "x"}})
    assert wrong["info_error"] and not wrong["done"]
    saved = post(client, f"/api/play/{session['session']}/quit", {})["saved"]
    (stored,) = read_episodes(tmp_path / "out" / "play.jsonl")
    assert saved["episode"] == 0 and stored.num_turns == 2
    assert stored.steps[0].action == f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"
    assert (stored.termination_reason, stored.truncated) == ("max_turns", True)
    assert stored.termination_detail == "the person quit in the browser after turn 2"


def test_play_on_from_turn_2_stores_a_branch_in_the_run_file(client: TestClient, run: Path) -> None:
    recorded = read_episodes(run)
    original = recorded[0]
    session = post(client, "/api/play/from", {"run": "r0", "episode": 0, "turn": 2})
    assert session["turn"] == 2 and session["observation"] == original.steps[1].observation
    assert [Episode.model_validate({**original.model_dump(), "steps": session["replayed"]}).steps] == [
        original.steps[:2]
    ]
    answer = post(client, f"/api/play/{session['session']}/step", {"action": original.steps[-1].action})
    assert (answer["done"], answer["observation"], answer["turn"]) == (True, "Correct.", 3)
    assert answer["saved"] == {"run": "r0", "path": str(run), "episode": 2, "branch": 1}

    episodes = read_episodes(run)
    assert episodes[:2] == recorded and len(episodes) == 3
    branch = episodes[2]
    assert (branch.branch, branch.parent_branch, branch.fork_turn, branch.policy) == (1, 0, 2, "human")
    assert branch.steps[:2] == original.steps[:2] and branch.success is True
    replayed = horizongym("replay", str(run), "--quiet")
    assert replayed.returncode == 0 and "all 3 replayed episodes match" in replayed.stdout, replayed.stdout


def error(client: TestClient, url: str, body: Any, status: int) -> str:
    answer = client.post(url, content=body if isinstance(body, bytes) else json.dumps(body))
    assert answer.status_code == status, answer.text
    line = answer.json()["error"]
    assert isinstance(line, str) and "\n" not in line
    return line


def test_every_error_is_one_line_with_its_status(client: TestClient, run: Path) -> None:
    assert "did you mean: keychain-v0" in error(client, "/api/play/new", {"env_id": "KeyChian-v0"}, 400).lower()
    assert "seed" in error(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": -1}, 400)
    assert "seed" in error(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": "3"}, 400)
    assert "env_kwargs" in error(client, "/api/play/new", {"env_id": "KeyChain-v0", "env_kwargs": [1]}, 400)
    assert "cannot build KeyChain-v0" in error(
        client, "/api/play/new", {"env_id": "KeyChain-v0", "env_kwargs": {"colour": "red"}}, 400
    )
    assert "not JSON" in error(client, "/api/play/new", b"{env_id: KeyChain-v0", 400)
    assert "not an object" in error(client, "/api/play/new", b"[1]", 400)
    assert "no play session 'nope'" in error(client, "/api/play/nope/step", {"action": "x"}, 404)
    assert "no play session" in error(client, "/api/play/nope/quit", {}, 404)

    session = post(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": 1})
    sid = session["session"]
    assert "one of the two" in error(client, f"/api/play/{sid}/step", {}, 400)
    assert "one of the two" in error(client, f"/api/play/{sid}/step", {"action": "a", "tool": "lookup"}, 400)
    assert "arguments" in error(client, f"/api/play/{sid}/step", {"tool": "lookup", "arguments": "k"}, 400)
    assert "action" in error(client, f"/api/play/{sid}/step", {"action": 3}, 400)
    assert post(client, f"/api/play/{sid}/step", {"action": "<answer>0</answer>"})["done"]
    assert "is over" in error(client, f"/api/play/{sid}/step", {"action": "<answer>1</answer>"}, 409)
    assert post(client, f"/api/play/{sid}/quit", {})["saved"]["episode"] == 0  # the stored game, once
    assert "no play session" in error(client, f"/api/play/{sid}/step", {"action": "x"}, 404)

    assert "no run 'r9'" in error(client, "/api/play/from", {"run": "r9", "episode": 0, "turn": 0}, 404)
    assert "episode" in error(client, "/api/play/from", {"run": "r0", "episode": 7, "turn": 0}, 404)
    assert "turn" in error(client, "/api/play/from", {"run": "r0", "episode": 0, "turn": -1}, 400)
    turns = read_episodes(run)[0].num_turns
    assert "no turn 9" in error(client, "/api/play/from", {"run": "r0", "episode": 0, "turn": 9}, 400)
    assert "nothing comes after it" in error(client, "/api/play/from", {"run": "r0", "episode": 0, "turn": turns}, 400)


def test_a_run_that_no_longer_reproduces_is_refused(run: Path, tmp_path: Path) -> None:
    lines = run.read_text().splitlines()
    first = json.loads(lines[0])
    first["steps"][0]["observation"] = "a key the env never stored = 7"
    lines[0] = json.dumps(first)
    run.write_text("\n".join(lines) + "\n")
    app = Starlette(routes=BrowserPlay(RunCatalog([run]), tmp_path / "play.jsonl").routes())
    with TestClient(app) as client:
        line = error(client, "/api/play/from", {"run": "r0", "episode": 0, "turn": 2}, 409)
    assert line.startswith(f"cannot play on from {run}#0:2: the env no longer reproduces this episode at turn 1")


def test_idle_sessions_are_closed_and_stored(run: Path, tmp_path: Path) -> None:
    app = Starlette(
        routes=BrowserPlay(RunCatalog([run]), tmp_path / "play.jsonl", max_sessions=2, idle_s=3600).routes()
    )
    with TestClient(app) as client:
        first = post(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": 5})
        post(client, f"/api/play/{first['session']}/step", {"tool": "lookup", "arguments": {"key": "x"}})
        second = post(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": 6})
        post(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": 7})  # the cap: the oldest is closed
        assert "no play session" in error(client, f"/api/play/{first['session']}/step", {"action": "x"}, 404)
        assert post(client, f"/api/play/{second['session']}/quit", {}) == {"saved": None}  # no turn: nothing stored
    (stored,) = read_episodes(tmp_path / "play.jsonl")
    assert (stored.seed, stored.num_turns, stored.termination_reason) == (5, 1, "max_turns")
    assert "to open another (2 sessions at most)" in (stored.termination_detail or "")


def test_the_app_stores_what_was_played_when_it_shuts_down(run: Path, tmp_path: Path) -> None:
    catalog = RunCatalog([run])
    with TestClient(create_app(catalog, play=BrowserPlay(catalog, tmp_path / "play.jsonl"))) as client:
        session = post(client, "/api/play/new", {"env_id": "KeyChain-v0", "seed": 4})
        post(client, f"/api/play/{session['session']}/step", {"tool": "lookup", "arguments": {"key": "x"}})
        assert not (tmp_path / "play.jsonl").exists()
    (stored,) = read_episodes(tmp_path / "play.jsonl")
    assert (stored.seed, stored.num_turns, stored.policy) == (4, 1, "human")
    assert "the app stopped after turn 1" in (stored.termination_detail or "")
