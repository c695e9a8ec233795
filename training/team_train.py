"""``horizongym train ENV --policy team:CONFIG``: AgentDropout on a team's graph, its agents held fixed.

The team's members never change; what is learned is its communication graph
(:class:`~horizongym.agents.team.graph.GraphParameters`): node dropout, then edge dropout
(:func:`~horizongym.training.agentdropout.train_agentdropout`; Wang et al., ACL 2025,
arXiv 2503.18891), each training query one real env episode
(:class:`~horizongym.training.agentdropout.env_play.EnvPlay`) whose utility is its total reward.

* Training queries are the task seeds ``task_seed_start + q`` for ``q < Q``, with
  ``Q = max(node_batches · node_batch_size, edge_batches · edge_batch_size)`` (the authors' 2 × 20
  and 4 × 10 play the same 40 queries in each phase), on the env's train split.
* Evaluation plays the seeds ``eval_seed_start + q`` for ``q < eval_queries`` on the env's test
  split (a task-list env; else the evaluation env kwargs): the full graph (``fixed``: every edge,
  every agent) against the learned graph in the ``sampled`` and ``deterministic`` modes
  (:func:`~horizongym.training.agentdropout.evaluate`): accuracy = mean reward per query, prompt and
  completion tokens per query (``accuracy`` in ``summary.json`` is the mean reward: the accuracy for
  0/1 rewards; SearchJudge-v0's rewards are not 0/1, and the printed line says "mean reward").

The run folder holds ``graph.json`` (the learned parameters, the settings and the outcome in its
``metadata``), ``team.json`` (the team config with ``graph`` pointing at ``graph.json``, so
``--policy team:OUT/team.json`` plays the learned team), ``log.jsonl`` (one line per optimizer
step) and ``summary.json`` (the evaluation and the training cost).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from horizongym.agents.specs import PolicySpecError, make_policy
from horizongym.agents.team.graph import GraphParameters
from horizongym.agents.team.policy import TeamPolicy
from horizongym.training.agentdropout import AgentDropoutConfig, Evaluation, Trained, evaluate, train_agentdropout
from horizongym.training.agentdropout.env_play import EnvPlay
from horizongym.training.config import TrainConfig
from horizongym.training.rollouts import EnvRecipe

TEAM_DEST = "team_"
"""Prefix of the parsed names of the team-training flags (so ``--graph-lr`` does not meet ``--lr``)."""
TEAM_FLAGS = {"lr": "--graph-lr", "temperature": "--graph-temperature"}
"""AgentDropoutConfig fields whose flag is not ``--kebab-case`` of the name (``train`` has ``--lr`` and
``--temperature`` for the model)."""
TEAM_SHARED = {"seed": "seed", "max_concurrency": "concurrency"}
"""AgentDropoutConfig fields read from ``train``'s own flags: ``--seed``, ``--concurrency``."""
TEAM_USES = frozenset(
    {
        "env_id",
        "env_kwargs",
        "eval_env_kwargs",
        "out_dir",
        "seed",
        "concurrency",
        "max_turns",
        "max_attempts",
        "system_prompt",
        "temperature",
        "max_new_tokens",
        "task_seed_start",
        "eval_seed_start",
    }
)
"""The TrainConfig settings team training reads; setting any other one with a team is an error."""
RUN_FILES = ("graph.json", "team.json", "log.jsonl", "summary.json", "metrics.jsonl", "checkpoints")
"""What marks a folder as holding a run already."""


class TeamTrainError(ValueError):
    """Settings or a team that cannot be trained (one line: what is wrong and what to do)."""


@dataclass(frozen=True)
class TeamTrainSettings:
    """Everything one team-training run needs (module docstring)."""

    env_id: str
    team_config: Path
    out: Path
    dropout: AgentDropoutConfig
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_queries: int = 20
    task_seed_start: int = 0
    eval_seed_start: int = 1_000_000
    max_turns: int | None = None
    max_attempts: int = 3
    system_prompt: str | None = None
    temperature: float = 1.0
    max_tokens: int | None = None
    progress: bool = True

    @property
    def train_seeds(self) -> list[int]:
        d = self.dropout
        count = max(d.node_batches * d.node_batch_size, d.edge_batches * d.edge_batch_size)
        return [self.task_seed_start + q for q in range(count)]

    @property
    def eval_seeds(self) -> list[int]:
        return [self.eval_seed_start + q for q in range(self.eval_queries)]


