"""Replay and rescore speed: stored episodes re-run on fresh envs, and repriced from their reward events.

For each env whose episodes can be both replayed and rescored (KeyChain-v0, LongChain-v0,
SearchJudge-v0 with the demo's settings, EmailInbox-v0), the scripted expert and the random
policy play ``episodes`` episodes each through the rollout engine; then

- ``replay_episodes_per_s``: episodes per second of :func:`replay_episodes` (a fresh env per
  env id and arguments, reset with each episode's seed, every recorded action stepped again and
  everything compared: observations, rewards, events, tool calls and results, info, outcome, the
  generator state). Every episode must match; the bench stops if one does not.
- ``rescore_episodes_per_s``: episodes per second of :func:`rescore_episodes` with changed reward
  settings (every reward event priced again; the pricing env built once, no tool run).

The env's data is loaded and its caches are warm before timing (a run replays many episodes of
one env); the best of ``--repeats`` runs is reported.

    python -m horizongym.bench.replay [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from horizongym.agents import Policy, RandomPolicy, expert_for
from horizongym.training.rollouts import EnvRecipe, Episode, RolloutEngine
from horizongym.training.rollouts.replay import replay_episodes
from horizongym.training.rollouts.rescore import rescore_episodes

ENVS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "KeyChain-v0": ({}, {"format_penalty": -0.5}),
    "LongChain-v0": ({"min_length": 4, "max_length": 16}, {"format_penalty": -0.5}),
    "SearchJudge-v0": (
        {"top_k": 1, "max_observation_chars": 160, "max_searches": 2, "instructions": False, "task_order": "by_seed"},
        {"judge_weight": 2.0, "judge_rewards": "symmetric", "answer_metric": "f1"},
    ),
    "EmailInbox-v0": ({}, {"rewards": {"correct": 2.0, "wrong": -0.5}}),
}
"""Each env's recorded arguments and the reward settings a rescore changes."""


def figure(metric: str, value: float, unit: str, **params: Any) -> str:
    return json.dumps({"bench": "replay", "metric": metric, "value": round(value, 3), "unit": unit, "params": params})


def played(env_id: str, env_kwargs: dict[str, Any], episodes: int) -> list[Episode]:
    """``episodes`` episodes of the expert and as many of the random policy (seeds 0..episodes-1)."""
    policies: list[Policy] = [expert_for(env_id), RandomPolicy()]
    run: list[Episode] = []
    for policy in policies:
        with RolloutEngine(EnvRecipe(env_id, env_kwargs), policy, concurrency=8, progress=False) as engine:
            run += engine.run_sync(episodes)
    return run


def replay_rate(run: list[Episode]) -> float:
    started = time.perf_counter()
    verdicts = list(replay_episodes(run))
    seconds = time.perf_counter() - started
    differing = [v for v in verdicts if v.status != "match"]
    if differing:
        raise SystemExit(f"bench replay: {len(differing)} episodes did not match, e.g. {differing[0].describe()}")
    return len(run) / seconds


def rescore_rate(run: list[Episode], reward_kwargs: dict[str, Any]) -> float:
    started = time.perf_counter()
    rescored = rescore_episodes(run, reward_kwargs)
    seconds = time.perf_counter() - started
    assert len(rescored) == len(run)
    return len(run) / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer episodes; finishes in well under a minute")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the best is reported")
    args = parser.parse_args(argv)
    episodes = 200 if args.quick else 1000
    lines = []
    for env_id, (env_kwargs, reward_kwargs) in ENVS.items():
        run = played(env_id, env_kwargs, episodes)
        turns = sum(e.num_turns for e in run) / len(run)
        print(f"{env_id}: {len(run)} episodes, {turns:.1f} steps each on average", flush=True)
        replay_rate(run[:4])  # the env's data loaded, its caches warm
        replayed = max(replay_rate(run) for _ in range(args.repeats))
        rescored = max(rescore_rate(run, reward_kwargs) for _ in range(args.repeats))
        lines.append(figure("replay_episodes_per_s", replayed, "episodes/s", env=env_id))
        lines.append(figure("rescore_episodes_per_s", rescored, "episodes/s", env=env_id))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
