"""Containment on the real engine: hostile commands are stopped within their limit + 2 s.

Each hostile command runs in sandbox A while sandbox B (same limits, started at the same time)
runs a command of its own: B must be unaffected, A must work again afterwards, and the host
(this process, the engine) must not notice. A machine without an engine fails, never skips.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from horizongym.sandboxes import ExecResult, Limits, SandboxSpec, ensure_base_image, ensure_engine
from horizongym.sandboxes.docker import DockerSandbox

LIMITS = Limits(memory_mb=256, pids=64, file_size_mb=64, workdir_mb=256, cpus=1.0)
SLACK_S = 2.0


@pytest.fixture(scope="module")
def client() -> Any:
    return ensure_engine()


@pytest.fixture(scope="module")
def pair(client: Any) -> Iterator[tuple[DockerSandbox, DockerSandbox]]:
    spec = SandboxSpec(image=ensure_base_image(client), limits=LIMITS)
    boxes: list[DockerSandbox] = []
    threads = [threading.Thread(target=lambda: boxes.append(DockerSandbox(spec, client=client))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(boxes) == 2
    yield boxes[0], boxes[1]
    for box in boxes:
        box.close()


def contained(pair: tuple[DockerSandbox, DockerSandbox], client: Any, command: str, timeout: float) -> ExecResult:
    """Run ``command`` in A while B works; check B, A and the host afterwards; A's result."""
    victim, bystander = pair
    victim.reset()
    outcome: dict[str, Any] = {}

    def attack() -> None:
        start = time.monotonic()
        outcome["result"] = victim.exec(command, timeout=timeout)
        outcome["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=attack)
    thread.start()
    time.sleep(0.05)
    during = bystander.exec("python3 -c 'print(sum(range(10**5)))'; echo ok > b.txt; cat b.txt", timeout=30)
    thread.join(timeout + 30)
    assert not thread.is_alive(), "the sandbox did not answer"
    assert during.exit_code == 0 and during.output == "4999950000\nok\n", during
    assert outcome["elapsed"] < timeout + SLACK_S, outcome
    after = victim.exec("echo recovered; ls /proc | grep -c '^[0-9]'", timeout=10)
    assert after.output.startswith("recovered\n"), after
    assert int(after.output.split()[1]) < 10, after  # nothing the attack started is left
    assert subprocess.run(["true"], timeout=5).returncode == 0  # the host can still fork
    assert client.ping()
    return outcome["result"]


def test_fork_bomb_is_stopped_by_the_pids_limit(pair: tuple[DockerSandbox, DockerSandbox], client: Any) -> None:
    result = contained(pair, client, ":(){ :|:& };:", timeout=10)
    assert result.limit == "pids", result


def test_python_fork_bomb_is_stopped_by_the_pids_limit(pair: tuple[DockerSandbox, DockerSandbox], client: Any) -> None:
    result = contained(pair, client, "python3 -c 'import os\nwhile True: os.fork()'", timeout=10)
    assert result.limit == "pids", result


def test_memory_bomb_is_stopped_by_the_memory_limit(pair: tuple[DockerSandbox, DockerSandbox], client: Any) -> None:
    result = contained(pair, client, "python3 -c 'a = []\nwhile True: a.append(bytearray(1 << 24))'", timeout=20)
    assert result.limit == "memory" and result.exit_code == 128 + 9, result


def test_infinite_loop_is_stopped_by_the_timeout(pair: tuple[DockerSandbox, DockerSandbox], client: Any) -> None:
    result = contained(pair, client, "echo spinning; while true; do :; done", timeout=2)
    assert result.limit == "timeout" and result.timed_out and result.output == "spinning\n", result


def test_writing_a_1gb_file_is_stopped_by_the_file_size_limit(
    pair: tuple[DockerSandbox, DockerSandbox], client: Any
) -> None:
    result = contained(pair, client, "head -c 1G /dev/zero > big.bin", timeout=20)
    assert result.limit == "file_size", result
    size = pair[0].exec("stat -c %s big.bin").output.strip()
    assert int(size) <= LIMITS.file_size_mb * 1024 * 1024
    result = contained(
        pair, client, 'python3 -c \'f = open("big.bin", "wb")\nfor _ in range(1024): f.write(bytes(1 << 20))\'', 20
    )
    assert result.limit == "file_size" and "File too large" in result.output, result


def test_the_network_is_unreachable(pair: tuple[DockerSandbox, DockerSandbox], client: Any) -> None:
    socket_try = "python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), timeout=5)'"
    result = contained(pair, client, socket_try, timeout=10)
    assert result.exit_code != 0 and "unreachable" in result.output, result
    result = contained(pair, client, "echo > /dev/tcp/1.1.1.1/80 || curl -sS https://example.com", timeout=10)
    assert result.exit_code != 0, result
    interfaces = pair[0].exec("ls /sys/class/net").output.split()
    assert interfaces == ["lo"]
