"""Rollouts on a Ray cluster: each env lives in a Ray actor, the episode logic stays the engine's.

The :class:`~horizongym.training.rollouts.engine.RolloutEngine` runs unchanged: it is given an
env factory (:class:`RayEnvFactory`) whose envs are :class:`RayEnv` proxies. Each proxy owns one
actor, built on the cluster from the run's :class:`~horizongym.training.rollouts.engine.EnvRecipe`
(env id and keyword arguments; the driver's registry entry goes along, so an env registered at
run time, by ``--import`` or a script, builds on the actors too). ``reset`` and ``step`` call the
actor and wait for its answer (the engine runs blocking envs in threads, so episodes overlap);
the policy acts on the driver (a local model, or an HTTP endpoint: ``horizongym serve``, vLLM,
SGLang), and finished episodes stream into the same store, in completion order.

An actor, its worker process or its node that dies is an infrastructure failure, never the
policy's zero: during ``reset`` the proxy raises :class:`EnvActorLost` (a retryable
:class:`~horizongym.failures.InfrastructureError`); during ``step`` the episode ends truncated
with reason ``infra_error``, retryable, as :class:`~horizongym.envs.remote.client.RemoteEnv` ends
one whose server is lost. The engine then plays the episode again, same seed, on a fresh actor,
up to ``max_attempts`` tries, and stores it once with its failed tries listed. An exception the
env itself raises comes back as that exception (its type and ``retryable`` flag kept), so the
engine records exactly what it records for a local env.

What the engine reads from ``env.unwrapped`` is mirrored on the proxy: ``blocking`` (always True:
every call waits on the cluster) and the env's generator (``_np_random``), whose state each answer
carries, so the episode records the same ``rng_state`` as a local run.

Placement: actors are spread over the cluster's nodes (Ray's ``SPREAD`` strategy). An env whose
episodes run Docker sandboxes (:meth:`horizongym.envs.base.TextEnv.needs_docker`, e.g. SWE-v0)
asks for the custom resource :data:`DOCKER_RESOURCE`, so its actors land only on nodes that
declare it (``ray start ... --resources '{"docker": 1}'`` on each machine with a Docker engine);
a local cluster declares it when the engine answers here (the check ``horizongym sandbox doctor``
makes).

Cost: every ``reset`` and ``step`` is one actor call, about 0.7 ms of round trip on one machine
(serialization, two process hops and the thread handoff), where a trivial local env steps in
microseconds: Ray pays where env steps take milliseconds or more (sandboxes, tool calls,
evaluators) or need more machines, not for toy envs (``python -m horizongym.bench.overhead``
measures it).

``ray`` is imported only inside this module's functions: importing the module costs nothing when
the Ray backend is not used.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Final, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec, load_env_creator

from horizongym.envs import spec
from horizongym.envs.contract import (
    RETRYABLE,
    REWARD_COMPONENTS,
    SUCCESS,
    TASK_ID,
    TERMINATION_DETAIL,
    TERMINATION_REASON,
    TOOLS,
    TURN,
)
from horizongym.envs.registration import is_env_url
from horizongym.failures import InfrastructureError
from horizongym.training.rollouts.engine import EnvRecipe, RolloutError

if TYPE_CHECKING:
    from types import ModuleType

DOCKER_RESOURCE: Final = "docker"
"""The custom Ray resource of the nodes that run a Docker engine."""
DOCKER_SHARE: Final = 0.001
"""How much of :data:`DOCKER_RESOURCE` one sandboxed env's actor asks for: a node that declares
``{"docker": 1}`` takes up to 1000 of them, so the resource works as a label, not a count."""
PLACEMENT_TIMEOUT_S: Final = 120.0
"""How long a new actor may wait for a node with room, and take to build its env."""
BUILD_ATTEMPTS: Final = 3
"""Actors tried in a row for one env when each is lost (its worker or node died) while building it."""
CONNECT_TIMEOUT_S: Final = 5.0
"""How long :func:`connect` waits for the head of a cluster named by ``HOST:PORT`` to accept a connection."""
CLOSE_WAIT_S: Final = 5.0
"""How long closing a proxy waits for its actor to close the env before the actor is killed."""
_START_HINT: Final = (
    "start one with 'ray start --head' (then --address auto), or leave out --address for a local cluster"
)


class RayBackendError(RolloutError):
    """The cluster cannot run the rollout (no connection, no node for the env, an env that does not
    build there); the message names what failed and the fix."""


class EnvActorLost(InfrastructureError):
    """The actor that holds an env died (its process, or its node): another try on a fresh actor may succeed."""


def needs_docker(recipe: EnvRecipe) -> bool:
    """Whether ``recipe``'s episodes run Docker sandboxes (the env class's ``needs_docker``); False for
    a served env's URL, whose sandboxes are its server's."""
    if is_env_url(recipe.env_id):
        return False
    entry = spec(recipe.env_id).entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    check = getattr(creator, "needs_docker", None)
    return bool(check(recipe.kwargs)) if callable(check) else False


# ----- the cluster ---------------------------------------------------------------------
@dataclass
class RayConnection:
    """This process's connection to a Ray cluster; ``close`` disconnects it (stopping a local cluster)
    only when :func:`connect` made it."""

    address: str | None
    """What was asked for: None for a local cluster, else ``auto`` or ``HOST:PORT``."""
    started: bool
    """Whether :func:`connect` connected (False: the process was connected already and stays so)."""

    def close(self) -> None:
        ray = _ray()
        if self.started and ray.is_initialized():
            ray.shutdown()
        self.started = False

    def __enter__(self) -> RayConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(address: str | None = None, *, num_cpus: int | None = None, docker: bool = False) -> RayConnection:
    """Connect to the Ray cluster at ``address`` (``auto``: the one this machine belongs to;
    ``HOST:PORT``: its head), or with ``address`` None start a local one of ``num_cpus`` CPUs (default:
    this machine's). A process already connected stays on its cluster.

    ``docker``: the rollout needs nodes with a Docker engine; a local cluster then declares
    :data:`DOCKER_RESOURCE` if the engine answers here. :class:`RayBackendError` when the cluster
    cannot be reached.
    """
    ray = _ray()
    if ray.is_initialized():
        return RayConnection(address, started=False)
    quiet = {"logging_level": logging.WARNING, "include_dashboard": False}
    if address is not None:
        _check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise RayBackendError(
                f"cannot connect to the Ray cluster at {address!r}: {_words(exc)}; {_START_HINT}"
            ) from None
        return RayConnection(address, started=True)
    try:
        ray.init(num_cpus=num_cpus, resources=local_resources(docker=docker), **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:  # e.g. RAY_ADDRESS names a cluster to join
        raise RayBackendError(
            f"cannot start a local Ray cluster: {_words(exc)}; to use a cluster that runs already, pass "
            "--address auto (or its HOST:PORT)"
        ) from None
    return RayConnection(None, started=True)


def local_resources(*, docker: bool) -> dict[str, float]:
    """The custom resources a local cluster declares: :data:`DOCKER_RESOURCE` when ``docker`` is
    wanted and a Docker engine answers here (the check of ``horizongym sandbox doctor``)."""
    from horizongym.sandboxes.engine import engine_status

    return {DOCKER_RESOURCE: 1.0} if docker and engine_status().engine_answers else {}


def _check_reachable(address: str) -> None:
    """Fail fast when nothing listens at a ``HOST:PORT`` address (``ray.init`` would retry for minutes)."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or "://" in address:
        return  # ``auto``, or a ``ray://`` client address: Ray looks it up and says what is missing
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayBackendError(
            f"no Ray cluster answers at {address}: {_words(exc)}; check the address ('ray status' on the head "
            "prints it), start the cluster ('ray start --head'), or leave out --address for a local one"
        ) from None


@contextlib.contextmanager
def ray_envs(recipe: EnvRecipe, *, address: str | None = None, workers: int | None = None) -> Iterator[RayEnvFactory]:
    """Connect (:func:`connect`, a local cluster of ``workers`` CPUs without ``address``), yield the
    factory of ``recipe``'s envs for a :class:`~horizongym.training.rollouts.engine.RolloutEngine`'s
    ``env_factory``, and disconnect at the end if this call connected."""
    with connect(address, num_cpus=workers, docker=needs_docker(recipe)):
        yield RayEnvFactory(recipe)


# ----- the actor -----------------------------------------------------------------------
EnvDescription = tuple[gym.Space[Any], gym.Space[Any], dict[str, Any], str | None]
"""An env's observation space, action space, metadata and render mode, as its actor reports them."""


class EnvHost:
    """What an env actor runs: one env built from a recipe, reset and stepped on request.

    Each answer carries the state of the env's generator (None when it has none), which the
    driver's proxy mirrors. ``spec`` is the driver's registry entry of the env: registered here
    when this process lacks it (an env registered at run time on the driver).
    """

    def __init__(self, recipe: EnvRecipe, spec: EnvSpec | None) -> None:
        if spec is not None and spec.id not in gym.registry:
            gym.registry[spec.id] = spec
        self.env = recipe.build()
        self.unwrapped = self.env.unwrapped

    def describe(self) -> EnvDescription:
        """The env's spaces, metadata and render mode; answering it says the actor is up."""
        return self.env.observation_space, self.env.action_space, self.env.metadata, self.env.render_mode

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any], Any]:
        observation, info = self.env.reset(seed=seed, options=options)
        return observation, info, self._generator_state()

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any], Any]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated, truncated, info, self._generator_state()

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    def _generator_state(self) -> Any:
        generator = getattr(self.unwrapped, "_np_random", None)  # never np_random: it would seed one
        return None if generator is None else generator.bit_generator.state


