"""horizongym's registry: a thin layer over Gymnasium's own, under the namespace ``horizongym``.

``register("Name-v0", ...)`` registers ``horizongym/Name-v0`` in ``gymnasium.registry``, so
``gymnasium.make("horizongym/Name-v0")`` and ``horizongym.make("Name-v0")`` build the same
thing with the same wrappers (TimeLimit, OrderEnforcing, PassiveEnvChecker). Third-party
packages register through the entry-point group ``horizongym.envs``: each entry point names
a module (imported) or a callable (called with no arguments) that calls :func:`register`.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec, load_env_creator

NAMESPACE = "horizongym"
ENTRY_POINT_GROUP = "horizongym.envs"
ENV_URL_SCHEMES = ("ws://", "wss://", "http://", "https://")
"""How the URL of an env server starts: :func:`make` plays the env it serves."""


class UnknownEnvironment(gym.error.Error, KeyError):
    """An id that is not registered; the message names the closest registered ids."""

    def __init__(self, env_id: str, known: list[str]) -> None:
        close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"unknown environment '{env_id}'.{hint} Run 'horizongym list' to see all ids.")

    def __str__(self) -> str:
        return str(self.args[0])


def full_id(env_id: str) -> str:
    """``Name-v0`` → ``horizongym/Name-v0``; other namespaces are left as they are."""
    return env_id if "/" in env_id else f"{NAMESPACE}/{env_id}"


def short_id(env_id: str) -> str:
    prefix = f"{NAMESPACE}/"
    return env_id[len(prefix) :] if env_id.startswith(prefix) else env_id


def register(
    id: str,
    entry_point: Any,
    *,
    max_episode_steps: int | None = None,
    kwargs: dict[str, Any] | None = None,
    **spec_options: Any,
) -> EnvSpec:
    """Register an environment under ``horizongym/``; returns its Gymnasium ``EnvSpec``."""
    gym.register(
        id=full_id(id), entry_point=entry_point, max_episode_steps=max_episode_steps, kwargs=kwargs, **spec_options
    )
    return gym.spec(full_id(id))


class NamespaceRegistry(Mapping[str, EnvSpec]):
    """A live, read-only view of the ``horizongym/`` part of ``gymnasium.registry``.

    Iterates full ids (``horizongym/Name-v0``); lookups take either form.
    """

    def __getitem__(self, env_id: str) -> EnvSpec:
        spec = gym.registry.get(full_id(env_id))
        if spec is None or spec.namespace != NAMESPACE:
            raise KeyError(env_id)
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter([env_id for env_id, spec in gym.registry.items() if spec.namespace == NAMESPACE])

    def __len__(self) -> int:
        return sum(1 for spec in gym.registry.values() if spec.namespace == NAMESPACE)

    def __contains__(self, env_id: object) -> bool:
        if not isinstance(env_id, str):
            return False
        spec = gym.registry.get(full_id(env_id))
        return spec is not None and spec.namespace == NAMESPACE

    def __repr__(self) -> str:
        return f"<horizongym registry: {sorted(self)}>"


registry = NamespaceRegistry()


def spec(env_id: str) -> EnvSpec:
    """The ``EnvSpec`` of a registered id (``Name-v0`` or ``horizongym/Name-v0``)."""
    key = full_id(env_id)
    if key not in gym.registry:
        raise UnknownEnvironment(env_id, sorted(short_id(i) for i in registry))
    return gym.registry[key]


def make(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """Build a registered environment, with Gymnasium's usual wrappers applied; or, for the URL of an
    env server (``ws://host:port``, ``http://host:port``), a :class:`~horizongym.envs.remote.client.RemoteEnv`
    that plays the env it serves."""
    if is_env_url(env_id):
        from horizongym.envs.remote.client import make_remote

        return make_remote(env_id, **kwargs)
    return gym.make(spec(env_id), **kwargs)


def is_env_url(env_id: str) -> bool:
    """Whether ``env_id`` is the URL of an env server (:data:`ENV_URL_SCHEMES`) rather than a registered id."""
    return isinstance(env_id, str) and env_id.startswith(ENV_URL_SCHEMES)


def describe(env_id: str) -> str:
    """One line saying what an environment is (its ``description`` or docstring's first line)."""
    entry = spec(env_id).entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    text = getattr(creator, "description", "") or inspect.getdoc(creator) or ""
    return text.strip().splitlines()[0] if text.strip() else ""


def load_plugins() -> list[str]:
    """Import every ``horizongym.envs`` entry point; a broken plugin warns, never breaks import."""
    loaded = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = entry.load()
            if callable(target):
                target()
            loaded.append(entry.name)
        except Exception as exc:
            warnings.warn(f"horizongym plugin '{entry.name}' failed to load: {exc!r}", stacklevel=2)
    return loaded
