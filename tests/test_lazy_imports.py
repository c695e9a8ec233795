"""What each import loads: the package root, envs, agents and rollouts stay light; experts load on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


ENV_FAMILIES = {f"horizongym.envs.{name}" for name in ("email", "kernels", "keychain", "longchain", "search", "swe")}


def test_envs_load_no_agents_and_no_training_but_the_root_exports_them() -> None:
    loaded = _loaded_after("import horizongym.envs")
    assert not {name for name in loaded if name.startswith(("horizongym.agents", "horizongym.training"))}
    loaded = _loaded_after(
        "import horizongym as hg\n"
        "engine = hg.RolloutEngine('KeyChain-v0', hg.make_policy('random', 'KeyChain-v0'), progress=False)\n"
        "episodes = engine.run_sync(2)\n"
        "assert all(isinstance(e, hg.Episode) for e in episodes) and len(episodes) == 2\n"
        "assert hg.make_workspace('KeyChain-v0').reset(seed=0)[0]\n"
        "assert 'RolloutEngine' in dir(hg) and 'make_policy' in hg.__all__"
    )
    assert "horizongym.training.rollouts.engine" in loaded and "torch" not in loaded


def test_every_exported_name_resolves() -> None:
    import horizongym

    for name in horizongym.__all__:
        assert getattr(horizongym, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = horizongym.Nope


def test_agents_load_no_environment_family_until_an_expert_is_asked_for() -> None:
    loaded = _loaded_after("import horizongym.agents")
    assert not loaded & (ENV_FAMILIES | {"docker", "torch", "horizongym.sandboxes"})
    loaded = _loaded_after("from horizongym.agents import expert_for\nexpert_for('KeyChain-v0')")
    assert "horizongym.agents.experts.keychain" in loaded and not loaded & {"horizongym.envs.swe", "torch"}


def test_every_builtin_expert_resolves_and_third_parties_can_register(monkeypatch: pytest.MonkeyPatch) -> None:
    from horizongym.agents import scripted
    from horizongym.agents.experts import BUILTIN_EXPERTS
    from horizongym.agents.scripted import ScriptedPolicy, expert_for, experts, register_expert

    monkeypatch.setattr(scripted, "_EXPERTS", dict(scripted._EXPERTS))
    for env_id in BUILTIN_EXPERTS:
        assert isinstance(expert_for(env_id), ScriptedPolicy), env_id
    assert type(expert_for("horizongym/KeyChain-v0")).__name__ == "KeyChainExpert"

    @register_expert("ThirdParty-v0")
    class Mine(ScriptedPolicy):
        pass

    assert isinstance(expert_for("ThirdParty-v0"), Mine) and "ThirdParty-v0" in experts()
    register_expert("horizongym/KeyChain-v0")(Mine)
    assert isinstance(expert_for("KeyChain-v0"), Mine)
    with pytest.raises(KeyError, match="no expert policy for 'Nope-v0'"):
        expert_for("Nope-v0")


def test_rollouts_import_no_torch() -> None:
    loaded = _loaded_after("import horizongym.training.rollouts\nimport horizongym.training.config")
    assert not loaded & {"torch", "transformers", "horizongym.training.trainer"}
