"""The Ray backend of the rollout engine: envs in Ray actors of a real local cluster, the same episodes
as the asyncio engine, lost actors retried on fresh ones, and ``horizongym rollout --backend ray``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import ray.cloudpickle

import horizongym
from horizongym.agents.base import Action, Message, Policy
from horizongym.agents.specs import make_policy
from horizongym.cli import main
from horizongym.envs.base import Task, TextEnv
from horizongym.envs.keychain import KeyChainEnv
from horizongym.failures import InfrastructureError
from horizongym.sandboxes.engine import ensure_engine
from horizongym.training.rollouts import EnvRecipe, Episode, EpisodeStore, RolloutEngine, policy_seed, read_episodes
from horizongym.training.rollouts.ray_backend import (
    DOCKER_RESOURCE,
    EnvActorLost,
    RayBackendError,
    RayEnv,
    RayEnvFactory,
    connect,
    local_resources,
    needs_docker,
)

KEYCHAIN = EnvRecipe("KeyChain-v0", {})
TIMINGS = {"started_at", "seconds", "policy_seconds", "env_seconds"}

# the env classes below travel to the actors by value (the actors cannot import this test module)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[str]:
    """One local Ray of 2 CPUs for the module; yields the address other processes connect to."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def kill(actor: Any) -> None:
    """``ray.kill(actor)``, then wait until the actor answers no more: the kill lands asynchronously,
    and a call made before it does would still be served."""
    ray.kill(actor)
    for _ in range(200):
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.05)
    raise AssertionError("the killed actor still answers")


