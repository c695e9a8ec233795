"""Forking SWE-v0 episodes, container files included, by both snapshot methods, on the real engine.

For ``archive`` and ``commit``: a snapshot taken after edits, restored, replays the same steps
(observations, rewards and what ``SWEEnv.replay_compares`` names, the hidden tests' verdict
included); two restores share nothing; a pickled snapshot restores in a freshly built env; and
once every env is closed and every snapshot released, no container or snapshot image of this
process is left. Fails (never skips) without a Docker engine: ``ensure_engine`` says how to fix it.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import pytest

import horizongym
from horizongym.envs.snapshot import Snapshot, release, restore, snapshot
from horizongym.envs.swe.env import SWEEnv
from horizongym.sandboxes import ensure_engine
from horizongym.sandboxes.reaper import LABEL, SNAPSHOT_KIND

METHODS = ("archive", "commit")
Actions = tuple[tuple[str, dict[str, Any]], ...]
BEFORE_FORK: Actions = (
    ("str_replace_editor", {"command": "create", "path": "/work/notes.py", "file_text": "VALUE = 1\n"}),
    ("str_replace_editor", {"command": "str_replace", "path": "/work/notes.py", "old_str": "1", "new_str": "2"}),
    ("bash", {"command": "rm -f \"$(git ls-files '*.py' | tail -1)\" && echo kept > /tmp/scratch.txt"}),
)
"""Edits before the fork: a new file, an edit the editor can undo, a deleted file, a file in /tmp."""
AFTER_FORK: Actions = (
    ("str_replace_editor", {"command": "undo_edit", "path": "/work/notes.py"}),
    ("bash", {"command": "cat notes.py /tmp/scratch.txt; git status --short | sort"}),
    ("submit", {}),
)
"""Actions run from the fork, twice: each observation is reproducible (no timings, no pids)."""


def call(name: str, arguments: dict[str, Any]) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def make(method: str) -> gym.Env[str, str]:
    return horizongym.make("SWE-v0", task_order="by_seed", command_timeout=15.0, snapshot_method=method)


def sandbox_of(env: gym.Env[str, str]) -> Any:
    inner = env.unwrapped
    assert isinstance(inner, SWEEnv)
    return inner.episode.sandbox


def run(env: gym.Env[str, str], actions: tuple[tuple[str, dict[str, Any]], ...]) -> list[dict[str, Any]]:
    """Each step's observation, reward and the info keys a replay compares."""
    outcomes = []
    for name, arguments in actions:
        observation, reward, terminated, truncated, info = env.step(call(name, arguments))
        compared = {key: info.get(key) for key in SWEEnv.replay_compares if key != "reward"}
        outcomes.append({"observation": observation, "reward": reward, "done": (terminated, truncated), **compared})
    return outcomes


@pytest.fixture(scope="module")
def engine() -> Any:
    return ensure_engine()


@pytest.fixture(scope="module", params=METHODS)
def forked(request: pytest.FixtureRequest, engine: Any) -> Iterator[tuple[str, gym.Env[str, str], Snapshot]]:
    """An episode (its trunk env) after :data:`BEFORE_FORK`, and a snapshot of it; released and closed after."""
    method = request.param
    trunk = make(method)
    trunk.reset(seed=0)
    for outcome in run(trunk, BEFORE_FORK):
        assert "error" not in outcome or outcome["error"] is None, outcome
    snap = snapshot(trunk)
    yield method, trunk, snap
    release(trunk, snap)
    trunk.close()


def test_a_restored_episode_replays_the_same_steps(forked: tuple[str, gym.Env[str, str], Snapshot]) -> None:
    method, trunk, snap = forked
    assert snap.turn == len(BEFORE_FORK)
    first = run(trunk, AFTER_FORK)
    assert first[1]["observation"].startswith("VALUE = 1\nkept\n"), first[1]["observation"]
    assert first[-1]["done"] == (True, False) and first[-1]["evaluation"] is not None
    assert "notes.py" in first[-1]["patch"]
    branch = make(method)
    try:
        restore(branch, snap)
        assert branch.unwrapped.state.turn == len(BEFORE_FORK)  # type: ignore[attr-defined]
        again = run(branch, AFTER_FORK)
    finally:
        branch.close()
    assert again == first


def test_two_restores_share_nothing_and_a_pickled_snapshot_restores_in_a_new_env(
    forked: tuple[str, gym.Env[str, str], Snapshot],
) -> None:
    method, _, snap = forked
    copy = pickle.loads(pickle.dumps(snap))
    one, two = make(method), make(method)
    try:
        restore(one, snap)
        restore(two, copy)
        box_one, box_two = sandbox_of(one), sandbox_of(two)
        assert box_one is not box_two
        assert box_two.read_file("/work/notes.py") == b"VALUE = 2\n"
        assert box_two.read_file("/tmp/scratch.txt") == b"kept\n"
        run(one, (("bash", {"command": "echo branch one > only_one.txt && echo changed > /tmp/scratch.txt"}),))
        assert box_one.read_file("only_one.txt") == b"branch one\n"
        with pytest.raises(FileNotFoundError):
            box_two.read_file("only_one.txt")
        assert box_two.read_file("/tmp/scratch.txt") == b"kept\n"
        deleted = box_one.exec("git status --short | grep '^ D'").output
        assert deleted.strip() and deleted == box_two.exec("git status --short | grep '^ D'").output
    finally:
        one.close()
        two.close()


