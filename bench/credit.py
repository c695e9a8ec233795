"""Credit assignment, measured on controlled toys: EAPO vs GRPO, HCAPO vs GRPO, tree vs GRPO vs HCAPO at
equal env steps, workspace vs history.

Hypotheses under test (from the papers behind ``training.advantages``), each reported as measured,
whichever way it comes out:

(a) EAPO's discounted per-round reward favours shorter solutions, so on a task where a short and
    a long solution both succeed it should reach the same success rate in fewer rounds than GRPO.
(b) HCAPO's hindsight micro term sharpens the credit of the one turn that decided the outcome, so
    on a long episode with a single decisive turn it should reach a success threshold in fewer
    updates than GRPO.
(c) The Markovian workspace keeps the policy's context about constant, while full history grows
    with every round.
(d) Sibling branches forked from one state estimate the value of the action at the fork without a
    critic (the ``tree`` estimator), so at the same number of env steps (a branch pays only for its
    own rounds) tree rollouts should reach the success threshold sooner than GRPO and HCAPO.

Setups (numpy, one seed per run, the same seeds and budget for every estimator):

- ``ShortcutCorridor`` (a): at round 1 the agent picks *shortcut* (a corridor finished in 2
  rounds in all), *long* (8 rounds in all) or *wrong* (fails at once). In a corridor cell it picks
  *forward* or *wait* (one more round in the same cell); episodes not finished after 24 rounds
  fail. Success (reward 1) does not depend on the path, so GRPO sees no difference between the
  short and long solutions once both succeed; EAPO's r_{i,t} = γ^(T_i − t)·R_i does. With
  γ = 0.995 (EAPO's default) the raw reward gap is small (γ^7 ≈ 0.966 for the long path's first
  round against γ^1 ≈ 0.995), but the normalisation over all rounds of a group blows it up once a
  group has no failures; γ = 0.9 (labelled ``gamma: 0.9``) is reported as well.
- ``DecisiveRound`` (b): T = 32 rounds, a binary choice each round; reward 1 iff the action in
  round 17 is the right one, the other 31 choices do nothing. The policy sees the round number.
  HCAPO's per-turn ``hindsight_logprobs`` are log h(a_t | s_t, R) from a ``HindsightHead`` (state:
  one-hot round; input: the episode's outcome) fit, warm-started, on the episodes of the last few
  groups including the current one before each update. With a tabular policy the noise GRPO puts on
  the 31 irrelevant rounds lands on their own parameters, so this toy mostly measures how large and
  clean the decisive round's signal is under each estimator, not interference between rounds.
  Control (``hindsight: "uniform"``): HCAPO with the same log-prob on every turn, so ρ_t = 1 and
  the micro term is the γ-discounted outcome alone; the gap between it and ``hindsight: "head"``
  is what the hindsight model itself contributes (ρ is clipped to [0.8, 1.2] and tempered by τ = 5,
  so that gap can only be small).
- Policy (a, b): a tabular softmax π(a | s) = softmax(θ_s) over the legal actions of each state,
  trained by plain policy gradient on groups of G = 8 episodes, starting from uniform θ = 0:
  θ ← θ + (lr / G) · Σ_{i,t} A_{i,t} ∇_θ log π(a_{i,t} | s_{i,t}),  A from ``estimate(name, group)``
  with each estimator's default options (lr 0.5 on the corridor, 0.02 on the decisive round).

Figures (``{"bench": "credit", "metric", "value", "unit", "params"}``, one JSON line each, last):

- ``context_tokens`` (``mode`` = workspace | history, ``round`` = 8, 64, 512): tokens of the
  policy's context at that round, from ``bench.context.context_tokens`` (LongChain expert, tiny
  byte tokenizer); ``context_ratio_512_vs_8`` (``mode``): round 512's context over round 8's.
- ``mean_rounds_at_success`` (``advantage``, ``seeds``, ``per_seed``, EAPO: ``gamma``): mean
  rounds of the successful episodes among ``eval_episodes`` sampled from each seed's final policy,
  averaged over seeds (shortest possible: 2); ``final_success``: their success rate, same params.
- ``steps_to_threshold`` (``advantage``, ``seed``, ``task``, HCAPO: ``hindsight``): policy updates
  until the success rate of the training episodes of the last ``window`` = 5 updates is ≥ 0.9 (the
  budget if never, ``reached`` false); one figure per seed and one with ``seed: "mean"``. For
  ``advantage: "tree"`` (``task`` decisive and corridor) these are the updates of the runs below.
- ``env_steps_to_threshold`` (``advantage`` = tree | grpo | hcapo, ``task``): env steps spent
  until that threshold, mean over seeds, with ``ci95`` (mean ± t·s/√n over seeds), ``reached``
  (seeds that got there) and ``per_seed``; a seed that never got there counts as the budget.
  Every run has the same env-step ``budget`` (decisive: 153,600 = 600 GRPO updates of 8 × 32
  rounds; corridor: 20,000). GRPO and HCAPO (hindsight head) sample groups of 8 episodes; the tree
  samples groups of ``trunks`` = 3 trunks, each forked after a uniformly drawn round k ∈ 0..T−1
  into ``branches`` = 4 episodes (3 continuations restored from the env's snapshot): about 246
  env steps per update on the decisive round against GRPO's 256. The tree trains every distinct
  round once (a branch's rounds 1..k are its parent's) with ``estimate("tree", group)``; its
  update divides by the number of full-length episodes its env steps are worth (see ``train``).

    python -m horizongym.bench.credit [--quick]

``--quick`` (under a minute): 3 seeds, 300 updates per corridor run and at most 300 per decisive
run, 500 evaluation episodes, equal-steps budgets 76,800 and 10,000; the full run: 10 seeds, 1000
and 600 updates, 2000 episodes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from tqdm import tqdm

from horizongym.training.advantages import EpisodeCredit, HindsightHead, estimate

ROUNDS = (8, 64, 512)

SHORTCUT, LONG, WRONG = 0, 1, 2
FORWARD, WAIT = 0, 1


class ToyEnv(Protocol):
    """A tiny episodic env: integer states, a fixed set of actions, legal ones per state."""

    num_states: int
    num_actions: int

    def legal(self) -> np.ndarray: ...

    def reset(self) -> int: ...

    def step(self, action: int) -> tuple[int, float, bool]: ...

    def snapshot(self) -> tuple[int, ...]: ...

    def restore(self, snapshot: tuple[int, ...]) -> None: ...


class ShortcutCorridor:
    """Round 1: shortcut (2 rounds in all), long (``long`` rounds in all) or wrong (fail).

    States: 0 is the start, 1..short−1 the shortcut's cells, short..short+long−2 the long path's.
    In a cell, forward moves on (from the path's last cell it finishes with reward 1) and wait
    stays; an episode not finished after ``max_rounds`` rounds ends with reward 0.
    """

    num_actions = 3

    def __init__(self, short: int = 2, long: int = 8, max_rounds: int = 24) -> None:
        if not 2 <= short <= long <= max_rounds:
            raise ValueError("need 2 <= short <= long <= max_rounds")
        self.short, self.long, self.max_rounds = short, long, max_rounds
        self.num_states = 1 + (short - 1) + (long - 1)
        self.last_cells = {short - 1, short + long - 2}
        self.state = 0
        self.rounds = 0

    def legal(self) -> np.ndarray:
        mask = np.zeros((self.num_states, self.num_actions), dtype=bool)
        mask[0, :] = True
        mask[1:, [FORWARD, WAIT]] = True
        return mask

    def reset(self) -> int:
        self.state, self.rounds = 0, 0
        return self.state

    def step(self, action: int) -> tuple[int, float, bool]:
        self.rounds += 1
        if self.state == 0:
            if action == WRONG:
                return self.state, 0.0, True
            self.state = 1 if action == SHORTCUT else self.short
        elif action == FORWARD:
            if self.state in self.last_cells:
                return self.state, 1.0, True
            self.state += 1
        return self.state, 0.0, self.rounds >= self.max_rounds

    def snapshot(self) -> tuple[int, ...]:
        """The whole episode state: (cell, rounds played)."""
        return (self.state, self.rounds)

    def restore(self, snapshot: tuple[int, ...]) -> None:
        self.state, self.rounds = snapshot


class DecisiveRound:
    """``rounds`` binary choices; reward 1 iff the choice in round ``decisive`` (1-based) is ``correct``.

    The state is the round index (0-based), so the policy knows which round it is in.
    """

    num_actions = 2

    def __init__(self, rounds: int = 32, decisive: int = 17, correct: int = 1) -> None:
        if not 1 <= decisive <= rounds or correct not in (0, 1):
            raise ValueError("need 1 <= decisive <= rounds and correct in {0, 1}")
        self.num_states, self.decisive, self.correct = rounds, decisive, correct
        self.round = 0
        self.hit = False

    def legal(self) -> np.ndarray:
        return np.ones((self.num_states, self.num_actions), dtype=bool)

    def reset(self) -> int:
        self.round, self.hit = 0, False
        return self.round

    def step(self, action: int) -> tuple[int, float, bool]:
        if self.round == self.decisive - 1:
            self.hit = action == self.correct
        self.round += 1
        done = self.round == self.num_states
        return (self.round - 1 if done else self.round), float(self.hit and done), done

    def snapshot(self) -> tuple[int, ...]:
        """The whole episode state: (rounds played, whether the decisive choice was right)."""
        return (self.round, int(self.hit))

    def restore(self, snapshot: tuple[int, ...]) -> None:
        self.round, self.hit = snapshot[0], bool(snapshot[1])


class TabularSoftmax:
    """π(a | s) = softmax over the legal actions of θ_s; illegal actions have probability 0."""

    def __init__(self, legal: np.ndarray) -> None:
        self.legal = legal
        self.theta = np.zeros(legal.shape)

    def probs(self) -> np.ndarray:
        logits = np.where(self.legal, self.theta, -np.inf)
        logits = logits - logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def update(
        self, states: np.ndarray, actions: np.ndarray, advantages: np.ndarray, lr: float, episodes: float
    ) -> None:
        """θ ← θ + (lr / episodes) · Σ A · ∇ log π(a | s), with ∇_θs log π(a | s) = onehot(a) − π(·|s)."""
        probs = self.probs()
        grad = np.zeros_like(self.theta)
        np.add.at(grad, (states, actions), advantages)
        np.add.at(grad, states, -advantages[:, None] * probs[states])
        self.theta += lr / episodes * grad


@dataclass
class Episode:
    states: list[int]
    actions: list[int]
    reward: float
    parent: int | None = None
    """For a branch: the index of the episode it was forked from, in its group."""
    fork_turn: int = 0
    """For a branch: rounds 1..fork_turn are its parent's (copied), the rest its own."""

    @property
    def rounds(self) -> int:
        return len(self.actions)

    @property
    def env_steps(self) -> int:
        """The env steps this episode cost: its own rounds (a branch's shared prefix was paid by its parent)."""
        return self.rounds - self.fork_turn


Situation = tuple[tuple[int, ...], int, float]
"""Before a round: (the env's snapshot, the observed state, the reward so far)."""


def play_on(
    env: ToyEnv,
    state: int,
    episode: Episode,
    cumulative: np.ndarray,
    rng: np.random.Generator,
    situations: list[Situation] | None = None,
) -> Episode:
    """Sample actions from the rows of ``cumulative`` (cumulative action probabilities) from ``state`` until
    the episode ends, appending to ``episode``; ``situations`` (if given) gets the situation before each round."""
    done = False
    while not done:
        if situations is not None:
            situations.append((env.snapshot(), state, episode.reward))
        row = cumulative[state]
        action = min(int(np.count_nonzero(row < rng.random())), len(row) - 1)
        episode.states.append(state)
        episode.actions.append(action)
        state, reward, done = env.step(action)
        episode.reward += reward
    return episode


def rollout(env: ToyEnv, cumulative: np.ndarray, rng: np.random.Generator) -> Episode:
    """One episode, actions sampled from the rows of ``cumulative`` (cumulative action probabilities)."""
    return play_on(env, env.reset(), Episode([], [], 0.0), cumulative, rng)


def rollout_tree(
    env: ToyEnv, cumulative: np.ndarray, rng: np.random.Generator, branches: int, trunk_index: int
) -> list[Episode]:
    """A trunk, then ``branches`` − 1 continuations forked from it after a uniformly drawn round k in 0..T−1.

    Each branch restores the env's snapshot taken before the trunk's round k + 1, copies the trunk's
    rounds 1..k and samples its own rounds from k + 1 on (``parent`` = ``trunk_index``, ``fork_turn`` = k).
    """
    situations: list[Situation] = []
    trunk = play_on(env, env.reset(), Episode([], [], 0.0), cumulative, rng, situations)
    fork = int(rng.integers(trunk.rounds))
    snapshot, state, reward = situations[fork]
    out = [trunk]
    for _ in range(branches - 1):
        env.restore(snapshot)
        prefix = Episode(trunk.states[:fork], trunk.actions[:fork], reward, parent=trunk_index, fork_turn=fork)
        out.append(play_on(env, state, prefix, cumulative, rng))
    return out


def sample(env: ToyEnv, policy: TabularSoftmax, rng: np.random.Generator, count: int) -> list[Episode]:
    cumulative = np.cumsum(policy.probs(), axis=1)
    return [rollout(env, cumulative, rng) for _ in range(count)]


def sample_trees(
    env: ToyEnv, policy: TabularSoftmax, rng: np.random.Generator, trunks: int, branches: int
) -> list[Episode]:
    """``trunks`` trees of ``branches`` episodes each (the trunk first), as one group."""
    cumulative = np.cumsum(policy.probs(), axis=1)
    return [ep for g in range(trunks) for ep in rollout_tree(env, cumulative, rng, branches, g * branches)]


class Hindsight:
    """h(a | s, R) from a ``HindsightHead`` on one-hot states, refit on the last ``window`` groups."""

    def __init__(self, num_states: int, num_actions: int, window: int, steps: int) -> None:
        self.head = HindsightHead(num_states, num_actions)
        self.eye = torch.eye(num_states)
        self.buffer: deque[list[Episode]] = deque(maxlen=window)
        self.steps = steps

    def tensors(self, episodes: Sequence[Episode]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        states = torch.tensor([s for ep in episodes for s in ep.states])
        returns = torch.tensor([ep.reward for ep in episodes for _ in ep.states])
        actions = torch.tensor([a for ep in episodes for a in ep.actions])
        return self.eye[states], returns, actions

    def __call__(self, group: list[Episode]) -> list[list[float]]:
        """Fit on the buffered groups plus ``group``, then log h(a_t | s_t, R) for every turn of ``group``."""
        self.buffer.append(group)
        self.head.fit(*self.tensors([ep for g in self.buffer for ep in g]), steps=self.steps)
        with torch.no_grad():
            flat = self.head.log_prob(*self.tensors(group)).tolist()
        out, start = [], 0
        for ep in group:
            out.append(flat[start : start + ep.rounds])
            start += ep.rounds
        return out


def uniform_hindsight(group: list[Episode]) -> list[list[float]]:
    """The same log-prob (0) for every turn: ρ_t = 1, HCAPO's micro term without any hindsight."""
    return [[0.0] * ep.rounds for ep in group]


@dataclass
class TrainLog:
    policy: TabularSoftmax
    success: list[float] = field(default_factory=list)
    """Success rate of each update's group."""
    env_steps: list[int] = field(default_factory=list)
    """Env steps spent up to and including each update (a branch costs only its own rounds)."""


def train(
    env: ToyEnv,
    advantage: str,
    seed: int,
    *,
    updates: int,
    group: int,
    lr: float,
    options: dict[str, Any] | None = None,
    hindsight: Callable[[list[Episode]], list[list[float]]] | None = None,
    stop: Callable[[TrainLog], bool] | None = None,
    branches: int = 1,
    max_env_steps: int | None = None,
    progress: bool = False,
    desc: str = "",
) -> TrainLog:
    """Policy gradient with ``estimate(advantage, group)`` for ``updates`` updates (or until ``stop``, or
    until ``max_env_steps`` env steps are spent).

    With ``branches`` = K > 1 a group is ``group`` trees (``sample_trees``: a trunk and K − 1 branches
    forked at a random round), and each distinct round is trained once: a branch's shared rounds
    1..fork_turn are its parent's and only its own rounds enter the update. The update is
    θ ← θ + lr / n · Σ_{own rounds} A ∇log π with n = (own rounds) · (episodes) / (all rounds of all
    episodes): the number of full-length episodes the group's env steps are worth, which is the
    group size itself for a group without branches (so GRPO and HCAPO updates are unchanged).
    """
    if branches < 1:
        raise ValueError(f"branches must be >= 1, got {branches}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    log = TrainLog(TabularSoftmax(env.legal()))
    spent = 0
    for _ in tqdm(range(updates), desc=desc, unit="update", disable=not progress, leave=False):
        if branches == 1:
            episodes = sample(env, log.policy, rng, group)
        else:
            episodes = sample_trees(env, log.policy, rng, group, branches)
        hind: Sequence[list[float] | None] = hindsight(episodes) if hindsight is not None else [None] * len(episodes)
        credits = [
            EpisodeCredit(
                ep.reward,
                ep.rounds,
                success=ep.reward > 0,
                hindsight_logprobs=h,
                parent=ep.parent,
                fork_turn=ep.fork_turn,
            )
            for ep, h in zip(episodes, hind, strict=True)
        ]
        rows = estimate(advantage, credits, **(options or {}))
        own = sum(ep.env_steps for ep in episodes)
        log.policy.update(
            np.array([s for ep in episodes for s in ep.states[ep.fork_turn :]]),
            np.array([a for ep in episodes for a in ep.actions[ep.fork_turn :]]),
            np.array([a for ep, row in zip(episodes, rows, strict=True) for a in row[ep.fork_turn :]]),
            lr,
            own * len(episodes) / sum(ep.rounds for ep in episodes),
        )
        spent += own
        log.env_steps.append(spent)
        log.success.append(sum(ep.reward > 0 for ep in episodes) / len(episodes))
        if stop is not None and stop(log):
            break
        if max_env_steps is not None and spent >= max_env_steps:
            break
    return log


@dataclass(frozen=True)
class Config:
    seeds: int
    corridor_updates: int
    decisive_updates: int
    group: int = 8
    corridor_lr: float = 0.5
    decisive_lr: float = 0.02
    eval_episodes: int = 1000
    window: int = 5
    threshold: float = 0.9
    hindsight_window: int = 4
    hindsight_steps: int = 20
    eapo_gammas: tuple[float, ...] = (0.995, 0.9)
    context: bool = True
    trunks: int = 3
    """Tree runs: trees per group (each a trunk and ``branches`` − 1 forks)."""
    branches: int = 4
    corridor_env_steps: int = 20_000
    decisive_env_steps: int = 153_600
    """Env-step budget of every run of the equal-steps comparison (decisive: 600 GRPO updates of 8 × 32 rounds)."""


QUICK = Config(
    seeds=3,
    corridor_updates=300,
    decisive_updates=300,
    eval_episodes=500,
    corridor_env_steps=10_000,
    decisive_env_steps=76_800,
)
FULL = Config(seeds=10, corridor_updates=1000, decisive_updates=600, eval_episodes=2000)


def figure(metric: str, value: float, unit: str, **params: Any) -> dict[str, Any]:
    return {"bench": "credit", "metric": metric, "value": round(float(value), 4), "unit": unit, "params": params}


def evaluate_corridor(policy: TabularSoftmax, seed: int, episodes: int) -> tuple[float, float]:
    """(success rate, mean rounds of the successful episodes; nan if none) of ``episodes`` samples."""
    sampled = sample(ShortcutCorridor(), policy, np.random.default_rng(10_000 + seed), episodes)
    wins = [ep.rounds for ep in sampled if ep.reward > 0]
    return len(wins) / episodes, (statistics.fmean(wins) if wins else float("nan"))


def bench_corridor(config: Config, progress: bool) -> list[dict[str, Any]]:
    """(a) GRPO vs EAPO (each γ) on the shortcut corridor: final success and rounds at success."""
    out = []
    seeds = list(range(config.seeds))
    untrained = evaluate_corridor(TabularSoftmax(ShortcutCorridor().legal()), 0, config.eval_episodes)
    print(f"corridor, untrained policy: success {untrained[0]:.3f}, rounds at success {untrained[1]:.2f}")
    runs: list[tuple[str, dict[str, Any]]] = [("grpo", {})]
    runs += [("eapo", {"gamma": gamma}) for gamma in config.eapo_gammas]
    for advantage, options in runs:
        success, rounds = [], []
        for seed in seeds:
            log = train(
                ShortcutCorridor(),
                advantage,
                seed,
                updates=config.corridor_updates,
                group=config.group,
                lr=config.corridor_lr,
                options=options,
                progress=progress,
                desc=f"corridor {advantage} {options} seed {seed}",
            )
            rate, mean_rounds = evaluate_corridor(log.policy, seed, config.eval_episodes)
            success.append(rate)
            rounds.append(mean_rounds)
        params = {
            "advantage": advantage,
            **options,
            "seeds": seeds,
            "updates": config.corridor_updates,
            "group": config.group,
            "lr": config.corridor_lr,
            "eval_episodes": config.eval_episodes,
        }
        finite = [r for r in rounds if r == r]
        mean_rounds = statistics.fmean(finite) if finite else float("nan")
        per_seed_rounds = [round(r, 3) if r == r else None for r in rounds]
        out.append(figure("mean_rounds_at_success", mean_rounds, "rounds", **params, per_seed=per_seed_rounds))
        out.append(
            figure(
                "final_success",
                statistics.fmean(success),
                "fraction",
                **params,
                per_seed=[round(s, 4) for s in success],
            )
        )
        print(f"corridor {advantage} {options}: success {statistics.fmean(success):.3f}, rounds {mean_rounds:.2f}")
    return out


def steps_to_threshold(success: Sequence[float], window: int, threshold: float) -> int | None:
    """The first update count n ≥ window whose last ``window`` groups succeed at ≥ threshold, or None."""
    for n in range(window, len(success) + 1):
        if statistics.fmean(success[n - window : n]) >= threshold:
            return n
    return None


def bench_decisive(config: Config, progress: bool) -> list[dict[str, Any]]:
    """(b) GRPO vs HCAPO on 32 rounds with one decisive round: updates to the success threshold."""
    out = []
    seeds = list(range(config.seeds))
    common = {
        "task": "decisive",
        "threshold": config.threshold,
        "window": config.window,
        "budget": config.decisive_updates,
        "group": config.group,
        "lr": config.decisive_lr,
    }
    variants: list[tuple[str, str | None]] = [("grpo", None), ("hcapo", "head"), ("hcapo", "uniform")]
    for advantage, hind in variants:
        label = {"advantage": advantage, **({"hindsight": hind} if hind else {})}
        steps = []
        for seed in seeds:
            env = DecisiveRound()
            hindsight: Callable[[list[Episode]], list[list[float]]] | None = None
            if hind == "head":
                torch.manual_seed(seed)
                hindsight = Hindsight(env.num_states, env.num_actions, config.hindsight_window, config.hindsight_steps)
            elif hind == "uniform":
                hindsight = uniform_hindsight

            def reached_threshold(log: TrainLog) -> bool:
                recent = log.success[-config.window :]
                return len(recent) == config.window and statistics.fmean(recent) >= config.threshold

            log = train(
                env,
                advantage,
                seed,
                updates=config.decisive_updates,
                group=config.group,
                lr=config.decisive_lr,
                hindsight=hindsight,
                stop=reached_threshold,
                progress=progress,
                desc=f"decisive {' '.join(map(str, label.values()))} seed {seed}",
            )
            reached = steps_to_threshold(log.success, config.window, config.threshold)
            value = reached if reached is not None else config.decisive_updates
            steps.append(value)
            out.append(
                figure(
                    "steps_to_threshold", value, "updates", **label, seed=seed, reached=reached is not None, **common
                )
            )
        mean = statistics.fmean(steps)
        out.append(figure("steps_to_threshold", mean, "updates", **label, seed="mean", seeds=seeds, **common))
        print(f"decisive {label}: updates to {config.threshold:.0%}: mean {mean:.1f}, per seed {steps}")
    return out


T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131)
"""Student's t 0.975 quantiles for 1..15 degrees of freedom (two-sided 95%); 1.96 beyond 15 is within 7%."""


def interval95(values: Sequence[float]) -> tuple[float, float]:
    """mean ± t_{0.975, n−1} · s / √n (s: sample std) over ``values``; (mean, mean) for a single value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean
    t = T_975[len(values) - 2] if len(values) - 1 <= len(T_975) else 1.96
    half = t * statistics.stdev(values) / len(values) ** 0.5
    return mean - half, mean + half


@dataclass(frozen=True)
class Task:
    name: str
    make: Callable[[], ToyEnv]
    lr: float
    budget: int
    """Env steps per run."""


def bench_equal_steps(config: Config, progress: bool) -> list[dict[str, Any]]:
    """Tree vs GRPO vs HCAPO at the same env-step budget: env steps (and updates) to the success threshold.

    GRPO and HCAPO (hindsight head) train on groups of ``group`` independent episodes; the tree on
    groups of ``trunks`` trees of ``branches`` episodes (forked at a uniformly drawn round), each
    distinct round trained once. Every run stops at the threshold or when its budget is spent.
    """
    out: list[dict[str, Any]] = []
    seeds = list(range(config.seeds))
    tasks = (
        Task("decisive", DecisiveRound, config.decisive_lr, config.decisive_env_steps),
        Task("corridor", ShortcutCorridor, config.corridor_lr, config.corridor_env_steps),
    )
    table = []
    for task in tasks:
        for advantage in ("tree", "grpo", "hcapo"):
            tree = advantage == "tree"
            shape = {"trunks": config.trunks, "branches": config.branches} if tree else {"group": config.group}
            common = {"threshold": config.threshold, "window": config.window, "lr": task.lr, **shape}
            env_steps, updates, reached, per_update = [], [], [], []
            for seed in seeds:
                env = task.make()
                hindsight = None
                if advantage == "hcapo":
                    torch.manual_seed(seed)
                    hindsight = Hindsight(
                        env.num_states, env.num_actions, config.hindsight_window, config.hindsight_steps
                    )

                def reached_threshold(log: TrainLog) -> bool:
                    return (
                        steps_to_threshold(log.success[-config.window :], config.window, config.threshold) is not None
                    )

                log = train(
                    env,
                    advantage,
                    seed,
                    updates=task.budget,
                    group=config.trunks if tree else config.group,
                    lr=task.lr,
                    hindsight=hindsight,
                    stop=reached_threshold,
                    branches=config.branches if tree else 1,
                    max_env_steps=task.budget,
                    progress=progress,
                    desc=f"equal steps {task.name} {advantage} seed {seed}",
                )
                n = steps_to_threshold(log.success, config.window, config.threshold)
                hit = n is not None and log.env_steps[n - 1] <= task.budget
                env_steps.append(log.env_steps[n - 1] if n is not None and hit else task.budget)
                updates.append(n if n is not None and hit else len(log.success))
                reached.append(hit)
                per_update.append(log.env_steps[-1] / len(log.env_steps))
                if tree:
                    out.append(
                        figure(
                            "steps_to_threshold",
                            updates[-1],
                            "updates",
                            advantage="tree",
                            task=task.name,
                            seed=seed,
                            reached=hit,
                            env_steps_per_update=round(per_update[-1], 1),
                            **common,
                        )
                    )
            if tree:
                out.append(
                    figure(
                        "steps_to_threshold",
                        statistics.fmean(updates),
                        "updates",
                        advantage="tree",
                        task=task.name,
                        seed="mean",
                        seeds=seeds,
                        reached=sum(reached),
                        **common,
                    )
                )
            mean = statistics.fmean(env_steps)
            low, high = interval95(env_steps)
            out.append(
                figure(
                    "env_steps_to_threshold",
                    mean,
                    "env_steps",
                    advantage=advantage,
                    task=task.name,
                    ci95=[round(low, 1), round(high, 1)],
                    reached=sum(reached),
                    seeds=seeds,
                    per_seed=env_steps,
                    budget=task.budget,
                    env_steps_per_update=round(statistics.fmean(per_update), 1),
                    **common,
                )
            )
            table.append((task.name, advantage, mean, low, high, sum(reached), len(seeds)))
    print("env steps to threshold, equal budgets (advantage x task: mean [95% interval] reached/seeds)")
    for name, advantage, mean, low, high, hits, count in table:
        print(f"  {name:8s} {advantage:6s} {mean:10.1f} [{low:.1f}, {high:.1f}] {hits}/{count}")
    return out


def bench_context() -> list[dict[str, Any]]:
    """(c) Context tokens per round, Markovian workspace vs full history."""
    from horizongym.bench.context import context_tokens

    out = []
    modes: tuple[Literal["workspace", "history"], ...] = ("workspace", "history")
    for mode in modes:
        tokens = context_tokens(mode, ROUNDS)
        for r in ROUNDS:
            out.append(figure("context_tokens", tokens[r], "tokens", mode=mode, round=r))
        out.append(figure("context_ratio_512_vs_8", tokens[512] / tokens[8], "x", mode=mode))
        print(f"context {mode}: " + ", ".join(f"round {r}: {tokens[r]}" for r in ROUNDS))
    return out


def run(config: Config, progress: bool = True) -> list[dict[str, Any]]:
    """All three comparisons under ``config``; returns the figures."""
    figures = bench_context() if config.context else []
    figures += bench_corridor(config, progress)
    figures += bench_decisive(config, progress)
    figures += bench_equal_steps(config, progress)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="under a minute: 3 seeds, shorter budgets")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (quick: 3, full: 10)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.seeds is not None:
        config = Config(**{**config.__dict__, "seeds": args.seeds})
    torch.set_num_threads(1)
    started = time.perf_counter()
    figures = run(config)
    print(f"credit bench done in {time.perf_counter() - started:.1f} s")
    for item in figures:
        print(json.dumps(item, ensure_ascii=False))


if __name__ == "__main__":
    main()