def flag_of(name: str) -> str:
    """The ``train`` flag of the AgentDropoutConfig field ``name``."""
    if name in TEAM_SHARED:
        return "--" + TEAM_SHARED[name].replace("_", "-")
    return TEAM_FLAGS.get(name, "--" + name.replace("_", "-"))


def dropout_config(values: Mapping[str, Any]) -> AgentDropoutConfig:
    """The AgentDropoutConfig of parsed ``train`` arguments (``values``: their names and values)."""
    fields: dict[str, Any] = {}
    for name in AgentDropoutConfig.model_fields:
        value = values.get(TEAM_SHARED[name]) if name in TEAM_SHARED else values.get(TEAM_DEST + name)
        if value is not None:
            fields[name] = value
    try:
        config = AgentDropoutConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{flag_of(str(e['loc'][0]))}: {e['msg']}" for e in exc.errors() if e["loc"])
        raise TeamTrainError(f"bad team-training settings: {problems}") from None
    if not config.node_batches and not config.edge_batches:
        raise TeamTrainError("--node-batches and --edge-batches are both 0: nothing to train; set one of them")
    return config


def unused_train_settings(values: Mapping[str, Any]) -> list[str]:
    """The flags of TrainConfig settings a team run does not read that were set away from their default."""
    unused = []
    for name, info in TrainConfig.model_fields.items():
        if name in TEAM_USES or name not in values:
            continue
        if values[name] != info.get_default(call_default_factory=True):
            unused.append(name)
    return unused


def check_out(out: Path) -> None:
    """Refuse an ``--out`` folder that already holds a run (or is a file)."""
    if out.exists() and not out.is_dir():
        raise TeamTrainError(f"--out {out} is a file; give a folder for the run")
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held:
        raise TeamTrainError(f"{out} already holds a training run ({held[0]}); choose another --out")


def build(settings: TeamTrainSettings) -> TeamPolicy:
    """The team the config describes, its members built as ``horizongym rollout`` builds them."""
    spec = f"team:{settings.team_config}"
    try:
        team = make_policy(spec, settings.env_id, temperature=settings.temperature, max_tokens=settings.max_tokens)
    except PolicySpecError as exc:
        raise TeamTrainError(str(exc)) from None
    assert isinstance(team, TeamPolicy)
    return team


@dataclass(frozen=True)
class TeamTrainResult:
    """A finished run: the learned parameters, the summary written, the files."""

    trained: Trained
    summary: dict[str, Any]
    files: dict[str, Path]

    def line(self) -> str:
        """The one-line summary ``train`` prints."""
        s = self.summary
        full, det, sampled = s["full"], s["learned"]["deterministic"], s["learned"]["sampled"]
        cut = 1 - det["prompt_tokens"] / full["prompt_tokens"] if full["prompt_tokens"] else 0.0
        dropped = ", ".join(f"{name} (round {r + 1})" for r, names in enumerate(s["dropped"]) for name in names)
        cost = s["training_cost"]
        return (
            f"team {s['team']} on {s['env_id']}: mean reward {full['accuracy']:.3f} full -> {det['accuracy']:.3f} "
            f"learned (sampled {sampled['accuracy']:.3f}), prompt tokens/query {full['prompt_tokens']:.0f} -> "
            f"{det['prompt_tokens']:.0f} ({cut:.0%} fewer; sampled {sampled['prompt_tokens']:.0f}) over "
            f"{s['eval_queries']} held-out tasks; dropped: {dropped or 'none'}; training {cost['plays']} episodes, "
            f"{cost['prompt_tokens']} prompt tokens"
        )


