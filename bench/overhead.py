"""Rollout-engine overhead: env steps per second of a trivial env with an instant policy.

The same game (GEM's Guess-The-Number rules: guess inside ``\\boxed{n}``, told higher or
lower, 7 turns) runs through horizongym's asyncio rollout engine, built with
``horizongym.make`` so Gymnasium's wrappers are in the path, and through GEM's own
environment (``game:GuessTheNumber-v0-hard``) in GEM's vector env, with the same instant
policy (a uniformly random guess). Both keep the conversation and collect every episode's
steps: horizongym as stored ``Episode`` records with OpenAI chat messages, GEM with its
``concat_with_action`` history wrapper and ``episode_tracking`` wrapper, transitions gathered
per episode as its training examples do. Figures: ``steps_per_s`` per implementation and
concurrency, ``ratio_vs_gem`` (horizongym over GEM at the same concurrency).

The same engine with its envs in Ray actors (``--backend ray``,
:mod:`horizongym.training.rollouts.ray_backend`) on a local Ray of 2 workers, next to the asyncio
engine with 2 envs in flight: ``steps_per_s`` and ``episodes_per_s`` with ``impl`` = ray and
``workers`` = 2, the asyncio engine's at ``concurrency`` = 2, and ``ratio_ray_vs_asyncio``
(episodes/s). Honestly: on this trivial env Ray is far slower. Each ``reset`` and ``step`` is one
actor call, a round trip of about 0.7 ms on one machine (serialization, two process hops, a thread
handoff) where the local env steps in microseconds, so a run is bound by that round trip. Measured
on a busy 2-core machine: about 1,100 steps/s with 2 Ray workers (some 1.8 ms per step per worker)
against about 43,000 for the asyncio engine with 2 envs, 40 times fewer. Ray pays where a step
costs milliseconds anyway (sandboxed commands, tool calls, kernel builds) or where one machine is
not enough; its rows measure the floor of its per-step cost, not a speed-up.

    python -m horizongym.bench.overhead [--quick]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import horizongym
from horizongym.agents.base import Action, Message
from horizongym.agents.scripted import ScriptedPolicy
from horizongym.envs.base import Task, TextEnv
from horizongym.training.rollouts import EnvRecipe, EpisodeStore, RolloutEngine

BENCH_ENV_ID = "BenchGuessNumber-v0"
_BOXED = re.compile(r"\\boxed{(\d+)}")


class GuessNumberEnv(TextEnv):
    """Guess a number in [1, 50] in 7 turns, written as ``\\boxed{n}``; told higher or lower."""

    blocking = False
    max_turns = 7
    tool_instructions = False

    def new_task(self, options: dict[str, Any]) -> Task:
        self.secret = int(self.np_random.integers(1, 51))
        self.guesses: set[int] = set()
        return Task(id=f"guess-{self.secret}", prompt="Guess the number between 1 and 50, as \\boxed{n}.")

    def on_text(self, text: str) -> str:
        found = _BOXED.findall(text)
        if not found:
            self.add_reward("format", -0.1)
            self.end_episode(success=False)
            return "You did not provide a valid guess."
        guess = int(found[-1])
        if guess in self.guesses:
            self.add_reward("repeat", -0.05)
            return f"You guessed {guess} before."
        self.guesses.add(guess)
        if guess == self.secret:
            self.add_reward("answer", 1.0)
            self.end_episode(success=True)
            return f"Correct: {guess}."
        return f"The target is {'lower' if guess > self.secret else 'higher'} than {guess}."


def random_guess(rng: random.Random) -> str:
    return "\\boxed{" + str(rng.randint(1, 50)) + "}"


class RandomGuesser(ScriptedPolicy):
    """The instant policy: one shared generator, as in the GEM loop."""

    name = "random-guesser"

    def __init__(self) -> None:
        self.rng = random.Random(0)

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        return Action(text=random_guess(self.rng))


def horizongym_steps_per_s(engine: RolloutEngine, episodes: int) -> float:
    started = time.perf_counter()
    done = engine.run_sync(episodes)
    seconds = time.perf_counter() - started
    return sum(e.num_turns for e in done) / seconds


def bench_engine(concurrency: int, store: EpisodeStore | None = None) -> RolloutEngine:
    """An engine whose environments are built and warm, as in a training loop's later iterations."""
    engine = RolloutEngine(BENCH_ENV_ID, RandomGuesser(), concurrency=concurrency, store=store, progress=False)
    engine.run_sync(concurrency * 2)
    return engine


