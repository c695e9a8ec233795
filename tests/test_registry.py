"""The registry delegates to Gymnasium's, under the horizongym namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

import horizongym
from horizongym.envs.keychain import KeyChainEnv


def _python_with_plugin(folder: Path, entry_point: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``import horizongym; <code>`` with an installed distribution declaring ``entry_point``."""
    dist = folder / "hg_plugin_dist-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hg-plugin-dist\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[horizongym.envs]\n{entry_point}\n")
    extra = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{extra}" if extra else str(folder)}
    return subprocess.run([sys.executable, "-c", f"import horizongym; {code}"], capture_output=True, text=True, env=env)


def _wrapper_types(env: gym.Env) -> list[type]:
    types = []
    while isinstance(env, gym.Wrapper):
        types.append(type(env))
        env = env.env
    return types


def test_both_make_paths_build_the_same_env() -> None:
    a = horizongym.make("KeyChain-v0")
    b = gym.make("horizongym/KeyChain-v0")
    assert isinstance(a.unwrapped, KeyChainEnv) and isinstance(b.unwrapped, KeyChainEnv)
    assert a.reset(seed=3)[0] == b.reset(seed=3)[0]
    assert horizongym.spec("KeyChain-v0") is gym.spec("horizongym/KeyChain-v0")
    assert "horizongym/KeyChain-v0" in horizongym.registry
    assert horizongym.registry["KeyChain-v0"] is horizongym.registry["horizongym/KeyChain-v0"]


def test_make_applies_gymnasium_wrappers_and_time_limit() -> None:
    horizongym.register("KeyChainShort-v0", KeyChainEnv, max_episode_steps=2, kwargs={"min_depth": 4})
    try:
        env = horizongym.make("KeyChainShort-v0")
        assert {TimeLimit, OrderEnforcing, PassiveEnvChecker} <= set(_wrapper_types(env))
        with pytest.raises(gym.error.ResetNeeded):
            env.step("<lookup>amber</lookup>")
        env.reset(seed=0)
        env.step("<lookup>amber</lookup>")
        *_, terminated, truncated, _ = env.step("<lookup>amber</lookup>")
        assert truncated and not terminated
    finally:
        del gym.registry["horizongym/KeyChainShort-v0"]


def test_unknown_id_names_the_closest_match() -> None:
    with pytest.raises(horizongym.UnknownEnvironment, match="Did you mean: KeyChain-v0"):
        horizongym.make("KeyChian-v0")


def test_plain_python_session_can_use_gymnasium_make() -> None:
    code = (
        "import gymnasium, horizongym; e = gymnasium.make('horizongym/KeyChain-v0'); "
        "print(e.reset(seed=1)[1]['task_id'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("keychain-")


def test_entry_point_plugins_register_envs(tmp_path: Path) -> None:
    package = tmp_path / "hg_plugin_demo.py"
    package.write_text(
        textwrap.dedent(
            """
            import horizongym
            from horizongym.envs.keychain import KeyChainEnv

            def register_all():
                horizongym.register("PluginChain-v0", KeyChainEnv, kwargs={"max_depth": 1})
            """
        )
    )
    code = "print(horizongym.make('PluginChain-v0').reset(seed=0)[1]['task_id'])"
    result = _python_with_plugin(tmp_path, "demo = hg_plugin_demo:register_all", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("keychain-d1-")


def test_broken_plugin_warns_instead_of_breaking_import(tmp_path: Path) -> None:
    result = _python_with_plugin(tmp_path, "broken = no_such_module_here", "print('imported')")
    assert result.returncode == 0 and "imported" in result.stdout
    assert "plugin 'broken' failed to load" in result.stderr
