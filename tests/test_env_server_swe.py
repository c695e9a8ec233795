"""A client that dies mid-episode frees its session: the SWE-v0 sandbox container is removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import docker

from horizongym.envs.remote.server import SERVER_CONFIG, create_app
from horizongym.sandboxes.reaper import LABEL, run_id
from horizongym.serverthread import ServerThread

CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys, websockets

    async def main():
        async with websockets.connect(sys.argv[1]) as ws:
            await ws.send(json.dumps({"type": "reset", "data": {"seed": 0}}))
            answer = json.loads(await ws.recv())
            print(answer["type"], answer["data"].get("code", ""), flush=True)
            await asyncio.sleep(600)

    asyncio.run(main())
    """
)


def containers_of_this_process(client: docker.DockerClient) -> set[str]:
    listed = client.containers.list(all=True, filters={"label": f"{LABEL}={run_id()}"}, sparse=True)
    return {container.id for container in listed}


def test_a_killed_clients_sandbox_is_removed() -> None:
    client = docker.from_env()
    app = create_app("SWE-v0", {"task_order": "by_seed", "warm_pool": False}, max_sessions=2)
    with ServerThread(app, **SERVER_CONFIG) as server:
        before = containers_of_this_process(client)
        url = f"ws://{server.host}:{server.port}/ws"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        player = subprocess.Popen([sys.executable, "-c", CLIENT, url], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert player.stdout is not None
            line = player.stdout.readline().strip()
            assert line == "observation", line
            started = containers_of_this_process(client) - before
            assert len(started) == 1, started  # the session's sandbox
            container = client.containers.get(started.pop())
            assert container.status == "running"
        finally:
            player.send_signal(signal.SIGKILL)
            player.wait(30)
        deadline = time.monotonic() + 30  # a bound on the wait, not a measured figure
        while container.id in containers_of_this_process(client) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert container.id not in containers_of_this_process(client)
        assert server.app.state.server.table.active == 0
