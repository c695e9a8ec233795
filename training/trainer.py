"""The RL trainer: rollouts with the live model, per-turn advantages, PPO updates, checkpoints.

The run's settings are a :class:`~horizongym.training.config.TrainConfig`. One training step:

1. take the next ``tasks_per_step`` training task seeds (the data position) and run
   ``group_size`` episodes of each with the :class:`~horizongym.training.rollouts.engine.RolloutEngine`
   and a :class:`~horizongym.agents.hf.TransformersPolicy` wrapping the model being trained
   (each turn sampled with the engine's ``policy_seed(seed, sample, turn, config.seed)``, so
   runs with different ``seed`` sample different episodes of the same tasks); with
   ``rollout_server``, an :class:`~horizongym.agents.openai_api.OpenAIPolicy` on that server instead,
   naming the LoRA adapter published after the last update (every turn records its version); the
   envs run in this process, or with ``backend="ray"`` in Ray actors
   (:mod:`horizongym.training.rollouts.ray_backend`), which play the same episodes;
   with ``dynamic_sampling``, only the groups whose episodes' rewards differ are trained on, and up to
   ``sampling_rounds`` rounds of new tasks are played to find ``tasks_per_step`` of them
   (:mod:`horizongym.training.dynamic_sampling`; the others are stored, not trained on);
2. per group (the episodes of one task) compute per-turn advantages with
   ``estimate(config.advantage, ...)``, scoring hindsight log-probs first when the estimator
   needs them (:mod:`horizongym.training.hindsight`); with ``tree`` K >= 2 each episode is a tree
   (a trunk forked into branches, :mod:`horizongym.training.rollouts.tree`), a group holds the
   trunks and branches of its task, and each branch's ``EpisodeCredit`` names its parent's index in
   the group and its fork turn (an estimator such as ``tree`` reads them; the others treat the
   branches as more episodes of the group);
3. turn every turn into a sample, token ids exactly as sampled
   (:mod:`horizongym.training.samples`), and drop ``len % dp_size`` of them at random; a branch's
   turns 1..fork_turn are its parent's and are trained once, as the parent's (with the parent's
   advantage); a branch whose parent is not trained on (it failed) owns its every turn;
4. ``ppo_epochs`` passes of PPO-clip or GSPO (:mod:`horizongym.training.ppo`) in micro-batches
   with gradient accumulation, gradient-norm clipping and AdamW;
   With ``rollout_server``, samples more than ``max_staleness`` versions old are refused, π_old
   is recomputed by the trainer, and each term is weighted by min(π_old/π_server, ``tis_cap``)
   (:mod:`horizongym.training.truncated_is`; the weights' mean over the update's tokens, or
   sequences, is logged as ``tis_weight_mean``); after the update the new adapter is published
   (:mod:`horizongym.training.adapter_publisher`);
5. log one JSON line to ``OUT/metrics.jsonl`` and TensorBoard scalars to ``OUT/tb``, append the
   episodes to ``OUT/episodes.jsonl`` (each turn with the advantage it was credited with,
   ``Step.advantage``: :mod:`horizongym.training.turn_credit`); every ``eval_every`` steps evaluate greedily on held-out
   seeds; every ``checkpoint_every`` steps, and at the end, checkpoint.

Resuming (``train(resume=True)``) restores the newest checkpoint (weights, optimizer,
scheduler, every RNG, the data position) and cuts ``metrics.jsonl`` and ``episodes.jsonl``
back to it, so steps after the checkpoint are redone exactly and no episode is stored twice.
On CPU, with ``deterministic`` on (the default there), the policy decodes one request at a
time so rollouts do not depend on timing, and updates use deterministic algorithms: a run
stopped and resumed ends with the same weights, bit for bit, as one that never stopped.

Under ``torchrun`` the run is data-parallel (:mod:`horizongym.training.distributed`): each rank
plays its share of a step's task groups, every rank sees the whole batch, gradients are summed
over the ranks, and rank 0 alone writes the run's files.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from horizongym.agents.base import Policy
from horizongym.agents.hf import TransformersPolicy
from horizongym.agents.openai_api import OpenAIPolicy
from horizongym.envs.tasklist import is_task_list_env
from horizongym.training.adapter_publisher import AdapterPublisher
from horizongym.training.advantages import EpisodeCredit, downsample_to_multiple, estimate
from horizongym.training.checkpoint import (
    DataPosition,
    checkpoint_world_size,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from horizongym.training.config import TrainConfig
from horizongym.training.distributed import DataParallel, resume_refusal
from horizongym.training.dynamic_sampling import signal_seeds, with_signal
from horizongym.training.failed_groups import SettledGroups, settle_infra_failures
from horizongym.training.hindsight import HintInserter, hindsight_logprobs
from horizongym.training.ppo import PPOStats, completion_logprobs, ppo_loss
from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine
from horizongym.training.rollouts.failure_report import all_failed_line
from horizongym.training.rollouts.store import EpisodeStore
from horizongym.training.rollouts.trajectory import Episode
from horizongym.training.rollouts.tree import parse_branch_at
from horizongym.training.samples import TurnSample, samples_from_episodes
from horizongym.training.truncated_is import refuse_stale, truncated_is_weights
from horizongym.training.turn_credit import credited

HINDSIGHT_ESTIMATORS = frozenset({"hcapo", "eapo+hcapo", "hca"})
"""Estimators that need hindsight log-probs (HCA reads them as its model-based h(a | s, Z))."""

RESUMABLE_CHANGES = frozenset(
    {
        "steps",
        "eval_every",
        "eval_tasks",
        "checkpoint_every",
        "out_dir",
        "device",
        "rollout_server",
        "backend",  # asyncio and Ray play the same episodes
        "ray_address",
        "ray_workers",
    }
)
"""Config fields a resumed run may change; any other difference is refused."""


class NothingToLearn(RuntimeError):
    """Every episode of a training step failed by no doing of the policy: the run cannot learn.

    ``failed`` holds the step's episodes (they are stored before this is raised)."""

    def __init__(self, message: str, failed: Sequence[Episode]) -> None:
        super().__init__(message)
        self.failed = list(failed)


