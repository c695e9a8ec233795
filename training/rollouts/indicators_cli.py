"""``horizongym team-indicators``: build an AgentDropoutV2 indicator pool from a team's failed episodes.

    horizongym team-indicators RUN.jsonl [RUN2.jsonl ...] --extractor SPEC --out pool.json
        [--reward-below R] [--similarity J]

Every member message of every failed episode (``success`` false, or a total reward below ``R``)
goes to the extractor, any policy spec (``openai:URL#MODEL``, ``hf:PATH``...), prompted to
generalise the message's error (:class:`horizongym.agents.team.indicators.PolicyExtractor`); the
indicators are deduplicated (token overlap ``J``, 0.7 by default) and written as JSON, then one
summary line. A run file that cannot be read or holds no team traces, a bad spec, an unwritable
``--out``: one line on stderr, exit status 2; an extractor that fails or a pool that ends empty:
one line, exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, NoReturn


def _fail(message: str, status: int = 2) -> NoReturn:
    print(f"horizongym: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def add_team_indicators_command(commands: Any) -> None:
    """Register ``team-indicators`` on an argparse sub-parsers object."""
    from horizongym.agents.specs import SPEC_HELP

    p = commands.add_parser(
        "team-indicators", help="build an AgentDropoutV2 indicator pool from a team's failed episodes"
    )
    p.add_argument("runs", nargs="+", metavar="RUN.jsonl", help="run files of a team policy (team:CONFIG)")
    p.add_argument("--extractor", required=True, help=f"the policy that generalises each flawed message: {SPEC_HELP}")
    p.add_argument("--out", required=True, help="the pool's JSON file")
    p.add_argument(
        "--reward-below", type=float, metavar="R", help="also count as failed an episode whose total reward is below R"
    )
    p.add_argument(
        "--similarity", type=float, default=0.7, metavar="J", help="token overlap (Jaccard) making two patterns one"
    )
    p.add_argument("--temperature", type=float, default=0.0, help="the extractor's sampling temperature (default 0)")
    p.set_defaults(run=cmd_team_indicators)


def cmd_team_indicators(args: argparse.Namespace) -> None:
    from horizongym.agents.base import PolicyError
    from horizongym.agents.specs import PolicySpecError, make_policy
    from horizongym.agents.team.indicators import (
        Indicator,
        IndicatorPool,
        PolicyExtractor,
        build_pool,
        has_team_traces,
        is_failed,
    )
    from horizongym.agents.team.messages import TeamMessage
    from horizongym.argtypes import unwritable_out
    from horizongym.training.rollouts.store import RunFileError, read_run
    from horizongym.training.rollouts.trajectory import Episode

    if not 0.0 < args.similarity <= 1.0:
        _fail(f"--similarity must be in (0, 1], not {args.similarity}")
    episodes: list[Episode] = []
    for run in args.runs:
        try:
            found = read_run(run, "team-indicators")
        except RunFileError as exc:
            _fail(str(exc))
        if not any(has_team_traces(episode) for episode in found):
            _fail(f"{run} holds no team traces (steps with a team policy_trace); record it with --policy team:CONFIG")
        episodes.extend(found)
    out = Path(args.out)
    if (problem := unwritable_out(out, "pool.json")) is not None:
        _fail(problem)
    try:
        policy = make_policy(args.extractor, episodes[0].env_id, temperature=args.temperature)
    except PolicySpecError as exc:
        _fail(str(exc))
    extractor = PolicyExtractor(policy)
    flawed = 0

    class Counting:
        async def extract(self, task: str, message: TeamMessage, outcome: str) -> Indicator | None:
            nonlocal flawed
            indicator = await extractor.extract(task, message, outcome)
            flawed += indicator is not None
            return indicator

    async def build() -> IndicatorPool:
        try:
            return await build_pool(
                episodes,
                Counting(),
                reward_below=args.reward_below,
                pool=IndicatorPool(similarity_threshold=args.similarity),
            )
        finally:
            await policy.aclose()

    try:
        pool = asyncio.run(build())
    except PolicyError as exc:
        _fail(f"the extractor {args.extractor} failed: {exc}", 1)
    failed = sum(is_failed(episode, args.reward_below) for episode in episodes)
    if not len(pool):
        unread = f" ({extractor.unparsed} replies without the three tags)" if extractor.unparsed else ""
        _fail(
            f"no indicator from {failed} failed of {len(episodes)} episodes{unread}: nothing written to {out}; "
            "give runs with failed team episodes, or a stronger --extractor",
            1,
        )
    pool.save(out)
    print(
        f"{len(pool)} indicators ({flawed} extracted, {flawed - len(pool)} duplicates) from {failed} failed of "
        f"{len(episodes)} episodes -> {out}"
    )
