"""SWE-v0 episodes stopped by each sandbox limit are stored, read back, counted by ``show``, and
never run again on ``--resume`` (the real Docker engine, the embedded library's tasks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker

from horizongym.agents.base import Action, Message
from horizongym.agents.scripted import ScriptedPolicy
from horizongym.tools import ToolCall
from horizongym.training.rollouts import EnvRecipe, Episode, EpisodeStore, RolloutEngine, read_episodes

LIMIT_COMMANDS = {
    "command_timeout": "sleep 100",
    "process_limit": "python3 -c 'import os\nwhile True: os.fork()'",
    "memory_limit": "python3 -c 'a = []\nwhile True: a.append(bytearray(1 << 24))'",
    "file_size_limit": "head -c 1G /dev/zero > big.bin",
}


class CountsTurns(ScriptedPolicy):
    """A scripted policy that counts the turns it played (a resumed run must play none)."""

    name = "limits"
    turns = 0


class RunsOneCommand(CountsTurns):
    """Runs ``command`` in the sandbox."""

    def __init__(self, command: str) -> None:
        self.command = command

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        self.turns += 1
        return Action(tool_calls=[ToolCall("bash", {"command": self.command})])


class KillsItsSandbox(CountsTurns):
    """Asks the container's name (its hostname), kills that container from outside, then runs a command."""

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        self.turns += 1
        if not any(m["role"] == "assistant" for m in messages):  # the first turn of each attempt
            return Action(tool_calls=[ToolCall("bash", {"command": "hostname"})])
        hostname = str(messages[-1]["content"]).strip()
        docker.from_env().containers.get(hostname).kill()
        return Action(tool_calls=[ToolCall("bash", {"command": "echo still here"})])


def run(policy: CountsTurns, store: EpisodeStore, seed: int, *, resume: bool = False) -> list[Episode]:
    # 2 s for the command that must time out; the others must meet their own limit first, even on a
    # loaded machine (a memory bomb on two busy cores can take longer than 2 s to reach 1 GB)
    timeout = 2.0 if getattr(policy, "command", None) == LIMIT_COMMANDS["command_timeout"] else 60.0
    recipe = EnvRecipe("SWE-v0", {"task_order": "by_seed", "command_timeout": timeout})
    with RolloutEngine(recipe, policy, concurrency=1, store=store, progress=False) as engine:
        return engine.run_sync(1, seed=seed, resume=resume)


def test_limit_stopped_episodes_round_trip_and_are_not_run_again(tmp_path: Path) -> None:
    path = tmp_path / "limits.jsonl"
    policies: dict[str, CountsTurns] = {reason: RunsOneCommand(cmd) for reason, cmd in LIMIT_COMMANDS.items()}
    policies["sandbox_died"] = KillsItsSandbox()
    with EpisodeStore(path) as store:
        for seed, policy in enumerate(policies.values()):
            (episode,) = run(policy, store, seed)
            assert episode.truncated and not episode.terminated

    stored = {e.seed: e for e in read_episodes(path)}
    assert [stored[seed].termination_reason for seed in range(len(policies))] == list(policies)
    for episode in stored.values():
        assert episode.termination_detail, episode.termination_reason
        assert episode.error is None
        if episode.termination_reason == "sandbox_died":  # killed on every try: an infrastructure failure
            assert episode.outcome == "infra_error" and episode.success is None and len(episode.attempts) == 2
        else:
            assert episode.outcome == "truncated" and episode.success is False

    shown = subprocess.run(
        [sys.executable, "-m", "horizongym", "show", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert " 5 " in shown or "| 5" in shown, shown
    for reason in policies:
        assert reason in shown, shown

    turns_before = {reason: policy.turns for reason, policy in policies.items()}
    with EpisodeStore(path) as store:
        for seed, policy in enumerate(policies.values()):
            assert run(policy, store, seed, resume=True) == []
    assert {reason: policy.turns for reason, policy in policies.items()} == turns_before
    assert len(read_episodes(path)) == len(policies)
    assert all(json.loads(line)["termination_reason"] in policies for line in path.read_text().splitlines())
