"""Sandboxes classify their own failures: an engine or container that fails is a retryable
:class:`~horizongym.failures.InfrastructureError`; what another try cannot fix (no such image, a
configuration the engine refuses, an image that does not build) is not retryable. The docker
SDK's own exceptions never come out raw. Real engine, real sockets, real folders."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from horizongym.failures import InfrastructureError, infrastructure_cause
from horizongym.sandboxes import (
    ImageBuildError,
    Limits,
    LocalSandbox,
    SandboxError,
    SandboxSpec,
    derive_image,
    ensure_base_image,
    ensure_engine,
)
from horizongym.sandboxes.docker import DockerSandbox


@pytest.fixture(scope="module")
def base_image() -> str:
    return ensure_base_image(ensure_engine())


@pytest.fixture
def dead_client(tmp_path: Path) -> Any:
    """A docker client of a socket no engine listens on: what the SDK meets when dockerd is gone."""
    client = docker.DockerClient(base_url=f"unix://{tmp_path}/no-engine.sock", version="1.41")
    yield client
    client.close()


def retryable_of(error: BaseException) -> bool:
    cause = infrastructure_cause(error)
    assert cause is not None, f"{type(error).__name__} is not an infrastructure failure: {error}"
    return cause.retryable


def test_sandbox_errors_are_infrastructure_failures() -> None:
    assert issubclass(SandboxError, InfrastructureError) and issubclass(SandboxError, RuntimeError)
    assert SandboxError("the container died").retryable
    assert not SandboxError("no engine here", retryable=False).retryable
    assert not ImageBuildError("step failed", command="false", exit_code=1).retryable


def test_a_killed_container_is_a_retryable_failure(base_image: str) -> None:
    box = DockerSandbox(SandboxSpec(image=base_image))
    try:
        box.container.kill()
        with pytest.raises(SandboxError, match="gone") as raised:
            box.exec("echo hi", timeout=5)
        assert retryable_of(raised.value)
    finally:
        box.close()


def test_an_engine_that_is_gone_gives_sandbox_errors_not_sdk_errors(base_image: str, dead_client: Any) -> None:
    with pytest.raises(SandboxError, match="docker") as raised:
        DockerSandbox(SandboxSpec(image=base_image), client=dead_client)
    assert retryable_of(raised.value)
    assert isinstance(raised.value.__cause__, requests.exceptions.ConnectionError | docker.errors.DockerException)

    with pytest.raises(SandboxError, match="docker engine failed") as raised:
        derive_image(base_image, "never-built", commands=["true"], client=dead_client)
    assert retryable_of(raised.value)
    with pytest.raises(SandboxError, match="docker engine failed") as raised:
        ensure_base_image(dead_client)
    assert retryable_of(raised.value)


def test_what_another_try_cannot_fix_is_not_retryable(base_image: str) -> None:
    with pytest.raises(SandboxError, match="not found") as raised:
        DockerSandbox(SandboxSpec(image="horizongym/no-such-image:0"))
    assert not retryable_of(raised.value)
    with pytest.raises(SandboxError, match="could not create") as raised:  # the engine refuses 1 MB of memory
        DockerSandbox(SandboxSpec(image=base_image, limits=Limits(memory_mb=1)))
    assert not retryable_of(raised.value)
    box = DockerSandbox(SandboxSpec(image=base_image))
    box.close()
    with pytest.raises(SandboxError, match="closed") as raised:
        box.exec("true")
    assert not retryable_of(raised.value)


def test_a_local_sandbox_whose_folder_is_removed_from_outside() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the local backend says once that it isolates nothing
        box = LocalSandbox(SandboxSpec(image="unused"))
    try:
        assert box.exec("echo hi").output == "hi\n"
        shutil.rmtree(box.root)
        with pytest.raises(SandboxError, match="gone") as raised:
            box.exec("echo hi")
        assert retryable_of(raised.value)
        box.reset()  # a reset makes the folder again
        assert box.exec("echo back").output == "back\n"
    finally:
        box.close()
