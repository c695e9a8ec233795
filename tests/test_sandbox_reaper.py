"""Leftover containers: after a process is killed with SIGKILL, none of its sandboxes is left once
the next start-up ran (bare sandboxes, and a rollout of 8 concurrent SWE-v0 episodes); SIGTERM,
SIGINT and a plain exit remove a process's own containers. The same for forks: a run's branch
containers and committed snapshot images, after SIGKILL and after a plain exit.

Counted by the run id label of the child process, so tests running in parallel (pytest-xdist)
never count, or reap, each other's containers. Real engine; fails (never skips) without one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from horizongym.sandboxes import ensure_base_image, ensure_engine
from horizongym.sandboxes.reaper import LABEL

CHILD = textwrap.dedent(
    """
    import sys, threading, time
    from horizongym.sandboxes import SandboxSpec
    from horizongym.sandboxes.docker import DockerSandbox
    from horizongym.sandboxes.reaper import run_id

    spec = SandboxSpec(image=sys.argv[1])
    boxes = []
    def start(n):
        for _ in range(n):
            boxes.append(DockerSandbox(spec))
    count = int(sys.argv[2])
    threads = [threading.Thread(target=start, args=(count // 4 or 1,)) for _ in range(min(count, 4))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(box.exec("echo up").output == "up\\n" for box in boxes)
    print(run_id(), len(boxes), flush=True)
    if sys.argv[3] == "wait":
        time.sleep(600)
    """
)

SWE_ROLLOUT = textwrap.dedent(
    """
    import sys
    from horizongym.agents.base import Action, Policy
    from horizongym.sandboxes.reaper import run_id
    from horizongym.tools import ToolCall
    from horizongym.training.rollouts import RolloutEngine
    from horizongym.training.rollouts.engine import EnvRecipe

    class Sleeper(Policy):
        async def act(self, messages, tools, *, seed=None):
            return Action(tool_calls=[ToolCall("bash", {"command": "sleep 600"})])

    print(run_id(), flush=True)
    recipe = EnvRecipe("SWE-v0", {"command_timeout": 900, "task_order": "by_seed"})
    with RolloutEngine(recipe, Sleeper(), concurrency=8, progress=False) as engine:
        engine.run_sync(8)
    """
)


@pytest.fixture(scope="module")
def client() -> Any:
    return ensure_engine()


@pytest.fixture(scope="module")
def image(client: Any) -> str:
    return ensure_base_image(client)


def owned_by(client: Any, owner: str) -> int:
    return len(client.containers.list(all=True, filters={"label": f"{LABEL}={owner}"}, ignore_removed=True))


def runs_command(container: Any, command: str) -> bool:
    """Whether ``command`` runs in ``container`` (False if the container went away meanwhile)."""
    import docker.errors

    try:
        return bool(container.exec_run(["pgrep", "-f", command]).exit_code == 0)
    except docker.errors.APIError:  # removed or stopped since it was listed (a pool replacing it)
        return False


def wait_for_busy_containers(
    client: Any, child: subprocess.Popen[str], owner: str, command: str, *, count: int, within: float
) -> list[Any]:
    """The running containers of ``owner`` in which ``command`` runs, once there are ``count`` of them."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and child.poll() is None:
        # ignore_removed: the SDK inspects each listed container, and a pool may remove one meanwhile
        filters = {"label": f"{LABEL}={owner}", "status": "running"}
        running = client.containers.list(filters=filters, ignore_removed=True)
        busy = [c for c in running if runs_command(c, command)]
        if len(busy) >= count:
            return busy
        time.sleep(1.0)
    child.kill()
    pytest.fail(f"{count} containers did not get to run {command!r}: {child.communicate(timeout=30)[1][-3000:]}")


def start_child(image: str, count: int, then: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, image, str(count), then],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert child.stdout is not None
    line = child.stdout.readline().split()
    if len(line) != 2:
        child.kill()
        pytest.fail(f"the child did not start its sandboxes: {child.communicate(timeout=30)[1][-3000:]}")
    assert int(line[1]) == count
    return child, line[0]


def test_sigkill_leaves_containers_that_the_next_start_up_removes(image: str, client: Any) -> None:
    child, owner = start_child(image, 8, "wait")
    assert owned_by(client, owner) == 8
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    # SIGKILL cannot be caught; containers whose attach connection closed stop and remove
    # themselves, and the next start-up reaps whatever is left
    assert owned_by(client, owner) <= 8
    starter = "from horizongym.sandboxes import SandboxSpec, open_sandbox\nimport sys\n"
    starter += "open_sandbox(SandboxSpec(image=sys.argv[1]), backend='docker').close()"
    done = subprocess.run([sys.executable, "-c", starter, image], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert owned_by(client, owner) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_remove_the_process_containers(image: str, client: Any, signum: int) -> None:
    child, owner = start_child(image, 2, "wait")
    assert owned_by(client, owner) == 2
    child.send_signal(signum)
    child.wait(timeout=60)
    if signum == signal.SIGTERM:
        assert child.returncode == -signal.SIGTERM  # the default action still happens after the clean-up
    assert owned_by(client, owner) == 0


def test_a_plain_exit_removes_the_process_containers(image: str, client: Any) -> None:
    child, owner = start_child(image, 2, "exit")
    child.wait(timeout=60)
    assert child.returncode == 0
    assert owned_by(client, owner) == 0


def test_sigkill_during_8_concurrent_swe_episodes_leaves_nothing_after_the_next_start(image: str, client: Any) -> None:
    from horizongym.envs.swe.environments import environment_image
    from horizongym.envs.swe.mining import embedded_instances

    environment_image(embedded_instances()[0].environment)  # built before the clock matters
    child = subprocess.Popen(
        [sys.executable, "-c", SWE_ROLLOUT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        owner = child.stdout.readline().strip()
        busy = wait_for_busy_containers(client, child, owner, "sleep 600", count=8, within=240)
    except BaseException:
        child.kill()  # never leave a rollout (and its containers) behind a failed test
        raise
    assert len(busy) == 8
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    starter = "from horizongym.sandboxes import SandboxSpec, open_sandbox\nimport sys\n"
    starter += "open_sandbox(SandboxSpec(image=sys.argv[1]), backend='docker').close()"
    done = subprocess.run([sys.executable, "-c", starter, image], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert owned_by(client, owner) == 0


SNAPSHOT_CHILD = textwrap.dedent(
    """
    import sys, time
    from horizongym.sandboxes import SandboxSpec, tar_files
    from horizongym.sandboxes.docker import DockerSandbox
    from horizongym.sandboxes.reaper import run_id

    trunk = DockerSandbox(SandboxSpec(image=sys.argv[1], files=tar_files({"a.txt": "a"})))
    trunk.exec("echo b > b.txt")
    snaps = [trunk.snapshot("commit"), trunk.snapshot("commit")]
    branches = [DockerSandbox.restore(snap) for snap in snaps]
    assert all(box.read_file("b.txt") == b"b\\n" for box in branches)
    print(run_id(), *[snap.image for snap in snaps], flush=True)
    if sys.argv[2] == "wait":
        time.sleep(600)
    """
)


def snapshot_images_of(client: Any, owner: str) -> int:
    return len(client.images.list(filters={"label": [f"{LABEL}={owner}", f"{LABEL}.kind=snapshot"]}))


@pytest.mark.parametrize("then", ["wait", "exit"])
def test_snapshot_images_and_branches_of_a_dead_or_finished_run_are_removed(image: str, client: Any, then: str) -> None:
    """SIGKILL: its branch containers and committed snapshot images go at the next start-up; a plain
    exit (snapshots never released) removes them itself."""
    child = subprocess.Popen(
        [sys.executable, "-c", SNAPSHOT_CHILD, image, then], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline().split()
    if len(line) != 3:
        child.kill()
        pytest.fail(f"the child did not fork its sandbox: {child.communicate(timeout=30)[1][-3000:]}")
    owner = line[0]
    if then == "wait":
        assert owned_by(client, owner) == 3 and snapshot_images_of(client, owner) == 2
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert snapshot_images_of(client, owner) == 2  # nothing removes them but the next start-up
        starter = "from horizongym.sandboxes import SandboxSpec, open_sandbox\nimport sys\n"
        starter += "open_sandbox(SandboxSpec(image=sys.argv[1]), backend='docker').close()"
        done = subprocess.run([sys.executable, "-c", starter, image], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        assert child.wait(timeout=60) == 0, child.communicate(timeout=30)[1][-3000:]
    assert owned_by(client, owner) == 0
    assert snapshot_images_of(client, owner) == 0
