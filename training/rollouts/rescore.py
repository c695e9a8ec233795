"""Rescore: recompute stored episodes' rewards under other reward settings, running no tool.

An env whose rewards are all reward events (``TextEnv.score``; it names its reward keywords in
``reward_settings``) records with every step what each reward was paid for and the facts that
priced it. A step's reward is a pure function of those events, so a rescore builds the env
with the new reward keywords (never reset, no tool run) and prices every recorded event again
with its ``event_rewards``, in the recorded order, as the step did:

    components[c] = Σ over the step's events, in order, of event_rewards(event)[c]
    reward        = Σ_c components[c];   total_reward = Σ over steps of reward

With unchanged settings this reproduces the stored rewards exactly. The new episode keeps
everything else, and its ``env_kwargs`` take the new reward keywords, so it says what it was
scored with. An env with other rewards (``reward_settings`` None), a keyword that is not a
reward setting, or a step with rewards but no events is refused with a :class:`RescoreError`.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gymnasium.envs.registration import load_env_creator

from horizongym.envs import registry, short_id, spec
from horizongym.envs.base import UnknownRewardEvent
from horizongym.envs.registration import is_env_url
from horizongym.training.rollouts.engine import EnvRecipe
from horizongym.training.rollouts.trajectory import Episode, Step


class RescoreError(ValueError):
    """Episodes that cannot be rescored (the message says why, and what can be)."""


def reward_settings(env_id: str) -> frozenset[str] | None:
    """The reward keywords of the registered ``env_id`` (``TextEnv.reward_settings``); None: not all its
    rewards are reward events."""
    entry = spec(env_id).entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    settings = getattr(creator, "reward_settings", None) if inspect.isclass(creator) else None
    return frozenset(settings) if settings is not None else None


def rescorable_envs() -> list[str]:
    """The registered envs whose rewards are all reward events."""
    return sorted(short_id(env_id) for env_id in registry if reward_settings(env_id) is not None)


def rescore_episodes(
    episodes: Iterable[Episode], reward_kwargs: dict[str, Any], *, env_kwargs: dict[str, Any] | None = None
) -> list[Episode]:
    """Every episode rescored with ``reward_kwargs`` (see the module docstring).

    The env that prices an episode's events is built from its ``env_id`` and ``env_kwargs``,
    updated with ``env_kwargs`` (to build it where the recorded arguments no longer do, e.g. a
    moved data path; not stored) and ``reward_kwargs`` (stored); one per (env id, arguments).
    """
    pricers: dict[str, Any] = {}
    rescored = []
    try:
        for episode in episodes:
            recipe = EnvRecipe(episode.env_id, {**episode.env_kwargs, **(env_kwargs or {}), **reward_kwargs})
            key = json.dumps([recipe.env_id, recipe.kwargs], sort_keys=True, default=str)
            if key not in pricers:
                pricers[key] = _pricer(recipe, reward_kwargs)
            rescored.append(rescore_episode(episode, pricers[key], reward_kwargs))
    finally:
        for env in pricers.values():
            env.close()
    return rescored


def rescore_episode(episode: Episode, pricer: Any, reward_kwargs: dict[str, Any] | None = None) -> Episode:
    """``episode`` with every step's reward recomputed from its events by ``pricer`` (an env's
    ``event_rewards``), and ``reward_kwargs`` added to its ``env_kwargs``."""
    steps: list[Step] = []
    total = 0.0
    for step in episode.steps:
        components = _price(episode, step, pricer)
        reward = float(sum(components.values()))
        total += reward
        steps.append(step.model_copy(update={"reward": reward, "reward_components": components}))
    update: dict[str, Any] = {"steps": steps, "total_reward": total}
    if reward_kwargs:
        update["env_kwargs"] = {**episode.env_kwargs, **reward_kwargs}
    return episode.model_copy(update=update)


def _price(episode: Episode, step: Step, pricer: Any) -> dict[str, float]:
    """The step's reward components from its events, summed in the order the step paid them."""
    where = f"{episode.env_id} seed {episode.seed} sample {episode.sample} step {step.turn}"
    if step.reward_components and not step.reward_events:
        raise RescoreError(
            f"{where} has reward components {step.reward_components} but no reward events: it was recorded "
            "before reward events were kept, or by an env that pays rewards outside TextEnv.score"
        )
    if step.reward != sum(step.reward_components.values()):
        raise RescoreError(f"{where}: its reward {step.reward} is not the sum of its components (a wrapper changed it)")
    components: dict[str, float] = {}
    for event in step.reward_events:
        try:
            values = {component: float(value) for component, value in pricer.event_rewards(event).items()}
        except (UnknownRewardEvent, KeyError, TypeError, ValueError) as exc:
            raise RescoreError(f"{where}: cannot price the reward event {event}: {type(exc).__name__}: {exc}") from None
        for component, value in values.items():
            components[component] = components.get(component, 0.0) + value
    return components


def _pricer(recipe: EnvRecipe, reward_kwargs: dict[str, Any]) -> Any:
    """The unwrapped env that prices ``recipe``'s events; refused when its rewards are not all events."""
    if is_env_url(recipe.env_id):
        raise RescoreError(
            f"episodes of the served env at {recipe.env_id} cannot be rescored here: rescoring builds the env "
            "itself, with its settings, which are the server's; replay them against the server instead"
        )
    settings = reward_settings(recipe.env_id)
    if settings is None:
        raise RescoreError(
            f"{recipe.env_id}'s rewards are not all reward events (TextEnv.score), so they cannot be recomputed "
            f"without running its tools; envs that can be rescored: {', '.join(rescorable_envs())}"
        )
    unknown = sorted(set(reward_kwargs) - settings)
    if unknown:
        raise RescoreError(
            f"--reward-kwargs {unknown} are not reward settings of {recipe.env_id} (those are {sorted(settings)}); "
            "other keywords change the episodes themselves: replay them, or run them again"
        )
    try:
        return recipe.build().unwrapped
    except Exception as exc:
        raise RescoreError(
            f"cannot build {recipe.env_id} with {recipe.kwargs}: {type(exc).__name__}: {exc}"
            " (--env-kwargs changes the arguments it is built with, e.g. a data path that moved)"
        ) from exc


def write_episodes(path: str | os.PathLike[str], episodes: Iterable[Episode]) -> None:
    """Write ``episodes`` as a new JSONL run file, whole or not at all (a temporary file renamed into place)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            for episode in episodes:
                out.write(episode.model_dump_json().encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