class Tracked:
    """A :class:`RayEnvFactory` that remembers which proxy last reset each seed."""

    def __init__(self, recipe: EnvRecipe) -> None:
        self.factory = RayEnvFactory(recipe)
        self.by_seed: dict[int | None, RayEnv] = {}
        self.built = 0

    def __call__(self) -> RayEnv:
        env = self.factory()
        self.built += 1
        reset = env.reset

        def tracked_reset(*, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            self.by_seed[seed] = env
            return reset(seed=seed, options=options)

        env.reset = tracked_reset  # type: ignore[method-assign]
        return env


class KillingPolicy(Policy):
    """The expert, which kills the actor of task ``seed`` when it is about to act at ``turn``
    (``times`` times at most)."""

    def __init__(self, envs: Tracked, seed: int, turn: int, times: int) -> None:
        self.inner = make_policy("expert", "KeyChain-v0")
        self.name = self.inner.name
        self.envs, self.target, self.times = envs, policy_seed(seed, 0, turn), times
        self.victim = seed
        self.kills = 0

    async def act(self, messages: list[Message], tools: list[dict[str, Any]], *, seed: int | None = None) -> Action:
        if seed == self.target and self.kills < self.times:
            kill(self.envs.by_seed[self.victim].actor)
            self.kills += 1
        return await self.inner.act(messages, tools, seed=seed)


def _comparable(episode: Episode) -> dict[str, Any]:
    record = episode.model_dump(exclude=TIMINGS | {"steps", "attempts"})
    record["steps"] = [step.model_dump(exclude=TIMINGS) for step in episode.steps]
    return record


def _run(recipe: EnvRecipe, policy: Policy, tasks: int, group: int = 1, **options: Any) -> list[Episode]:
    with RolloutEngine(recipe, policy, concurrency=2, progress=False, **options) as engine:
        episodes = engine.run_sync(tasks, group)
    return sorted(episodes, key=lambda e: (e.seed, e.sample))


@pytest.mark.parametrize("spec", ["expert", "random"])
def test_ray_actors_play_the_same_episodes_as_the_asyncio_engine(spec: str, tmp_path: Path) -> None:
    local = _run(KEYCHAIN, make_policy(spec, "KeyChain-v0"), 3, 2)
    with EpisodeStore(tmp_path / "ray.jsonl") as store:
        remote = _run(
            KEYCHAIN, make_policy(spec, "KeyChain-v0"), 3, 2, env_factory=RayEnvFactory(KEYCHAIN), store=store
        )
    assert [_comparable(e) for e in remote] == [_comparable(e) for e in local]  # seeds, outcomes, actions, rng...
    assert {e.outcome for e in local} <= {"completed", "truncated"} and all(e.rng_state for e in remote)
    stored = read_episodes(tmp_path / "ray.jsonl")
    assert sorted((e.seed, e.sample) for e in stored) == [(s, g) for s in range(3) for g in range(2)]


def test_an_actor_killed_mid_episode_is_replaced_and_the_episode_played_again(tmp_path: Path) -> None:
    envs = Tracked(KEYCHAIN)
    policy = KillingPolicy(envs, seed=1, turn=2, times=1)
    with EpisodeStore(tmp_path / "run.jsonl") as store:
        episodes = _run(KEYCHAIN, policy, 4, env_factory=envs, store=store)
    assert policy.kills == 1 and envs.built == 3  # two workers, and one fresh actor for the retry
    stored = read_episodes(tmp_path / "run.jsonl")
    assert sorted(e.seed for e in stored) == [0, 1, 2, 3]  # every episode exactly once
    retried = next(e for e in stored if e.seed == 1)
    assert [a.termination_reason for a in retried.attempts] == ["infra_error"]
    # two steps played, the third lost with its actor (recorded as the truncated last step)
    assert retried.attempts[0].turns == 3 and "was lost during step 3" in (retried.attempts[0].detail or "")
    assert all(not e.attempts for e in stored if e.seed != 1)
    local = _run(KEYCHAIN, make_policy("expert", "KeyChain-v0"), 4)
    assert [_comparable(e) for e in episodes] == [_comparable(e) for e in local]  # the retry is a whole episode


def test_an_episode_whose_every_try_dies_is_an_infrastructure_failure_not_a_zero() -> None:
    envs = Tracked(KEYCHAIN)
    policy = KillingPolicy(envs, seed=0, turn=1, times=99)
    episodes = _run(KEYCHAIN, policy, 2, env_factory=envs, max_attempts=2)
    dead = episodes[0]
    assert policy.kills == 2 and len(dead.attempts) == 1
    assert (dead.outcome, dead.termination_reason, dead.retryable, dead.success) == (
        "infra_error",
        "infra_error",
        True,
        None,
    )
    assert not dead.trainable and episodes[1].outcome == "completed"


class CrashingKeyChain(KeyChainEnv):
    """KeyChain whose process dies (as when a worker or its node goes) at step 2 of task 0, unless
    the file ``marker`` exists; it writes the file first, so only the first try dies."""

    def __init__(self, *, marker: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.marker = Path(marker)
        self.seed: int | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self.seed = seed
        return super().reset(seed=seed, options=options)

    def step(self, action: str) -> Any:
        if self.seed == 0 and self.state.turn == 1 and not self.marker.exists():
            self.marker.touch()
            os._exit(1)
        return super().step(action)


class DyingBuilder(KeyChainEnv):
    """KeyChain whose worker process dies while it builds the env (as when its node goes), unless the
    file ``marker`` exists; it writes the file first, so only the first actor dies."""

    def __init__(self, *, marker: str, **kwargs: Any) -> None:
        if not Path(marker).exists():
            Path(marker).touch()
            os._exit(1)
        super().__init__(**kwargs)


class BrokenKeyChain(KeyChainEnv):
    """KeyChain whose step fails on infrastructure that another try cannot fix."""

    def step(self, action: str) -> Any:
        raise InfrastructureError("the evaluator's image is missing", retryable=False)


def test_an_env_registered_on_the_driver_builds_on_the_actors_and_its_errors_keep_their_type() -> None:
    horizongym.register("RayTestBroken-v0", BrokenKeyChain)
    recipe = EnvRecipe("RayTestBroken-v0", {})
    (episode,) = _run(recipe, make_policy("expert", "KeyChain-v0"), 1, env_factory=RayEnvFactory(recipe))
    assert (episode.outcome, episode.retryable, episode.attempts) == ("infra_error", False, [])
    assert "InfrastructureError: the evaluator's image is missing" in (episode.error or "")


def test_a_worker_process_that_dies_is_retried(tmp_path: Path) -> None:
    horizongym.register("RayTestCrashing-v0", CrashingKeyChain)
    marker = tmp_path / "crashed"
    recipe = EnvRecipe("RayTestCrashing-v0", {"marker": str(marker)})
    episodes = _run(recipe, make_policy("expert", "KeyChain-v0"), 2, env_factory=RayEnvFactory(recipe))
    assert marker.exists() and [len(e.attempts) for e in episodes] == [1, 0]
    assert "was lost during step 2" in (episodes[0].attempts[0].detail or "")
    assert {e.outcome for e in episodes} == {"completed"}


def test_an_actor_lost_while_building_its_env_is_replaced(tmp_path: Path) -> None:
    horizongym.register("RayTestDyingBuilder-v0", DyingBuilder)
    marker = tmp_path / "died"
    recipe = EnvRecipe("RayTestDyingBuilder-v0", {"marker": str(marker)})
    episodes = _run(recipe, make_policy("expert", "KeyChain-v0"), 2, env_factory=RayEnvFactory(recipe))
    assert marker.exists() and {e.outcome for e in episodes} == {"completed"}


def test_the_proxy_maps_a_lost_actor_to_infrastructure_failures() -> None:
    env = RayEnvFactory(KEYCHAIN)()
    observation, info = env.reset(seed=3)
    assert "Start key" in observation and info["turn"] == 0
    kill(env.actor)
    _, reward, terminated, truncated, info = env.step("<tool_call>{}</tool_call>")
    assert (reward, terminated, truncated, info["termination_reason"], info["retryable"]) == (
        0.0,
        False,
        True,
        "infra_error",
        True,
    )
    with pytest.raises(EnvActorLost, match="lost during reset") as lost:
        env.reset(seed=3)
    assert lost.value.retryable
    env.close()  # closing a dead actor's proxy is quiet


def test_bad_env_settings_fail_on_the_actor_with_a_clear_error() -> None:
    with pytest.raises(RayBackendError, match=r"could not build KeyChain-v0 .*max_turns"):
        RayEnvFactory(EnvRecipe("KeyChain-v0", {"max_turns": -1}))()


def test_only_sandboxed_envs_ask_for_a_docker_node() -> None:
    assert not needs_docker(KEYCHAIN) and not needs_docker(EnvRecipe("KernelGen-v0", {}))
    assert needs_docker(EnvRecipe("SWE-v0", {})) and not needs_docker(EnvRecipe("SWE-v0", {"backend": "local"}))
    assert not needs_docker(EnvRecipe("ws://127.0.0.1:9", {}))
    with pytest.raises(RayBackendError, match="no node of the Ray cluster declares a Docker engine"):
        RayEnvFactory(EnvRecipe("SWE-v0", {}))  # this module's cluster declares none
    assert connect().started is False  # a connected process stays on its cluster
    ensure_engine()  # the Docker engine answers here, as the sandbox tests require
    assert local_resources(docker=True) == {DOCKER_RESOURCE: 1.0} and local_resources(docker=False) == {}


def test_cli_rollout_on_ray_end_to_end_and_resume(
    cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "episodes.jsonl"
    command = ["rollout", "KeyChain-v0", "--backend", "ray", "--ray-workers", "2", "--out", str(out), "--quiet"]
    # a separate driver process joins this module's cluster by its address
    done = subprocess.run(
        [sys.executable, "-m", "horizongym", *command, "-n", "3", "--address", cluster],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(e.seed for e in read_episodes(out)) == [0, 1, 2]
    assert main([*command, "-n", "5", "--resume"]) == 0  # this process, already on the cluster
    episodes = read_episodes(out)
    assert sorted(e.seed for e in episodes) == [0, 1, 2, 3, 4] and {e.outcome for e in episodes} == {"completed"}
    capsys.readouterr()
    assert main(["rollout", "KeyChain-v0", "--address", "auto", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "--address goes with --backend ray" in capsys.readouterr().err
    # an address where nothing listens is one line at once (ray.init alone would retry for minutes)
    refused = subprocess.run(
        [sys.executable, "-m", "horizongym", *command, "--address", "127.0.0.1:1", "--out", str(tmp_path / "y.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "error: no Ray cluster answers at 127.0.0.1:1: ConnectionRefusedError" in refused.stderr


def test_sandboxed_episodes_run_in_docker_on_a_local_cluster_that_declares_it(tmp_path: Path) -> None:
    ensure_engine()  # the engine answers: the new local cluster declares the docker resource SWE-v0 asks for
    out = tmp_path / "swe.jsonl"
    command = ["rollout", "SWE-v0", "--backend", "ray", "--ray-workers", "1", "-n", "1", "--out", str(out), "--quiet"]
    done = subprocess.run([sys.executable, "-m", "horizongym", *command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (episode,) = read_episodes(out)
    assert (episode.outcome, episode.success) == ("completed", True)
    prompt = str(episode.messages[0]["content"])
    assert prompt.startswith("Instance:") and "local folder" not in prompt  # a container, not LocalSandbox


class VarietyEnv(TextEnv):
    """One turn of free text, its reward varying with the text: the samples of a group differ, so a step learns."""

    max_turns = 1

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id=f"variety-{int(self.np_random.integers(100))}", prompt="Say hi.")

    def on_text(self, text: str) -> str:
        self.add_reward("variety", sum(map(ord, text)) % 10 / 9)
        self.end_episode(success=True)
        return "Done."


def test_training_with_ray_rollouts_gives_the_same_weights(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from horizongym.agents.tiny import build_tiny_model
    from horizongym.training.config import TrainConfig
    from horizongym.training.trainer import Trainer

    horizongym.register("RayTestVariety-v0", VarietyEnv)
    model_dir = build_tiny_model(tmp_path / "tiny", seed=3, hidden_size=32, num_heads=2)
    weights = []
    for backend in ("asyncio", "ray"):
        settings: dict[str, Any] = (
            {"backend": backend} if backend == "asyncio" else {"backend": backend, "ray_workers": 2}
        )
        config = TrainConfig(
            env_id="RayTestVariety-v0",
            group_size=2,
            tasks_per_step=1,
            steps=1,
            max_new_tokens=4,
            out_dir=str(tmp_path / backend),
            **settings,
        )
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        trainer = Trainer(config, model, AutoTokenizer.from_pretrained(model_dir), progress=False)
        assert [r["step"] for r in trainer.train()] == [1]
        weights.append(dict(trainer.model.named_parameters()))
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    initial = dict(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).named_parameters())
    assert any(not torch.equal(initial[name], weights[1][name]) for name in initial), "training moved no weight"
    assert _keys(tmp_path / "ray") == _keys(tmp_path / "asyncio")
    assert ray.is_initialized()  # the trainer joined this module's cluster and left it running
    with pytest.raises(ValueError, match="ray_workers\n  Value error, is used only with backend 'ray'"):
        TrainConfig(env_id="KeyChain-v0", ray_workers=2)


def _keys(out: Path) -> list[tuple[int, int]]:
    return [e.key for e in read_episodes(out / "episodes.jsonl")]