async def _run(settings: TeamTrainSettings, team: TeamPolicy) -> tuple[Trained, dict[str, Evaluation]]:
    def play(env_kwargs: dict[str, Any]) -> EnvPlay:
        return EnvPlay(
            team,
            EnvRecipe(settings.env_id, env_kwargs),
            max_turns=settings.max_turns,
            max_attempts=settings.max_attempts,
            system_prompt=settings.system_prompt,
            sampling_seed=settings.dropout.seed,
        )

    train_play, eval_play = play(settings.env_kwargs), play(settings.eval_env_kwargs)
    concurrency = settings.dropout.max_concurrency
    try:
        start = team.parameters
        trained = await train_agentdropout(
            start, train_play, settings.train_seeds, settings.dropout, progress=settings.progress
        )
        evaluation = {
            "full": (await evaluate(start, eval_play, settings.eval_seeds, ("fixed",), max_concurrency=concurrency))[
                "fixed"
            ],
            **await evaluate(
                trained.params,
                eval_play,
                settings.eval_seeds,
                ("sampled", "deterministic"),
                seed=settings.dropout.seed,
                max_concurrency=concurrency,
            ),
        }
    finally:
        await team.aclose()
    return trained, evaluation


def train_team(settings: TeamTrainSettings) -> TeamTrainResult:
    """Train, evaluate and write the run folder (module docstring); :class:`TeamTrainError` on bad input."""
    check_out(settings.out)
    team = build(settings)
    config = team.config
    started = time.monotonic()
    trained, evaluation = asyncio.run(_run(settings, team))
    seconds = time.monotonic() - started
    names = team.agent_names
    params = trained.params
    params.metadata["team"] = config.name
    params.metadata["env_id"] = settings.env_id
    params.metadata["train_seeds"] = settings.train_seeds
    summary = {
        "team": config.name,
        "env_id": settings.env_id,
        "env_kwargs": settings.env_kwargs,
        "eval_env_kwargs": settings.eval_env_kwargs,
        "train_queries": len(settings.train_seeds),
        "eval_queries": settings.eval_queries,
        "eval_seed_start": settings.eval_seed_start,
        "full": _figures(evaluation["full"]),
        "learned": {mode: _figures(evaluation[mode]) for mode in ("sampled", "deterministic")},
        "dropped": [[names[i] for i in range(len(names)) if not params.active[r, i]] for r in range(params.rounds)],
        "surviving_edges": {
            "spatial": int(params.spatial_mask.sum()),
            "temporal": int(params.temporal_mask.sum()),
        },
        "training_cost": asdict(trained.log.cost),
        "seconds": round(seconds, 3),
        "settings": settings.dropout.model_dump(),
    }
    files = _write(settings, config.model_dump(mode="json", exclude_none=True), params, trained, summary)
    return TeamTrainResult(trained, summary, files)


def _figures(evaluation: Evaluation) -> dict[str, float]:
    return {
        "accuracy": evaluation.accuracy,
        "prompt_tokens": evaluation.prompt_tokens,
        "completion_tokens": evaluation.completion_tokens,
        "edges": evaluation.edges,
    }


def _write(
    settings: TeamTrainSettings,
    team_config: dict[str, Any],
    params: GraphParameters,
    trained: Trained,
    summary: dict[str, Any],
) -> dict[str, Path]:
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / f"{name}.json" for name in ("graph", "team", "summary")} | {"log": out / "log.jsonl"}
    params.save(files["graph"])
    team_config["graph"] = files["graph"].name
    for agent in team_config["agents"]:  # a member spec naming a relative model folder works from anywhere
        agent["policy"] = _absolute(agent["policy"])
    files["team"].write_text(json.dumps(team_config, indent=2) + "\n", encoding="utf-8")
    with files["log"].open("w", encoding="utf-8") as log:
        for record in trained.log.batches:
            log.write(json.dumps(asdict(record)) + "\n")
    files["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return files


def _absolute(spec: str) -> str:
    """``spec`` with a relative ``hf:PATH`` (read from the working folder) made absolute; others unchanged."""
    if spec.startswith("hf:") and not spec.startswith("hf:gguf:"):
        path = Path(spec.removeprefix("hf:")).expanduser()
        if not path.is_absolute() and path.exists():
            return f"hf:{path.resolve()}"
    return spec
