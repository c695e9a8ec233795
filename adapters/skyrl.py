"""horizongym envs as skyrl-gym text envs (``skyrl-gym`` 0.4), for SkyRL's generators and trainers.

:class:`HorizonSkyRLEnv` is a ``skyrl_gym`` ``BaseTextEnv`` around any horizongym env, and
:func:`register_skyrl_envs` registers every horizongym id under its full name
(``horizongym/KeyChain-v0``), so SkyRL builds them as it builds its own::

    skyrl_gym.make("horizongym/KeyChain-v0", env_config=..., extras={"seed": 7})

SkyRL's contract, as the env meets it:

* ``extras`` is the dataset row's per-sample part: ``seed`` picks the task (the same seed, the
  same task), ``options`` go to ``reset``; ``env_config`` (a mapping, e.g. the trainer's
  ``skyrl_gym.<env_class>`` block) holds constructor keywords for the horizongym env.
* ``init(prompt)`` resets the env and returns the conversation to generate from: the prompt's
  system messages, then the env's first observation as the user message (the task is the
  env's, drawn from the seed), and metadata with ``task_id`` and the OpenAI schemas of the
  env's ``tools``.
* ``step(action)`` takes the model's text (Hermes ``<tool_call>`` blocks, tag actions or plain
  text: whatever the env parses) and returns ``BaseTextEnvStepOutput``: the next observation as
  a user message (none once the episode is done, SkyRL's convention; the last one is then in
  ``metadata["observation"]``), the env's reward, ``done`` (terminated or truncated), and the
  step's ``info`` as ``metadata`` with ``terminated`` / ``truncated`` added.
* ``get_metrics()``: the episode's ``return``, ``success`` and ``turns``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import skyrl_gym
from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput

from horizongym.envs import full_id, make, registry, spec
from horizongym.envs.contract import SUCCESS
from horizongym.envs.remote.protocol import jsonable

ENTRY_POINT: Final = "horizongym.adapters.skyrl:HorizonSkyRLEnv"


class HorizonSkyRLEnv(BaseTextEnv):
    """A horizongym env as a SkyRL text env: chat messages in and out, the env's rewards."""

    def __init__(
        self,
        env_config: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
        *,
        env_id: str,
    ) -> None:
        super().__init__()
        extras = dict(extras or {})
        self.env_id = full_id(env_id)
        self.env = make(env_id, **dict(env_config or {}))
        self.seed: int | None = extras.get("seed")
        self.options: dict[str, Any] | None = extras.get("options")
        turn_limit = getattr(self.env.unwrapped, "max_turns", None)
        self.max_turns: int = turn_limit if isinstance(turn_limit, int) else 1
        self.episode_return = 0.0
        self.success: bool | None = None

    def init(self, prompt: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        observation, info = self.env.reset(seed=self.seed, options=self.options)
        self.turns, self.episode_return, self.success = 0, 0.0, None
        system = [message for message in prompt or [] if message.get("role") == "system"]
        return [*system, {"role": "user", "content": observation}], {
            "task_id": info.get("task_id"),
            "tools": info.get("tools", []),
        }

    def step(self, action: str) -> BaseTextEnvStepOutput:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.turns += 1
        self.episode_return += float(reward)
        done = bool(terminated or truncated)
        metadata = jsonable(info) | {"terminated": bool(terminated), "truncated": bool(truncated)}
        if done:
            self.success = info.get(SUCCESS)
            metadata["observation"] = observation
        return BaseTextEnvStepOutput(
            observations=[] if done else [{"role": "user", "content": observation}],
            reward=float(reward),
            done=done,
            metadata=metadata,
        )

    def get_metrics(self) -> dict[str, Any]:
        return {"return": self.episode_return, "success": float(bool(self.success)), "turns": self.turns}

    def close(self) -> None:
        self.env.close()


def register_skyrl_envs(env_ids: Iterable[str] | None = None) -> list[str]:
    """Register horizongym envs (all registered ones by default) with ``skyrl_gym.register``.

    Each is registered under its full id (``horizongym/KeyChain-v0``); one already registered
    by an earlier call is left as it is. An unknown id raises
    :class:`~horizongym.envs.UnknownEnvironment`. Returns the full ids.
    """
    ids = [full_id(spec(env_id).id) for env_id in (sorted(registry) if env_ids is None else env_ids)]
    for env_id in ids:
        existing = skyrl_gym.registry.get(env_id)
        if existing is None:
            skyrl_gym.register(id=env_id, entry_point=ENTRY_POINT, kwargs={"env_id": env_id})
        elif existing.entry_point != ENTRY_POINT:
            raise ValueError(f"skyrl_gym already has another env registered as {env_id!r}: {existing.entry_point}")
    return ids