@cache
def _actor_class() -> Any:
    """:class:`EnvHost` as a Ray actor class (made once per process)."""
    return _ray().remote(EnvHost)


class RayEnv(gym.Env[str, str]):
    """A driver-side ``gymnasium.Env`` whose env lives in a Ray actor (see the module docstring).

    Built by :class:`RayEnvFactory`; ``close`` closes the env in the actor, then ends the actor.
    """

    blocking: ClassVar[bool] = True
    """Every call waits on the cluster: the rollout engine runs it in a thread."""

    def __init__(self, actor: Any, recipe: EnvRecipe, description: EnvDescription) -> None:
        self._ray = _ray()
        self.actor = actor
        self.recipe = recipe
        observation_space, action_space, metadata, render_mode = description
        self.observation_space = observation_space
        self.action_space = action_space
        self.metadata = metadata
        self.render_mode = render_mode
        self._tools: list[dict[str, Any]] = []
        self._task_id: str | None = None
        self._turn = 0

    # ----- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        observation, info, state = self._call(self.actor.reset, "reset", seed, options)
        self._follow(state)
        self._tools = info.get(TOOLS) or []
        self._task_id = info.get(TASK_ID)
        self._turn = int(info.get(TURN) or 0)
        return observation, info

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        try:
            observation, reward, terminated, truncated, info, state = self._call(
                self.actor.step, f"step {self._turn + 1}", action
            )
        except EnvActorLost as exc:
            return self._ended(str(exc))
        self._follow(state)
        self._turn = int(info.get(TURN) or self._turn + 1)
        return observation, reward, terminated, truncated, info

    def render(self) -> Any:
        return self._call(self.actor.render, "render")

    def close(self) -> None:
        """Close the env in its actor (waiting up to :data:`CLOSE_WAIT_S`), then end the actor."""
        ray = self._ray
        with contextlib.suppress(Exception):  # dead already, or stuck in a step: the kill below ends it
            ray.get(self.actor.close.remote(), timeout=CLOSE_WAIT_S)
        with contextlib.suppress(Exception):
            ray.kill(self.actor, no_restart=True)

    def __repr__(self) -> str:
        return f"<RayEnv {self.recipe.env_id} in a Ray actor>"

    # ----- the actor -----------------------------------------------------------------
    def _call(self, method: Any, what: str, *args: Any) -> Any:
        """``method(*args)`` on the actor, its answer waited for. A lost actor raises
        :class:`EnvActorLost`; an exception of the env is raised as itself."""
        ray = self._ray
        try:
            return ray.get(method.remote(*args))
        except ray.exceptions.RayTaskError as exc:  # the env raised: its own exception, type and flags kept
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
        except _lost_actor_errors() as exc:
            raise EnvActorLost(f"the Ray actor of {self.recipe.env_id} was lost during {what}: {_words(exc)}") from None

    def _follow(self, state: Any) -> None:
        """Take on the actor's generator state, so the engine records it as it would a local env's."""
        if state is None:
            return
        generator = self._np_random
        if generator is None or type(generator.bit_generator).__name__ != state.get("bit_generator"):
            generator = self._np_random = np.random.Generator(getattr(np.random, state["bit_generator"])())
        generator.bit_generator.state = state

    def _ended(self, detail: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """The last step of an episode whose actor was lost: truncated, ``infra_error``, retryable."""
        self._turn += 1
        info: dict[str, Any] = {
            TOOLS: self._tools,
            TASK_ID: self._task_id,
            TURN: self._turn,
            REWARD_COMPONENTS: {},
            TERMINATION_REASON: "infra_error",
            TERMINATION_DETAIL: detail,
            SUCCESS: None,
            RETRYABLE: True,
        }
        return f"The episode ended: {detail}", 0.0, False, True, info


class RayEnvFactory:
    """Makes :class:`RayEnv` proxies of ``recipe``, each on a new actor of the connected cluster: the
    ``env_factory`` of a :class:`~horizongym.training.rollouts.engine.RolloutEngine`.

    :class:`RayBackendError` when Ray is not connected, or the env needs nodes with a Docker engine
    and no node declares one; a call raises it when no node takes the actor within
    ``placement_timeout_s``, or the env does not build on the actor.
    """

    def __init__(self, recipe: EnvRecipe, *, placement_timeout_s: float = PLACEMENT_TIMEOUT_S) -> None:
        ray = _ray()
        if not ray.is_initialized():
            raise RayBackendError("Ray is not connected: call ray_backend.connect() first")
        self.recipe = recipe
        self.placement_timeout_s = placement_timeout_s
        self.spec = None if is_env_url(recipe.env_id) else spec(recipe.env_id)
        self.resources: dict[str, float] = {}
        if needs_docker(recipe):
            if ray.cluster_resources().get(DOCKER_RESOURCE, 0) <= 0:
                raise RayBackendError(
                    f"{recipe.env_id} runs Docker sandboxes, and no node of the Ray cluster declares a Docker engine "
                    f"(resource {DOCKER_RESOURCE!r}): start the Docker engine here (see 'horizongym sandbox doctor'), "
                    f"start the cluster's Docker nodes with ray start --resources '{{\"{DOCKER_RESOURCE}\": 1}}', "
                    'or run the env without Docker (SWE-v0: --env-kwargs \'{"backend": "local"}\')'
                )
            self.resources[DOCKER_RESOURCE] = DOCKER_SHARE
        self._actors = _actor_class().options(
            resources=self.resources, scheduling_strategy="SPREAD", max_restarts=0, max_task_retries=0
        )

    def __call__(self) -> RayEnv:
        """A proxy on a new actor. An actor lost while it builds its env (its worker or node died, not
        its constructor) is replaced, up to ``BUILD_ATTEMPTS`` actors in all."""
        ray = _ray()
        lost: BaseException | None = None
        for _ in range(BUILD_ATTEMPTS):
            try:
                return self._build(ray)
            except ray.exceptions.RayActorError as exc:
                if getattr(exc, "actor_init_failed", False):  # the env's constructor raised: another try fails too
                    raise RayBackendError(
                        f"the Ray actor could not build {self.recipe.env_id} with {self.recipe.kwargs}: "
                        f"{_creation_error(exc)}"
                    ) from None
                lost = exc
        raise RayBackendError(
            f"{BUILD_ATTEMPTS} Ray actors of {self.recipe.env_id} in a row were lost while building the env "
            f"({_words(lost) if lost else 'no cause given'}): check the cluster's nodes (ray status) and their memory"
        )

    def _build(self, ray: ModuleType) -> RayEnv:
        actor = self._actors.remote(self.recipe, self.spec)
        try:
            description = ray.get(actor.describe.remote(), timeout=self.placement_timeout_s)
        except ray.exceptions.GetTimeoutError:
            ray.kill(actor, no_restart=True)
            needs = f"resources {self.resources}" if self.resources else "a CPU"
            raise RayBackendError(
                f"no node of the Ray cluster took an env actor of {self.recipe.env_id} (it needs {needs}) within "
                f"{self.placement_timeout_s:g} s; cluster resources: {ray.available_resources()}. Add nodes, or run "
                "fewer envs at once (--ray-workers)"
            ) from None
        return RayEnv(actor, self.recipe, description)


# ----- helpers -------------------------------------------------------------------------
def _ray() -> ModuleType:
    """The ``ray`` module; an ImportError with the fix when it is not installed."""
    try:
        import ray
    except ImportError:
        raise RayBackendError("the Ray backend needs Ray: pip install 'horizongym[distributed]'") from None
    return ray


@cache
def _lost_actor_errors() -> tuple[type[BaseException], ...]:
    """Ray's exceptions for an actor, worker, node or answer that is gone (not an error of the env)."""
    errors = _ray().exceptions
    return (
        errors.RayActorError,  # ActorDiedError, ActorUnavailableError
        errors.WorkerCrashedError,
        errors.NodeDiedError,
        errors.LocalRayletDiedError,
        errors.ObjectLostError,  # OwnerDiedError, ObjectFetchTimedOutError, ...
        errors.OutOfMemoryError,
        errors.ActorPlacementGroupRemoved,
        errors.ActorUnschedulableError,
        errors.RaySystemError,
    )


def _words(exc: BaseException) -> str:
    """An exception on one line: its type and the first line of its message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _creation_error(exc: BaseException) -> str:
    """What an actor that died while building its env says: the exception line of its traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    raised = [line for line in lines if not line.startswith(("File ", "^", "Traceback", "ray::", "The actor"))]
    return raised[-1] if raised else _words(exc)
