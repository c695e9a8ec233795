"""Forkable episodes: copy a running episode's state, and start any number of episodes from the copy.

``snapshot(env)`` returns a :class:`Snapshot` of the episode an env is playing, wrappers included
(Gymnasium's ``TimeLimit`` step count, ``OrderEnforcing``'s reset flag, a workspace's report);
``restore(env, snapshot)`` puts a built env of the same kind (same id and keyword arguments, in
this process or another) into that state, and the episode goes on from there. Restoring twice from
one snapshot gives two independent episodes: nothing of one is shared with the other. A snapshot
is picklable; what it holds outside the process (an SWE container's committed image) is freed by
``release(env, snapshot)`` once no more branches will start from it.

Each layer keeps its own part of the state:

* the env (:meth:`horizongym.envs.base.TextEnv.snapshot` / ``restore``): the base class's
  :class:`~horizongym.envs.base.EpisodeState`, the random generator's state, and what the
  subclass names in its ``fork_state`` (the task's data; for SWE-v0, the container's files);
* a wrapper: Gymnasium's own wrappers are known here (:data:`WRAPPER_STATE`); any other wrapper
  is forkable when it defines ``wrapper_state()`` and ``load_wrapper_state(state)``
  (:class:`~horizongym.envs.workspace.MarkovianWorkspace` does), and :class:`NotForkable` names
  it otherwise.

An env that cannot be forked raises :class:`NotForkable` with the reason: one without
``snapshot``/``restore``, or one that says why in its ``fork_refusal`` attribute (a served env,
:class:`~horizongym.envs.remote.client.RemoteEnv`, whose episode lives on its server).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit


class NotForkable(TypeError):
    """An env (or a wrapper around it) whose episodes cannot be snapshot; the message says why."""


@dataclass(frozen=True)
class Snapshot:
    """A picklable copy of one episode at one moment (or a handle to state stored outside the process).

    ``env_type`` is the unwrapped env's class (``module:Class``), ``turn`` the turns the episode had
    played when it was taken, ``state`` the env's own part, ``wrappers`` one entry per wrapper,
    outermost first: its class and its state.
    """

    env_type: str
    turn: int
    state: Any
    wrappers: tuple[tuple[str, Any], ...] = ()


@runtime_checkable
class Forkable(Protocol):
    """An unwrapped env whose episodes can be snapshot and restored."""

    def snapshot(self) -> Snapshot: ...

    def restore(self, snapshot: Snapshot) -> None: ...

    def release_snapshot(self, snapshot: Snapshot) -> None: ...


def type_name(obj: object) -> str:
    """``module:Class`` of ``obj``'s class: how a snapshot names the env and wrappers it was taken from."""
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _time_limit_state(wrapper: Any) -> Any:
    return wrapper._elapsed_steps


def _load_time_limit(wrapper: Any, state: Any) -> None:
    wrapper._elapsed_steps = state


def _order_state(wrapper: Any) -> Any:
    return wrapper._has_reset


def _load_order(wrapper: Any, state: Any) -> None:
    wrapper._has_reset = state


def _checker_state(wrapper: Any) -> Any:
    return None


def _load_checker(wrapper: Any, state: Any) -> None:
    """The passive checker's checks run on an env's first reset and steps: they ran in the env the
    snapshot was taken from, so a restored one skips them (its first step is no first step)."""
    wrapper.checked_reset = wrapper.checked_step = wrapper.checked_data_reuse = True
    wrapper._previous_data = None


WRAPPER_STATE: dict[type[Any], tuple[Callable[[Any], Any], Callable[[Any, Any], None]]] = {
    TimeLimit: (_time_limit_state, _load_time_limit),
    OrderEnforcing: (_order_state, _load_order),
    PassiveEnvChecker: (_checker_state, _load_checker),
}
"""How the state of each of Gymnasium's wrappers that ``horizongym.make`` applies is read and set."""


def _layers(env: gym.Env[Any, Any]) -> list[gym.Env[Any, Any]]:
    """The wrappers around the unwrapped env, outermost first."""
    layers: list[gym.Env[Any, Any]] = []
    while isinstance(env, gym.Wrapper):
        layers.append(env)
        env = env.env
    return layers


def _wrapper_access(wrapper: Any) -> tuple[Callable[[Any], Any], Callable[[Any, Any], None]]:
    known = WRAPPER_STATE.get(type(wrapper))
    if known is not None:
        return known
    if callable(getattr(wrapper, "wrapper_state", None)) and callable(getattr(wrapper, "load_wrapper_state", None)):
        return (lambda w: w.wrapper_state()), (lambda w, s: w.load_wrapper_state(s))
    raise NotForkable(
        f"the wrapper {type_name(wrapper)} keeps state that cannot be copied; give it wrapper_state() and "
        "load_wrapper_state(state) to fork episodes through it"
    )


def _forkable(env: gym.Env[Any, Any]) -> Forkable:
    inner = env.unwrapped
    refusal = getattr(inner, "fork_refusal", None)
    if refusal:
        raise NotForkable(f"{type_name(inner)} cannot snapshot its episodes: {refusal}")
    if not isinstance(inner, Forkable):
        raise NotForkable(f"{type_name(inner)} cannot snapshot its episodes (it has no snapshot/restore)")
    return inner


def snapshot(env: gym.Env[Any, Any]) -> Snapshot:
    """A snapshot of the episode ``env`` is playing, its wrappers' state included (see the module docstring)."""
    wrappers = tuple((type_name(w), copy.deepcopy(_wrapper_access(w)[0](w))) for w in _layers(env))
    return replace(_forkable(env).snapshot(), wrappers=wrappers)


def restore(env: gym.Env[Any, Any], snapshot: Snapshot) -> None:
    """Put ``env`` (built like the one the snapshot was taken from) into the snapshot's state.

    Raises ValueError when ``env`` is of another kind or wrapped otherwise; the env is left as it was.
    """
    inner = _forkable(env)
    if type_name(inner) != snapshot.env_type:
        raise ValueError(f"a snapshot of {snapshot.env_type} cannot be restored into {type_name(inner)}")
    layers = _layers(env)
    names = tuple(type_name(w) for w in layers)
    taken = tuple(name for name, _ in snapshot.wrappers)
    if names != taken:
        raise ValueError(f"the snapshot was taken through the wrappers {list(taken)}; this env has {list(names)}")
    access = [_wrapper_access(w) for w in layers]
    inner.restore(snapshot)
    for wrapper, (_, load), (_, state) in zip(layers, access, snapshot.wrappers, strict=True):
        load(wrapper, copy.deepcopy(state))


def release(env: gym.Env[Any, Any], snapshot: Snapshot) -> None:
    """Free what ``snapshot`` holds outside the process (nothing, for most envs); it cannot be restored after."""
    _forkable(env).release_snapshot(snapshot)


def is_forkable(env: gym.Env[Any, Any]) -> bool:
    """Whether ``env`` and every wrapper around it can be snapshot (:func:`check_forkable` says why not)."""
    try:
        check_forkable(env)
    except NotForkable:
        return False
    return True


def check_forkable(env: gym.Env[Any, Any]) -> None:
    """Raise :class:`NotForkable` with the reason unless ``env`` and every wrapper around it can be snapshot."""
    _forkable(env)
    for wrapper in _layers(env):
        _wrapper_access(wrapper)
