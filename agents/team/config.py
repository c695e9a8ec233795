"""A team's configuration file (``.json`` or ``.toml``): its members, rounds, decision node and graph.

```json
{"name": "search-vote", "rounds": 2,
 "agents": [{"name": "alice", "policy": "expert", "prompt": "You are a careful researcher."},
            {"name": "bob", "policy": "random", "votes": 1}],
 "decision": {"kind": "majority"}}
```

``graph`` names a saved :class:`~horizongym.agents.team.graph.GraphParameters` JSON, relative to
the config file (default: the full graph). ``mode`` is how each turn realises it: ``fixed`` (every
allowed edge; the default without a graph file), ``deterministic`` (edges with ``p > 0.5``; the
default with one) or ``sampled``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from horizongym.agents.team.graph import GraphParameters, Mode

DEFAULT_REFER_PROMPT = (
    "You are the team's final decision maker. Read your teammates' messages and give the one action "
    "the team takes next."
)


class TeamConfigError(ValueError):
    """A team config that cannot be used; the message names the file and the field."""


class MemberConfig(BaseModel):
    """One role agent: its name, its policy spec, its role prompt and its vote's weight."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r'^[^"<>\s]+$')
    policy: str = Field(min_length=1)
    prompt: str = ""
    votes: float = Field(default=1.0, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, gt=0)


class DecisionConfig(BaseModel):
    """The decision node: a weighted majority vote, or a "final refer" policy."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["majority", "refer"] = "majority"
    policy: str | None = None
    prompt: str = DEFAULT_REFER_PROMPT
    temperature: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _refer_needs_policy(self) -> DecisionConfig:
        if self.kind == "refer" and not self.policy:
            raise ValueError('kind "refer" needs a "policy" spec for the final refer agent')
        return self


class TeamConfig(BaseModel):
    """A team (module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    rounds: int = Field(ge=1)
    agents: list[MemberConfig] = Field(min_length=1)
    decision: DecisionConfig = DecisionConfig()
    graph: str | None = None
    mode: Mode | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _unique_names(self) -> TeamConfig:
        names = [a.name for a in self.agents]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"agent names must be unique; repeated: {', '.join(repeated)}")
        return self

    @property
    def graph_mode(self) -> Mode:
        """``mode``, or its default: ``deterministic`` with a graph file, else ``fixed``."""
        return self.mode or ("deterministic" if self.graph else "fixed")


def load_team_config(path: str | Path) -> tuple[TeamConfig, GraphParameters]:
    """Read and check a team config and its graph; :class:`TeamConfigError` (one line) when it cannot be used."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TeamConfigError(f"cannot read the team config {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise TeamConfigError(f"team config {path}: write it as .json or .toml, not '{path.suffix or 'no suffix'}'")
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        if isinstance(exc, TeamConfigError):
            raise
        raise TeamConfigError(f"team config {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    try:
        config = TeamConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        raise TeamConfigError(f"team config {path}: field {where}: {error['msg']}") from None
    return config, team_parameters(config, path.parent, path)


def team_parameters(config: TeamConfig, base: Path, source: Path | None = None) -> GraphParameters:
    """The team's graph: the file ``config.graph`` names (relative to ``base``), else the full graph."""
    n, rounds = len(config.agents), config.rounds
    if config.graph is None:
        return GraphParameters.full(n, rounds)
    graph_path = (base / config.graph).expanduser()
    where = f"team config {source}: field graph" if source else "team graph"
    try:
        parameters = GraphParameters.load(graph_path)
    except ValueError as exc:
        raise TeamConfigError(f"{where}: {exc}") from None
    if (parameters.n_agents, parameters.rounds) != (n, rounds):
        raise TeamConfigError(
            f"{where}: {graph_path} is for {parameters.n_agents} agents and {parameters.rounds} rounds, "
            f"the team has {n} agents and {rounds} rounds; save a graph of this team's shape"
        )
    return parameters