def test_a_commit_snapshot_released_while_a_branch_runs_goes_with_the_branch(engine: Any) -> None:
    trunk, branch = make("commit"), make("commit")
    try:
        trunk.reset(seed=1)
        run(trunk, BEFORE_FORK[:1])
        snap = snapshot(trunk)
        image = snap.state.own["episode"].sandbox.image
        assert engine.images.get(image).labels[f"{LABEL}.kind"] == SNAPSHOT_KIND
        restore(branch, snap)
        release(trunk, snap)  # the branch's container still runs from it: removed when the branch closes
        assert sandbox_of(branch).read_file("/work/notes.py") == b"VALUE = 1\n"
    finally:
        branch.close()
        trunk.close()
    assert not engine.images.list(name=image)


LEFT_OVER = """
import time
from horizongym.sandboxes.engine import shared_client
from horizongym.sandboxes.pool import close_shared_pools
from horizongym.sandboxes.reaper import LABEL, SNAPSHOT_KIND, run_id

def left_over():
    \"\"\"This process's containers and snapshot images still there, once its pools are closed.\"\"\"
    close_shared_pools()
    client = shared_client()
    owner = f"{LABEL}={run_id()}"
    images = client.images.list(filters={"label": [owner, f"{LABEL}.kind={SNAPSHOT_KIND}"]})
    for _ in range(50):  # a container whose removal docker has begun (auto-remove) is listed for a moment
        containers = client.containers.list(all=True, filters={"label": owner}, ignore_removed=True)
        if not containers:
            break
        time.sleep(0.2)
    return containers, images
"""

LEAK_CHILD = (
    LEFT_OVER
    + """
import json
import horizongym
from horizongym.envs.snapshot import release, restore, snapshot

def make(method):
    return horizongym.make("SWE-v0", task_order="by_seed", snapshot_method=method)

for method in ("archive", "commit"):
    trunk = make(method)
    trunk.reset(seed=0)
    trunk.step('<tool_call>{"name": "bash", "arguments": {"command": "echo x > new.txt"}}</tool_call>')
    snaps = [snapshot(trunk), snapshot(trunk)]
    branches = [make(method) for _ in range(3)]
    for branch, snap in zip(branches, [snaps[0], snaps[0], snaps[1]]):
        restore(branch, snap)
    release(trunk, snaps[0])  # two branches still run from it
    for env in [*branches, trunk]:
        env.close()
    release(trunk, snaps[1])
containers, images = left_over()
states = sorted(container.status for container in containers)
print(json.dumps({"containers": len(containers), "images": len(images), "states": states}))
"""
)


def test_nothing_of_ours_is_left_once_envs_are_closed_and_snapshots_released(engine: Any) -> None:
    """A process forks episodes by both methods (two snapshots, three branches each), closes every env
    and releases every snapshot: none of its containers or snapshot images is left, before its exit."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", LEAK_CHILD], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"containers": 0, "images": 0, "states": []}


TREE_CHILD = (
    LEFT_OVER
    + """
import json, sys
from horizongym.agents.scripted import expert_for
from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine

method = sys.argv[1]
recipe = EnvRecipe("SWE-v0", {"task_order": "by_seed", "snapshot_method": method})
with RolloutEngine(recipe, expert_for("SWE-v0"), concurrency=1, tree=2, branch_at="all", progress=False) as engine:
    episodes = engine.run_sync(1)
containers, images = left_over()
trunk = [e for e in episodes if e.branch == 0][0]
print(json.dumps({
    "trunk_turns": trunk.num_turns,
    "branches": sorted((e.branch, e.fork_turn, e.outcome, e.total_reward) for e in episodes if e.branch),
    "trunk_reward": trunk.total_reward,
    "containers": len(containers),
    "images": len(images),
}))
"""
)


@pytest.mark.parametrize("method", ["archive", "commit"])
def test_a_tree_rollout_of_swe_leaves_no_container_or_image(method: str, engine: Any) -> None:
    """The engine plays an SWE-v0 tree (the expert's trunk, forked after every turn): every branch ends as
    the trunk did (the expert's patch passes the hidden tests), and once the engine closes, none of the
    process's containers or snapshot images is left."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", TREE_CHILD, method], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    turns = report["trunk_turns"]
    assert turns >= 2 and report["trunk_reward"] > 0
    assert [(b, t) for b, t, _, _ in report["branches"]] == [(t, t) for t in range(1, turns)]
    assert all(
        outcome == "completed" and reward == report["trunk_reward"] for _, _, outcome, reward in report["branches"]
    )
    assert (report["containers"], report["images"]) == (0, 0)