def gem_steps_per_s(concurrency: int, episodes: int, mode: str = "sync") -> float:
    """GEM's multi-turn loop doing the same work: its history wrapper, its episode tracking, and
    each finished episode's transitions collected, as GEM's training examples do.

    ``mode``: ``sync`` steps GEM's ``SyncVectorEnv`` (the envs in lockstep, one after another);
    ``async`` steps its ``AsyncVectorEnv`` (a thread pool, GEM's concurrent mode). With one
    env the loop steps it directly.
    """
    import logging

    logging.disable(logging.INFO)
    import gem
    from gem.wrappers.episode_tracking_wrapper import EpisodeTrackingWrapper
    from gem.wrappers.observation_wrapper import ObservationWrapper

    rng = random.Random(0)
    env_id = "game:GuessTheNumber-v0-hard"
    concat_with_action = functools.partial(ObservationWrapper, include_action=True, include_chat_template=False)
    collected: list[list[tuple[str, str, float]]] = []
    steps = 0
    if concurrency == 1:
        env = EpisodeTrackingWrapper(concat_with_action(gem.make(env_id)))
        started = time.perf_counter()
        for episode in range(episodes):
            observation, _ = env.reset(seed=episode)
            transitions: list[tuple[str, str, float]] = []
            done = False
            while not done:
                action = random_guess(rng)
                next_observation, reward, terminated, truncated, _ = env.step(action)
                transitions.append((observation, action, float(reward)))
                observation, done, steps = next_observation, terminated or truncated, steps + 1
            collected.append(transitions)
        return steps / (time.perf_counter() - started)
    wrappers = [concat_with_action, EpisodeTrackingWrapper]
    vec = gem.make_vec([env_id] * concurrency, wrappers=wrappers, async_mode=mode == "async")
    observations, _ = vec.reset(seed=0)
    running: list[list[tuple[str, str, float]]] = [[] for _ in range(concurrency)]
    started = time.perf_counter()
    while len(collected) < episodes:
        actions = [random_guess(rng) for _ in range(concurrency)]
        next_observations, rewards, terminated, truncated, _ = vec.step(actions)
        steps += concurrency
        for i in range(concurrency):
            running[i].append((observations[i], actions[i], float(rewards[i])))
            if terminated[i] or truncated[i]:
                collected.append(running[i])
                running[i] = []
        observations = next_observations
    seconds = time.perf_counter() - started
    if mode == "async":
        vec.thread_pool_executer.shutdown()
    return steps / seconds


def ray_rows(episodes: int, repeats: int, workers: int = 2) -> list[str]:
    """Steps and episodes per second of the engine with its envs in ``workers`` Ray actors of a local
    Ray, and of the asyncio engine with as many envs, both warm; the best of ``repeats`` runs each."""
    from horizongym.training.rollouts.ray_backend import RayEnvFactory, connect

    recipe = EnvRecipe(BENCH_ENV_ID)
    rates: dict[str, tuple[float, float]] = {}
    with connect(num_cpus=workers):
        for impl in ("horizongym", "ray"):
            factory = RayEnvFactory(recipe) if impl == "ray" else None
            options: dict[str, Any] = {"concurrency": workers, "progress": False, "env_factory": factory}
            with RolloutEngine(recipe, RandomGuesser(), **options) as engine:
                engine.run_sync(workers * 2)  # envs built and warm
                runs = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    done = engine.run_sync(episodes)
                    seconds = time.perf_counter() - started
                    runs.append((sum(e.num_turns for e in done) / seconds, len(done) / seconds))
                rates[impl] = max(runs)
    lines = []
    for impl, (steps_per_s, episodes_per_s) in rates.items():
        params = {"impl": impl, "workers" if impl == "ray" else "concurrency": workers}
        lines.append(figure("steps_per_s", steps_per_s, "steps/s", **params))
        lines.append(figure("episodes_per_s", episodes_per_s, "episodes/s", **params))
    ratio = rates["ray"][1] / rates["horizongym"][1]
    lines.append(figure("ratio_ray_vs_asyncio", ratio, "x", workers=workers))
    return lines


def figure(metric: str, value: float, unit: str, **params: Any) -> str:
    return json.dumps({"bench": "overhead", "metric": metric, "value": round(value, 3), "unit": unit, "params": params})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer episodes; finishes in well under a minute")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the best is reported")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("gem") is None:
        sys.exit("bench.overhead: error: GEM (the gem-llm package) is not installed; run 'make bench' to install it")
    episodes = 1500 if args.quick else 10000
    if BENCH_ENV_ID not in horizongym.registry:
        horizongym.register(BENCH_ENV_ID, GuessNumberEnv)
    lines = []
    for concurrency in (1, 64):
        with bench_engine(concurrency) as engine:
            ours = max(horizongym_steps_per_s(engine, episodes) for _ in range(args.repeats))
        lines.append(figure("steps_per_s", ours, "steps/s", impl="horizongym", concurrency=concurrency))
        for mode in ("sync",) if concurrency == 1 else ("sync", "async"):
            theirs = max(gem_steps_per_s(concurrency, episodes, mode) for _ in range(args.repeats))
            lines.append(figure("steps_per_s", theirs, "steps/s", impl="gem", concurrency=concurrency, gem_mode=mode))
            lines.append(figure("ratio_vs_gem", ours / theirs, "x", concurrency=concurrency, gem_mode=mode))
    with tempfile.TemporaryDirectory() as tmp, EpisodeStore(Path(tmp) / "episodes.jsonl") as store:
        engine = bench_engine(64, store)
        stored = horizongym_steps_per_s(engine, episodes)
        engine.close()
    lines.append(figure("steps_per_s", stored, "steps/s", impl="horizongym", concurrency=64, store="jsonl+fsync"))
    if importlib.util.find_spec("ray") is None:
        sys.exit("bench.overhead: error: Ray is not installed; pip install 'horizongym[distributed]'")
    lines.extend(ray_rows(200 if args.quick else 2000, args.repeats))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
