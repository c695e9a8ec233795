"""The README's "Use horizongym envs from your trainer" snippets that need no model run as written,
against a real env server (the TRL and verifiers snippets' calls run in their adapters' tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from horizongym.envs.remote.server import SERVER_CONFIG, create_app
from horizongym.serverthread import ServerThread

README = Path(__file__).resolve().parent.parent / "README.md"
PORT_IN_README = "8010"


def snippet(name: str) -> str:
    block = re.search(rf"<!-- trainer-snippet:{name} -->\s*```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert block, f"README snippet {name!r} not found"
    return block.group(1)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with ServerThread(create_app("KeyChain-v0", max_sessions=4), **SERVER_CONFIG) as server:
        yield server.port


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("remote", "assert isinstance(env, horizongym.envs.remote.client.RemoteEnv) and info['turn'] == 1"),
        ("openenv", "assert result.done is False and result.observation['info']['turn'] == 1"),
        ("skyrl-gem", "assert info['turn'] == 1 and 'reward' in output and 'observations' in output"),
    ],
)
def test_snippet_runs_as_written(name: str, check: str, port: int, tmp_path: Path) -> None:
    code = snippet(name)
    assert PORT_IN_README in code or name == "skyrl-gem"
    script = tmp_path / f"readme_{name.replace('-', '_')}.py"  # never the name of a package it imports
    script.write_text(code.replace(PORT_IN_README, str(port)) + f"\n{check}\nprint('snippet ok')\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("snippet ok")