class Trainer:
    """Train ``model`` (a transformers causal LM) on ``config.env_id``; see the module docstring.

    ``model`` is the initial model: with ``lora_rank`` it is wrapped with LoRA adapters here;
    with ``kl_coef > 0`` it is (or, with LoRA, its adapter-free base is) the frozen reference.
    Global RNGs are seeded with ``config.seed``. Call :meth:`close` (``train`` does) to release
    the rollout engines.
    """

    def __init__(self, config: TrainConfig, model: Any, tokenizer: Any, *, progress: bool = True) -> None:
        self.ranks = DataParallel.from_env()
        if config.dynamic_sampling and self.ranks.world_size > 1:
            raise ValueError("dynamic_sampling runs in one process: run it without torchrun, or turn it off")
        config = self.ranks.fit(config)
        self.config, self.tokenizer, self.progress = config, tokenizer, progress and self.ranks.is_main
        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        torch.manual_seed(config.seed)
        self.device = self.ranks.device(config.device)
        self.ranks.start(self.device)
        self.deterministic = config.deterministic if config.deterministic is not None else self.device.type == "cpu"
        model.to(self.device)
        self.reference: Any | None = None
        if config.lora_rank is not None:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(
                r=config.lora_rank,
                lora_alpha=2 * config.lora_rank,
                lora_dropout=0.0,
                target_modules="all-linear",
                task_type="CAUSAL_LM",
            )
            model = get_peft_model(model, lora)
        elif config.kl_coef > 0:
            self.reference = copy.deepcopy(model).eval().requires_grad_(False)
        self.model = model
        self.ranks.broadcast([*model.parameters(), *(self.reference.parameters() if self.reference else [])])
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        warmup = config.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        self.autocast_dtype: torch.dtype | None = None
        if config.precision == "bf16" or (
            config.precision == "auto" and self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        ):
            self.autocast_dtype = torch.bfloat16
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = int(pad)
        self.rng = random.Random(config.seed)
        self.position = DataPosition(step=0, next_seed=config.task_seed_start, episodes_consumed=0)
        self.inserter = HintInserter(tokenizer) if config.advantage in HINDSIGHT_ESTIMATORS else None
        step_episodes = config.tasks_per_step * config.group_size
        self.concurrency = config.concurrency or step_episodes
        batch = 1 if self.deterministic else self.concurrency
        self.policy: Policy
        self.eval_policy: Policy
        self.publisher: AdapterPublisher | None = None
        self.served_version: int | None = None
        if config.rollout_server is not None:
            self.policy, self.eval_policy, self.publisher = self._server_policies(config)
        else:
            self.policy = TransformersPolicy(
                model,
                tokenizer,
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                max_batch_size=batch,
                device=self.device,
            )
            self.eval_policy = TransformersPolicy(
                model,
                tokenizer,
                max_new_tokens=config.max_new_tokens,
                temperature=0.0,
                max_batch_size=batch,
                device=self.device,
            )
        self._engines: dict[str, RolloutEngine] = {}
        self._ray: Any = None  # the Ray connection of ``backend`` ray, made by the first engine

    @property
    def out_dir(self) -> Path:
        return Path(self.config.out_dir)

    # ----- the loop ---------------------------------------------------------------------
    def train(self, *, resume: bool = False, stop_after: int | None = None) -> list[dict[str, Any]]:
        """Run steps until ``config.steps`` (or step ``stop_after``); return their metrics.

        ``resume`` continues from the newest checkpoint in ``out_dir`` (a fresh start when there
        is none); without it, an ``out_dir`` that already holds a run is refused.
        """
        from torch.utils.tensorboard import SummaryWriter

        out = self.out_dir
        out.mkdir(parents=True, exist_ok=True)
        checkpoint = latest_checkpoint(out)
        if resume and checkpoint is not None:
            self._restore(checkpoint)
        elif not resume and (checkpoint is not None or (out / "metrics.jsonl").exists()):
            raise FileExistsError(f"{out} already holds a training run: resume it, or choose another output folder")
        main = self.ranks.is_main  # the one rank that writes the run's files
        if main:
            self._cut_logs()
        target = self.config.steps if stop_after is None else min(stop_after, self.config.steps)
        records: list[dict[str, Any]] = []
        purge = self.position.step + 1 if self.position.step else None
        writer = SummaryWriter(str(out / "tb"), purge_step=purge) if main else None
        bar = tqdm(
            total=self.config.steps, initial=self.position.step, desc="train", unit="step", disable=not self.progress
        )
        try:
            with EpisodeStore(out / "episodes.jsonl") if main else contextlib.nullcontext() as store:
                while self.position.step < target:
                    record = self.step(store)
                    step = self.position.step
                    if self.config.eval_every and step % self.config.eval_every == 0 and self.config.eval_tasks:
                        record["eval"] = self.evaluate(self.eval_seeds())
                    if writer is not None:
                        self._log(record, writer)
                    records.append(record)
                    bar.update(1)
                    bar.set_postfix(
                        reward=f"{record['reward_mean']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}", refresh=False
                    )
                    every = self.config.checkpoint_every
                    if main and ((every and step % every == 0) or step == target):
                        self.save_checkpoint()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            self.close()
        return records

    def step(self, store: EpisodeStore | None = None) -> dict[str, Any]:
        """One training step (rollouts, advantages, update); returns its metrics."""
        cfg, start = self.config, time.perf_counter()
        seed = self.position.next_seed
        if self.publisher is not None and self.served_version != self.position.step:
            self._publish()  # the first step, or a resumed run: the server gets the current weights
        engine = self._engine("train")
        first, count = self.ranks.share(seed, cfg.tasks_per_step)  # this rank's groups
        settled = self._play_groups(engine, first, count)
        rounds = 1
        while (
            cfg.dynamic_sampling
            and rounds < cfg.sampling_rounds
            and len(signal_seeds(settled.kept)) < cfg.tasks_per_step
        ):  # dynamic sampling (one rank): another round of new tasks to fill the batch with signal
            settled = settled.merged(self._play_groups(engine, seed + rounds * cfg.tasks_per_step, count))
            rounds += 1
        settled = self.ranks.gather_settled(settled)
        rollout_s = time.perf_counter() - start
        played = [e for e in settled.kept if e.trainable]
        episodes = with_signal(played, cfg.tasks_per_step) if cfg.dynamic_sampling else played
        advantages: list[list[float]] | None = None
        shared = shared_turns(episodes)
        try:
            if not played and not any(e.trainable for e in settled.dropped):
                failed = sorted([*settled.kept, *settled.dropped], key=lambda e: e.key)
                settings = f"env_kwargs {json.dumps(cfg.env_kwargs)}"
                raise NothingToLearn(f"step {self.position.step + 1}: {all_failed_line(failed, settings)}", failed)
            advantages = self.advantages(episodes)
        finally:  # stored even when no advantage could be estimated (each turn's advantage then None)
            if store is not None:  # each tree's branches before its trunk (EpisodeStore.append_many), in one write
                stored = sorted([*settled.kept, *settled.dropped], key=_stored_order)
                store.append_many(stored if advantages is None else credited(stored, episodes, advantages, shared))
        sample_set = samples_from_episodes(episodes, advantages, shared)
        fresh, stale = refuse_stale(sample_set.samples, self.position.step, cfg.max_staleness)
        samples = downsample_to_multiple(fresh, cfg.dp_size, self.rng)
        update_start = time.perf_counter()
        update = self.update(samples)
        self.position = DataPosition(
            step=self.position.step + 1,
            next_seed=seed + rounds * cfg.tasks_per_step,
            episodes_consumed=self.position.episodes_consumed + len(settled.kept) + len(settled.dropped),
        )
        rollout_version = self.served_version
        if self.publisher is not None:
            self._publish()
        rewards = np.array([e.total_reward for e in played], dtype=np.float64)
        branches = sum(1 for e in episodes if e.branch)
        tokens = sum(e.num_generated_tokens for e in played)
        flat = [a for row in advantages for a in row]
        return {
            "step": self.position.step,
            "reward_mean": float(rewards.mean()) if len(rewards) else 0.0,
            "reward_std": float(rewards.std()) if len(rewards) else 0.0,
            "success_rate": float(np.mean([bool(e.success) for e in played])) if played else 0.0,
            "turns_mean": float(np.mean([e.num_turns for e in played])) if played else 0.0,
            "advantage_abs_mean": float(np.mean(np.abs(flat))) if flat else 0.0,
            **settled.counts(),
            "untrainable_episodes": len(settled.kept) - len(played),
            **(
                {"sampling_rounds": rounds, "signal_groups": len({e.seed for e in episodes})}
                if cfg.dynamic_sampling
                else {}
            ),
            **update,
            "samples": len(samples),
            "skipped_steps": sample_set.skipped_steps,
            **({"shared_steps": sum(shared), "branches": branches} if cfg.tree > 1 else {}),
            "stale_samples": stale,
            **({"rollout_version": rollout_version} if rollout_version is not None else {}),
            "tokens": tokens,
            "tokens_per_s": tokens / rollout_s if rollout_s > 0 else 0.0,
            "rollout_seconds": rollout_s,
            "update_seconds": time.perf_counter() - update_start,
            "seconds": time.perf_counter() - start,
            "next_seed": self.position.next_seed,
            "episodes_consumed": self.position.episodes_consumed,
        }

    # ----- advantages -------------------------------------------------------------------
    def advantages(self, episodes: Sequence[Episode]) -> list[list[float]]:
        """Per-turn advantages of ``episodes`` (sorted by key), estimated per task group.

        Episodes that ended before their first turn have nothing to train on, and episodes the
        policy did not earn (an ``infra_error``, ``env_error`` or ``policy_error`` outcome): both
        stay out of their group's statistics, with advantages of 0.
        """
        cfg = self.config
        hindsight: dict[tuple[EpisodeId, int], float] = {}
        policy_means: dict[tuple[EpisodeId, int], float] = {}
        if cfg.advantage in HINDSIGHT_ESTIMATORS:
            scored = samples_from_episodes(episodes).samples
            by_id = {episode_id(e): e for e in episodes}
            owners = [by_id[(*s.episode, s.branch)] for s in scored]
            outcomes = [(e.total_reward, e.success) for e in owners]
            values = hindsight_logprobs(
                self.model,
                self.tokenizer,
                scored,
                outcomes,
                batch_size=cfg.micro_batch_size,
                temperature=cfg.temperature,
                inserter=self.inserter,
            )
            for sample, value in zip(scored, values, strict=True):
                hindsight[((*sample.episode, sample.branch), sample.turn)] = value
                policy_means[((*sample.episode, sample.branch), sample.turn)] = float(np.mean(sample.old_logprobs))
        result: dict[EpisodeId, list[float]] = {episode_id(e): [0.0] * e.num_turns for e in episodes}
        shared = dict(zip(map(episode_id, episodes), shared_turns(episodes), strict=True))
        groups: dict[int, list[Episode]] = {}
        for episode in episodes:  # an episode with no turn of its own has nothing to train on
            if episode.num_turns > shared[episode_id(episode)] and episode.trainable:
                groups.setdefault(episode.seed, []).append(episode)
        for members in groups.values():
            index = {episode_id(e): i for i, e in enumerate(members)}
            credits = [self._credit(e, hindsight, policy_means, index, shared[episode_id(e)]) for e in members]
            for episode, row in zip(members, estimate(cfg.advantage, credits, **cfg.advantage_options), strict=True):
                result[episode_id(episode)] = [float(a) for a in row]
        return [result[episode_id(e)] for e in episodes]

    @staticmethod
    def _credit(
        episode: Episode,
        hindsight: dict[tuple[EpisodeId, int], float],
        policy_means: dict[tuple[EpisodeId, int], float],
        index: dict[EpisodeId, int],
        shared: int,
    ) -> EpisodeCredit:
        """The estimator's view of ``episode``; a branch whose parent is in the group (at ``index``) names
        it and its fork turn (``shared`` turns: 0 when the parent is not trained on)."""
        turns = range(episode.num_turns)
        hind = pol = None
        key = episode_id(episode)
        if hindsight:
            missing = [t for t in turns if (key, t) not in hindsight]
            if missing:
                raise RuntimeError(f"episode {key}: turns {missing} have no token ids to score in hindsight")
            hind = [hindsight[(key, t)] for t in turns]
            pol = [policy_means[(key, t)] for t in turns]
        parent = index.get((episode.seed, episode.sample, episode.parent_branch or 0)) if shared else None
        return EpisodeCredit(
            reward=episode.total_reward,
            num_turns=episode.num_turns,
            success=bool(episode.success),
            hindsight_logprobs=hind,
            policy_logprobs=pol,
            hindsight_head_logprobs=hind,
            parent=parent,
            fork_turn=shared if parent is not None else 0,
        )

    # ----- the update -------------------------------------------------------------------
    def update(self, samples: Sequence[TurnSample]) -> dict[str, float]:
        """``ppo_epochs`` passes over ``samples``: micro-batches, accumulation, clipping, AdamW.

        With several ranks, each optimizer batch is split evenly over them and their gradients
        are summed (:mod:`horizongym.training.distributed`); the figures are the whole batch's.
        With ``rollout_server``, ``tis_weight_mean`` is the mean truncated importance weight per unit.
        """
        cfg = self.config
        totals = dict.fromkeys(("loss", *_STAT_TOTALS), 0.0)
        units, optimizer_steps, grad_norms = 0, 0, 0.0
        if samples and self.publisher is not None:
            samples = self._recompute_old_logprobs(samples)
        if samples:
            per_rank = None if cfg.grad_accumulation is None else cfg.micro_batch_size * cfg.grad_accumulation
            per_step = len(samples) if per_rank is None else per_rank * self.ranks.world_size
            self.model.train()
            try:
                with self._deterministic():
                    for _ in range(cfg.ppo_epochs):
                        order = list(samples)
                        self.rng.shuffle(order)
                        for batch in _chunks(order, per_step):
                            normalizer = sum(s.num_tokens for s in batch) if cfg.ratio_level == "token" else len(batch)
                            self.optimizer.zero_grad(set_to_none=True)
                            for micro in _chunks(by_length(self.ranks.batch_share(batch)), cfg.micro_batch_size):
                                loss, stats = self._micro_loss(micro, normalizer)
                                loss.backward()
                                totals["loss"] += float(loss.item())
                                _accumulate(totals, stats)
                                units += stats.units
                            self.ranks.all_reduce_gradients(self.params)
                            norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                            grad_norms += float(norm.item())
                            self.optimizer.step()
                            self.scheduler.step()
                            optimizer_steps += 1
            finally:
                self.model.eval()
            *summed, units_sum = self.ranks.sum_floats([*totals.values(), float(units)], self.device)
            totals, units = dict(zip(totals, summed, strict=True)), int(units_sum)
        metrics = {
            "loss": totals["loss"] / max(optimizer_steps, 1),
            "clip_fraction": totals["clip_fraction"] / max(units, 1),
            "approx_kl": totals["approx_kl"] / max(units, 1),
            "kl_ref": totals["kl_ref"] / max(units, 1),
            "mean_ratio": totals["mean_ratio"] / max(units, 1) if units else 1.0,
            "grad_norm": grad_norms / max(optimizer_steps, 1),
            "optimizer_steps": float(optimizer_steps),
            "lr": float(self.scheduler.get_last_lr()[0]),
        }
        if self.publisher is not None:  # samples a server generated, weighted by truncated IS
            metrics["tis_weight_mean"] = totals["tis_weight_mean"] / units if units else 1.0
        return metrics

    def _micro_loss(self, micro: Sequence[TurnSample], normalizer: float) -> tuple[torch.Tensor, PPOStats]:
        cfg = self.config
        prompts, completions = [s.prompt_ids for s in micro], [s.completion_ids for s in micro]
        with self._autocast():
            logprobs, mask = completion_logprobs(
                self.model, prompts, completions, pad_token_id=self.pad_token_id, temperature=cfg.temperature
            )
        old = torch.zeros_like(logprobs)
        for row, sample in enumerate(micro):
            old[row, : sample.num_tokens] = torch.tensor(sample.old_logprobs, dtype=old.dtype)
        advantages = torch.tensor([s.advantage for s in micro], dtype=torch.float32, device=logprobs.device)
        reference = self._reference_logprobs(prompts, completions) if cfg.kl_coef > 0 else None
        weights = None
        if micro[0].behaviour_logprobs is not None:  # sampled on a server: weight by min(π_old/μ, C)
            behaviour = torch.zeros_like(logprobs)
            for row, sample in enumerate(micro):
                behaviour[row, : sample.num_tokens] = torch.tensor(sample.behaviour_logprobs, dtype=old.dtype)
            weights = truncated_is_weights(old, behaviour, mask, cap=cfg.tis_cap, level=cfg.ratio_level)
        return ppo_loss(
            logprobs,
            old,
            advantages,
            mask,
            ratio_level=cfg.ratio_level,
            clip_low=cfg.clip_low,
            clip_high=cfg.clip_high,
            ref_logprobs=reference,
            kl_coef=cfg.kl_coef,
            normalizer=normalizer,
            is_weights=weights,
        )

    def _reference_logprobs(self, prompts: list[list[int]], completions: list[list[int]]) -> torch.Tensor:
        """log π_ref of the completions: the frozen copy, or the LoRA model with its adapters off."""
        with torch.no_grad(), self._autocast():
            if self.reference is not None:
                model, adapters_off = self.reference, contextlib.nullcontext()
            else:
                model, adapters_off = self.model, self.model.disable_adapter()
            with adapters_off:
                logprobs, _ = completion_logprobs(
                    model, prompts, completions, pad_token_id=self.pad_token_id, temperature=self.config.temperature
                )
        return logprobs

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    @contextlib.contextmanager
    def _deterministic(self) -> Iterator[None]:
        if not self.deterministic:
            yield
            return
        previous = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=self.device.type != "cpu")
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous)

    # ----- evaluation -------------------------------------------------------------------
    def eval_seeds(self) -> list[int]:
        """The held-out task seeds: ``eval_seed_start + i`` for ``i < eval_tasks``."""
        return [self.config.eval_seed_start + i for i in range(self.config.eval_tasks)]

    def evaluate(self, seeds: Sequence[int]) -> dict[str, float]:
        """Greedy episodes on ``seeds``: success rate, mean reward, mean turns.

        Episodes the policy did not earn (infrastructure, env or policy errors) are counted as
        ``failed_episodes`` and left out of the figures, never scored as a zero reward.
        """
        engine = self._engine("eval")
        played: list[Episode] = []
        for start, count in _runs(self.ranks.shard(seeds)):
            played.extend(self._run(engine, self.eval_policy, count, 1, start))
        played = self.ranks.gather(played)
        episodes = [e for e in played if e.trainable]
        failed = float(len(played) - len(episodes))
        if not episodes:
            return {
                "episodes": 0.0,
                "failed_episodes": failed,
                "success_rate": 0.0,
                "reward_mean": 0.0,
                "turns_mean": 0.0,
            }
        return {
            "episodes": float(len(episodes)),
            "failed_episodes": failed,
            "success_rate": float(np.mean([bool(e.success) for e in episodes])),
            "reward_mean": float(np.mean([e.total_reward for e in episodes])),
            "turns_mean": float(np.mean([e.num_turns for e in episodes])),
        }

    # ----- rollouts ---------------------------------------------------------------------
    def _engine(self, kind: Literal["train", "eval"]) -> RolloutEngine:
        if kind not in self._engines:
            cfg = self.config
            kwargs = cfg.env_kwargs if kind == "train" or cfg.eval_env_kwargs is None else cfg.eval_env_kwargs
            if kind == "eval" and cfg.eval_env_kwargs is None and is_task_list_env(cfg.env_id):
                kwargs = {**cfg.env_kwargs, "split": "test"}
            recipe = EnvRecipe(cfg.env_id, dict(kwargs))
            self._engines[kind] = RolloutEngine(
                recipe,
                self.policy if kind == "train" else self.eval_policy,
                concurrency=cfg.ray_workers or self.concurrency,
                env_factory=self._env_factory(recipe),
                max_turns=cfg.max_turns,
                system_prompt=cfg.system_prompt,
                progress=False,
                sampling_seed=cfg.seed,
                max_attempts=cfg.max_attempts,
                tree=cfg.tree if kind == "train" else 1,  # evaluation plays single episodes
                branch_at=parse_branch_at(cfg.branch_at),
            )
        return self._engines[kind]

    def _env_factory(self, recipe: EnvRecipe) -> Callable[[], gym.Env[Any, Any]] | None:
        """None (the engine builds envs in this process), or with ``backend`` ray the factory of envs in
        Ray actors; the first call connects to the cluster (:mod:`horizongym.training.rollouts.ray_backend`)."""
        cfg = self.config
        if cfg.backend != "ray":
            return None
        from horizongym.training.rollouts.ray_backend import RayEnvFactory, connect, needs_docker

        if self._ray is None:
            workers = cfg.ray_workers or self.concurrency
            self._ray = connect(cfg.ray_address, num_cpus=workers, docker=needs_docker(recipe))
        return RayEnvFactory(recipe)

    # ----- rollouts on an inference server ------------------------------------------------
    def _server_policies(self, cfg: TrainConfig) -> tuple[OpenAIPolicy, OpenAIPolicy, AdapterPublisher]:
        """The sampling and greedy policies on ``rollout_server``, and the publisher of the adapters."""
        assert cfg.rollout_server is not None
        first = f"{cfg.rollout_adapter}-v{self.position.step}"
        sampler = OpenAIPolicy(
            cfg.rollout_server,
            first,
            temperature=cfg.temperature,
            max_tokens=cfg.max_new_tokens,
            max_concurrency=self.concurrency,
            return_token_ids=True,
        )
        greedy = OpenAIPolicy(cfg.rollout_server, first, temperature=0.0, max_tokens=cfg.max_new_tokens)
        return sampler, greedy, AdapterPublisher(cfg.rollout_server, self.out_dir / "adapters", cfg.rollout_adapter)

    def _publish(self) -> None:
        """Save the current adapter (version = updates done), load it on the server, point the policies at it.
        With several ranks, rank 0 publishes (they all hold the same weights) and the others wait for it."""
        assert self.publisher is not None
        version = self.position.step
        if self.ranks.is_main:
            self.publisher.publish(self.model, version)
        self.ranks.barrier()  # no rank samples from an adapter the server has not loaded yet
        name = self.publisher.name(version)
        for policy in (self.policy, self.eval_policy):
            assert isinstance(policy, OpenAIPolicy)
            policy.use_model(name, version)
        self.served_version = version

    def _recompute_old_logprobs(self, samples: Sequence[TurnSample]) -> list[TurnSample]:
        """π_old by the trainer (no gradient) for samples a server generated; the server's log-probs
        become the behaviour μ of truncated importance sampling."""
        out: list[TurnSample] = []
        with torch.no_grad(), self._autocast():
            for micro in _chunks(samples, self.config.micro_batch_size):
                logprobs, _ = completion_logprobs(
                    self.model,
                    [s.prompt_ids for s in micro],
                    [s.completion_ids for s in micro],
                    pad_token_id=self.pad_token_id,
                    temperature=self.config.temperature,
                )
                for row, sample in enumerate(micro):
                    mine = logprobs[row, : sample.num_tokens].float().tolist()
                    out.append(dataclasses.replace(sample, old_logprobs=mine, behaviour_logprobs=sample.old_logprobs))
        return out

    def _play_groups(self, engine: RolloutEngine, first: int, count: int) -> SettledGroups:
        """``count`` task groups from seed ``first``, with their infrastructure failures settled."""
        cfg = self.config
        return settle_infra_failures(
            self._run(engine, self.policy, count, cfg.group_size, first),
            lambda seeds: [e for s, n in _runs(seeds) for e in self._run(engine, self.policy, n, cfg.group_size, s)],
            mode=cfg.infra_failures,
            max_rerolls=cfg.max_rerolls,
        )

    @staticmethod
    def _run(engine: RolloutEngine, policy: Policy, tasks: int, group: int, seed: int) -> list[Episode]:
        async def run() -> list[Episode]:
            try:
                return await engine.run(tasks, group, seed=seed)
            finally:
                await policy.aclose()

        return asyncio.run(run())

    def close(self) -> None:
        """Close the rollout engines (their environments and threads)."""
        while self._engines:
            self._engines.popitem()[1].close()
        if self.publisher is not None:
            self.publisher.close()
        if self._ray is not None:
            self._ray.close()
            self._ray = None

    # ----- logging, checkpoints, resume -------------------------------------------------
    def _log(self, record: dict[str, Any], writer: Any) -> None:
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        step = record["step"]
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float) and math.isfinite(value):
                writer.add_scalar(f"train/{key}", value, step)
        for key, value in record.get("eval", {}).items():
            writer.add_scalar(f"eval/{key}", value, step)
        writer.flush()

    def save_checkpoint(self) -> Path:
        """Checkpoint the current step under ``out_dir/checkpoints``."""
        return save_checkpoint(
            self.out_dir,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            position=self.position,
            config=self.config.model_dump(mode="json"),
            trainer_rng=self.rng,
            world_size=self.ranks.world_size,
        )

    def _restore(self, path: Path) -> None:
        if (ranks := checkpoint_world_size(path)) != self.ranks.world_size:
            raise ValueError(resume_refusal(path, ranks, self.ranks.world_size))
        saved = json.loads((path / "config.json").read_text())
        current = self.config.model_dump(mode="json")
        changed = sorted(k for k in current.keys() | saved.keys() if current.get(k) != saved.get(k))
        refused = [k for k in changed if k not in RESUMABLE_CHANGES]
        if refused:
            raise ValueError(f"cannot resume {path}: the config differs in {', '.join(refused)}")
        checkpoint = load_checkpoint(path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler)
        self.rng.setstate(checkpoint.trainer_rng)
        self.position = checkpoint.position

    def _cut_logs(self) -> None:
        """Drop metrics lines and stored episodes of steps after the data position (redone on resume)."""
        position, first_seed = self.position, self.config.task_seed_start
        _keep_lines(self.out_dir / "metrics.jsonl", lambda row: int(row["step"]) <= position.step)
        _keep_lines(self.out_dir / "episodes.jsonl", lambda row: first_seed <= int(row["seed"]) < position.next_seed)


