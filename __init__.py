"""horizongym: Gymnasium-compatible multi-turn text environments for tool-using LLM agents.

Everything needed to write an environment (``TextEnv``, ``Task``, ``tool``, ``register``,
``make``) loads with the package; the names for running episodes (``RolloutEngine``,
``make_policy``, ``Episode``, ``make_workspace``, ...) load on first use (PEP 562), so that
``import horizongym.envs`` does not pull in the policies or the rollout engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from horizongym.envs import (
    Task,
    TextEnv,
    UnknownEnvironment,
    describe,
    load_plugins,
    make,
    register,
    registry,
    spec,
)
from horizongym.tools import Tool, ToolCall, ToolSet, tool

if TYPE_CHECKING:
    from horizongym.agents.base import Action, Policy
    from horizongym.agents.scripted import RandomPolicy, expert_for
    from horizongym.agents.specs import make_policy
    from horizongym.envs.workspace import make_workspace
    from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine
    from horizongym.training.rollouts.store import EpisodeStore, read_episodes
    from horizongym.training.rollouts.trajectory import Episode

__version__ = "0.1.0"

_LAZY = {
    "Action": "horizongym.agents.base",
    "Policy": "horizongym.agents.base",
    "RandomPolicy": "horizongym.agents.scripted",
    "expert_for": "horizongym.agents.scripted",
    "make_policy": "horizongym.agents.specs",
    "make_workspace": "horizongym.envs.workspace",
    "EnvRecipe": "horizongym.training.rollouts.engine",
    "RolloutEngine": "horizongym.training.rollouts.engine",
    "EpisodeStore": "horizongym.training.rollouts.store",
    "read_episodes": "horizongym.training.rollouts.store",
    "Episode": "horizongym.training.rollouts.trajectory",
}
"""Names exported on first use, and the module that defines each."""


def __getattr__(name: str) -> Any:
    """Import a name of ``_LAZY`` from its module on first use (PEP 562) and keep it."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'horizongym' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


load_plugins()  # last: plugins may use anything above

__all__ = [
    "Action",
    "EnvRecipe",
    "Episode",
    "EpisodeStore",
    "Policy",
    "RandomPolicy",
    "RolloutEngine",
    "Task",
    "TextEnv",
    "Tool",
    "ToolCall",
    "ToolSet",
    "UnknownEnvironment",
    "__version__",
    "describe",
    "expert_for",
    "make",
    "make_policy",
    "make_workspace",
    "read_episodes",
    "register",
    "registry",
    "spec",
    "tool",
]
