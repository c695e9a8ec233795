"""The docker backend against the real engine: exec, files, reset, pool, labels, reaper, images.

No mocks: every test talks to dockerd through the SDK. A machine without an engine fails these
tests (``ensure_engine`` says how to fix it); it does not skip them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from horizongym.sandboxes import (
    ImageBuildError,
    Limits,
    SandboxError,
    SandboxSpec,
    derive_image,
    ensure_base_image,
    ensure_engine,
    open_sandbox,
    tar_files,
)
from horizongym.sandboxes.docker import DockerSandbox
from horizongym.sandboxes.pool import SandboxPool
from horizongym.sandboxes.reaper import LABEL, process_start_time, reap_leftovers, run_id

FILES = {"README.md": "hello\n", "pkg/mod.py": "VALUE = 1\n", "pkg/__init__.py": ""}


@pytest.fixture(scope="session")
def client() -> Any:
    return ensure_engine()


@pytest.fixture(scope="session")
def base_image(client: Any) -> str:
    return ensure_base_image(client)


@pytest.fixture(scope="module")
def spec(base_image: str) -> SandboxSpec:
    return SandboxSpec(
        image=base_image,
        files=tar_files(FILES),
        env=(("GREETING", "hi there"),),
        limits=Limits(output_bytes=2000, memory_mb=512),
    )


@pytest.fixture(scope="module")
def module_box(spec: SandboxSpec) -> Iterator[DockerSandbox]:
    box = DockerSandbox(spec)
    yield box
    box.close()


@pytest.fixture
def box(module_box: DockerSandbox) -> DockerSandbox:
    module_box.reset()
    return module_box


def test_exec_runs_bash_in_the_workdir_as_an_unprivileged_user(box: DockerSandbox) -> None:
    result = box.exec('pwd; id -u; echo "$GREETING"; cat README.md; python3 -c "import pkg.mod as m; print(m.VALUE)"')
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["/work", "1000", "hi there", "hello", "1"]
    assert not result.timed_out and not result.truncated and result.limit is None
    assert box.isolated is True


def test_exit_status_and_stderr_come_back_in_order(box: DockerSandbox) -> None:
    result = box.exec("echo out; echo err >&2; exit 3")
    assert result.exit_code == 3
    assert result.output == "out\nerr\n"
    assert box.exec("kill -TERM $$").exit_code == 128 + 15


def test_output_is_cut_head_and_tail(box: DockerSandbox) -> None:
    result = box.exec("seq 1 100000")
    assert result.truncated
    assert result.output.startswith("1\n2\n3\n")
    assert result.output.endswith("99999\n100000\n")
    assert "bytes of output cut" in result.output
    assert len(result.output) < 2000 + 100


def test_timeout_kills_the_process_group_and_returns_partial_output(box: DockerSandbox) -> None:
    start = time.monotonic()
    result = box.exec("echo before; sleep 30 & sleep 30; echo never", timeout=1.0)
    assert time.monotonic() - start < 3.0
    assert result.timed_out and result.limit == "timeout"
    assert result.exit_code == 128 + 9
    assert result.output == "before\n"
    assert "sleep" not in box.exec("ps -eo comm").output


def test_a_background_job_does_not_hold_up_the_command(box: DockerSandbox) -> None:
    start = time.monotonic()
    result = box.exec("sleep 30 > /dev/null 2>&1 & echo started; sleep 60 &", timeout=20)
    assert time.monotonic() - start < 2.0
    assert result.exit_code == 0 and result.output == "started\n"
    assert "sleep" in box.exec("ps -eo comm").output


def test_commands_cannot_kill_the_exec_server(box: DockerSandbox) -> None:
    box.exec("kill -9 -1; pkill -9 python3; pkill -9 -f horizongym")
    assert box.exec("echo alive").output == "alive\n"


def test_the_exec_run_path_gives_the_same_results(box: DockerSandbox) -> None:
    fast = box.exec("echo $GREETING; pwd; id -u")
    plain = box.exec("echo $GREETING; pwd; id -u", path="exec_run")
    assert plain.exit_code == fast.exit_code == 0
    assert plain.output == fast.output
    slow = box.exec("echo a; sleep 10", timeout=1.0, path="exec_run")
    assert slow.timed_out and slow.limit == "timeout"


def test_write_and_read_files(box: DockerSandbox) -> None:
    box.write_file("notes/a.txt", b"relative")
    box.write_file("/work/notes/b.bin", bytes(range(256)))
    box.write_file("/tmp/deep/c.txt", b"in tmp")
    assert box.read_file("/work/notes/a.txt") == b"relative"
    assert box.read_file("notes/b.bin") == bytes(range(256))
    assert box.read_file("/tmp/deep/c.txt") == b"in tmp"
    assert box.exec("stat -c %U notes/a.txt; cat notes/a.txt").output == "agent\nrelative"
    big = os.urandom(3 * 1024 * 1024)
    box.write_file("big.bin", big)
    assert box.read_file("big.bin") == big
    assert box.read_file("/etc/os-release").startswith(b"PRETTY_NAME")


def test_file_errors_are_the_usual_exceptions(box: DockerSandbox) -> None:
    with pytest.raises(FileNotFoundError):
        box.read_file("missing.txt")
    with pytest.raises(IsADirectoryError):
        box.read_file("pkg")
    with pytest.raises(OSError):
        box.write_file("/etc/forbidden", b"x")  # read-only root filesystem
    with pytest.raises(TypeError):
        box.write_file("text.txt", "not bytes")  # type: ignore[arg-type]


def test_reset_restores_the_starting_files_and_kills_every_process(box: DockerSandbox) -> None:
    box.exec("echo changed > README.md; rm pkg/mod.py; mkdir junk; touch junk/x /tmp/y /dev/shm/z")
    box.exec("setsid sleep 1000 & nohup sleep 1000 > /dev/null 2>&1 &")
    started = box.exec("for _ in $(seq 100); do [ $(pgrep -c sleep) = 2 ] && break; sleep 0.05; done; pgrep -c sleep")
    assert started.output.strip() == "2", started
    start = time.monotonic()
    box.reset()
    assert time.monotonic() - start < 2.0
    assert box.exec("find . -type f | sort").output.split() == ["./README.md", "./pkg/__init__.py", "./pkg/mod.py"]
    assert box.read_file("README.md") == b"hello\n"
    assert box.exec("ls -A /tmp /dev/shm").output.split() == ["/dev/shm:", "/tmp:"]
    assert box.exec("pgrep -c sleep").output.strip() == "0"


def test_containers_are_hardened_and_labelled(box: DockerSandbox, spec: SandboxSpec) -> None:
    box.container.reload()
    attrs = box.container.attrs
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"]
    assert set(host["CapAdd"]) == {"SETUID", "SETGID", "KILL"}
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert host["Init"] is True
    assert host["Memory"] == host["MemorySwap"] == spec.limits.memory_mb * 1024 * 1024
    assert host["PidsLimit"] == spec.limits.pids
    assert host["NanoCpus"] == int(spec.limits.cpus * 1e9)
    assert {u["Name"] for u in host["Ulimits"]} >= {"fsize"}
    labels = attrs["Config"]["Labels"]
    assert labels[LABEL] == run_id() == f"r{os.getpid()}-{process_start_time(os.getpid())}"
    assert labels["horizongym.kind"] == "sandbox"


def test_a_dead_container_raises_sandbox_error(spec: SandboxSpec) -> None:
    box = DockerSandbox(spec)
    try:
        box.container.kill()
        with pytest.raises(SandboxError, match="gone"):
            box.exec("echo hi", timeout=5)
        with pytest.raises(SandboxError):
            box.read_file("README.md")
    finally:
        box.close()
    with pytest.raises(SandboxError, match="closed"):
        box.exec("echo hi")


def test_bad_input_is_refused_clearly(box: DockerSandbox, base_image: str) -> None:
    with pytest.raises(ValueError, match="timeout"):
        box.exec("true", timeout=0)
    with pytest.raises(TypeError):
        box.exec(["echo", "hi"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path"):
        box.exec("true", path="ssh")
    with pytest.raises(ValueError, match="workdir"):
        DockerSandbox(SandboxSpec(image=base_image, workdir="work"))
    with pytest.raises(SandboxError, match="not found"):
        DockerSandbox(SandboxSpec(image="horizongym/no-such-image:0"))
    with pytest.raises(ValueError, match="backend"):
        open_sandbox(SandboxSpec(image=base_image), backend="podman")


def test_open_sandbox_gives_docker_when_an_engine_answers(spec: SandboxSpec) -> None:
    with closing(open_sandbox(spec)) as box:
        assert isinstance(box, DockerSandbox)
        assert box.exec("cat README.md").output == "hello\n"


def test_pool_hands_out_warm_sandboxes_and_takes_them_back_clean(spec: SandboxSpec, client: Any) -> None:
    other = SandboxSpec(image=spec.image, env=spec.env, limits=spec.limits, files=tar_files({"other.txt": "2"}))
    with SandboxPool(size=2, specs=[spec]) as pool:
        assert pool.prewarm(spec, wait=60) == 2
        first = pool.acquire(spec)
        labels = client.containers.get(first.container.id).labels
        assert labels["horizongym.pool"] == pool.name and labels[LABEL] == run_id()
        first.exec("echo dirty > README.md; sleep 1000 &")
        first.close()
        with pytest.raises(SandboxError, match="closed"):
            first.exec("true")
        again = pool.acquire(spec)
        assert again.read_file("README.md") == b"hello\n"
        assert again.exec("pgrep -c sleep").output.strip() == "0"
        again.close()
        switched = open_sandbox(other, pool=pool)  # same container config, other files
        assert switched.exec("ls").output == "other.txt\n"
        switched.close()
        assert pool.stats()["in_use"] == 0
        assert pool.started <= 3
    assert _containers_gone(client, {"label": f"horizongym.pool={pool.name}"})


def _containers_gone(client: Any, filters: dict[str, str], within_s: float = 10.0) -> bool:
    """Whether no container matches ``filters`` within ``within_s`` (a loaded engine may still be
    finishing a removal it has started; a leaked container stays)."""
    deadline = time.monotonic() + within_s
    while client.containers.list(all=True, filters=filters, sparse=True, ignore_removed=True):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_pool_serves_episodes_in_threads(spec: SandboxSpec) -> None:
    errors: list[BaseException] = []

    def episode(i: int) -> None:
        try:
            for _ in range(3):
                with pool.acquire(spec) as box:
                    out = box.exec(f"ls; echo {i} > mine.txt; cat mine.txt").output
                    assert "mine.txt\n" not in out.split("README.md")[0], out
                    assert out.endswith(f"{i}\n"), out
        except BaseException as exc:
            errors.append(exc)

    with SandboxPool(size=4, specs=[spec]) as pool:
        threads = [threading.Thread(target=episode, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        stats = pool.stats()
        assert stats["in_use"] == 0 and stats["ready"] <= 4


def test_reaper_removes_containers_of_dead_owners_only(spec: SandboxSpec, client: Any) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    impostor = f"r{os.getpid()}-1"  # this pid, another start time: a process that is gone
    with DockerSandbox(spec) as live:  # this process's start-up reap has happened by now
        leftovers = set()
        for owner in (f"r{dead_pid}-12345", impostor):
            labels = {LABEL: owner, "horizongym.kind": "test"}
            leftovers.add(client.containers.create(spec.image, ["sleep", "60"], labels=labels).id)
        reap_leftovers(client)  # another xdist worker's reaper may remove some of them first: both are fine
        remaining = {c.id for c in client.containers.list(all=True, filters={"label": LABEL}, ignore_removed=True)}
        assert not remaining & leftovers
        assert live.container.id in remaining
        assert live.exec("echo still here").output == "still here\n"


def test_derive_image_builds_once_and_reports_failures(base_image: str, client: Any) -> None:
    recipe: dict[str, Any] = {
        "files": tar_files({"tool.py": f"print('derived {os.getpid()}')\n"}),
        "target_dir": "/opt/tool",
        "commands": ["python3 -m venv /opt/venv", "/opt/venv/bin/python /opt/tool/tool.py > /opt/tool/out.txt"],
        "image_env": {"PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"},
    }
    tag = derive_image(base_image, "test-derive", **recipe)
    try:
        assert tag.startswith("horizongym/test-derive:")
        built = client.images.get(tag).id
        again = derive_image(base_image, "test-derive", **recipe)
        assert again == tag and client.images.get(tag).id == built  # the same image, not a rebuild
        with DockerSandbox(SandboxSpec(image=tag)) as box:
            result = box.exec("which python; cat /opt/tool/out.txt")
            assert result.output == f"/opt/venv/bin/python\nderived {os.getpid()}\n"
    finally:
        client.images.remove(tag, force=True)
    with pytest.raises(ImageBuildError, match="exit 3") as failure:
        derive_image(base_image, "test-derive-fail", commands=["echo about to fail; exit 3"])
    assert "about to fail" in failure.value.output and failure.value.exit_code == 3
    with pytest.raises(ValueError, match="image name"):
        derive_image(base_image, "Bad Name", commands=[])
    with pytest.raises(SandboxError, match="not found"):
        derive_image("horizongym/no-such-base:0", "x", commands=[])


def test_engine_status_and_doctor(base_image: str, capsys: pytest.CaptureFixture[str]) -> None:
    from horizongym.sandboxes.cli import add_sandbox_commands, doctor
    from horizongym.sandboxes.engine import engine_status
    from horizongym.sandboxes.images import base_image_tag

    status = engine_status()
    assert status.engine_answers and status.docker_sdk and status.usable
    assert base_image_tag() == base_image
    assert doctor(try_sandbox=True) == 0
    out = capsys.readouterr().out
    assert "[ok  ] engine answers" in out and "no network inside the sandbox" in out and "MISS" not in out
    import argparse

    parser = argparse.ArgumentParser(prog="horizongym")
    add_sandbox_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sandbox", "build-image"])
    args.run(args)
    assert capsys.readouterr().out.strip() == base_image


def test_auto_backend_falls_back_to_local_without_an_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    import horizongym.sandboxes as sandboxes

    monkeypatch.setattr(sandboxes, "docker_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        box = sandboxes.open_sandbox(SandboxSpec(image="anything", files=tar_files(FILES)))
    try:
        assert isinstance(box, sandboxes.LocalSandbox) and box.isolated is False
        assert box.exec("cat README.md").output == "hello\n"
    finally:
        box.close()


def test_pool_reports_a_spec_it_cannot_start() -> None:
    missing = SandboxSpec(image="horizongym/no-such-image:0")
    with SandboxPool(size=1) as pool:
        with pytest.raises(SandboxError, match="not found"):
            pool.acquire(missing)
        with pytest.raises(SandboxError, match="not found"):
            pool.prewarm(missing, wait=30)
        assert pool.stats()["in_use"] == 0