def _keep_lines(path: Path, keep: Any) -> None:
    """Rewrite the JSONL file ``path`` (atomically) with the whole lines ``keep`` accepts."""
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    kept: list[bytes] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line torn by a kill: never whole, never read
        try:
            wanted = keep(row)
        except (KeyError, TypeError, ValueError):  # a hand-edited line: kept for its reader to report
            wanted = True
        if wanted:
            kept.append(line)
    data = b"".join(line + b"\n" for line in kept)
    if data == path.read_bytes():
        return
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


EpisodeId = tuple[int, int, int]
"""An episode of a step: its task seed, sample and branch (the key a tree's episodes share, and the branch)."""


def episode_id(episode: Episode) -> EpisodeId:
    return (episode.seed, episode.sample, episode.branch)


def shared_turns(episodes: Sequence[Episode]) -> list[int]:
    """For each episode, its leading turns that another of ``episodes`` owns: a branch's ``fork_turn``
    when its parent is among them and trained on, else 0 (a trunk, or a branch whose parent failed)."""
    present = {episode_id(e) for e in episodes if e.trainable}
    return [e.fork_turn if e.branch and (e.seed, e.sample, e.parent_branch) in present else 0 for e in episodes]


def _stored_order(episode: Episode) -> tuple[int, int, bool, int]:
    """Episodes by task and sample, each tree's branches before its trunk (a trunk on file is a whole tree)."""
    return (episode.seed, episode.sample, episode.branch == 0, episode.branch)


def by_length(samples: Sequence[TurnSample]) -> list[TurnSample]:
    """``samples`` from shortest to longest (prompt and completion), so each micro-batch pads little.

    An optimizer step sums its micro-batches' gradients, so their order changes nothing but the
    padding each one carries."""
    return sorted(samples, key=lambda s: len(s.prompt_ids) + s.num_tokens)


def _chunks(items: Sequence[TurnSample], size: int) -> Iterator[list[TurnSample]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _runs(seeds: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Maximal runs of consecutive seeds, as (first seed, count)."""
    start: int | None = None
    count = 0
    for seed in seeds:
        if start is not None and seed == start + count:
            count += 1
            continue
        if start is not None:
            yield start, count
        start, count = seed, 1
    if start is not None:
        yield start, count


_STAT_TOTALS = {
    "clip_fraction": "clip_fraction",
    "approx_kl": "approx_kl",
    "kl_ref": "kl_ref",
    "mean_ratio": "mean_ratio",
    "tis_weight_mean": "is_weight_mean",
}
"""The update's metrics averaged over units (tokens, or sequences), and the PPOStats field of each."""


def _accumulate(totals: dict[str, float], stats: PPOStats) -> None:
    """Add ``stats``' per-unit means, weighted by its units, to ``totals`` (divided by all units at the end)."""
    for metric, field in _STAT_TOTALS.items():
        totals[metric] += getattr(stats, field) * stats.units
