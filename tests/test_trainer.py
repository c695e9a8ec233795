"""The RL trainer: PPO/GSPO loss, samples, SFT, hindsight, checkpoints, exact resume, LoRA, CLI."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import horizongym as hg
from horizongym import Task, TextEnv
from horizongym.agents.hf import TransformersPolicy, encode_prompt
from horizongym.agents.scripted import expert_for
from horizongym.training.checkpoint import DataPosition, latest_checkpoint, load_checkpoint, save_checkpoint
from horizongym.training.config import TrainConfig
from horizongym.training.hindsight import HintInserter, hindsight_logprobs
from horizongym.training.ppo import completion_logprobs, ppo_loss
from horizongym.training.rollouts import RolloutEngine, read_episodes
from horizongym.training.rollouts.trajectory import Episode, Step
from horizongym.training.samples import samples_from_episodes
from horizongym.training.sft import sft_warm_start, step_contexts
from horizongym.training.trainer import Trainer


class ToyEnv(TextEnv):
    """Two turns of free text; the reward depends on the text, so samples of a group differ."""

    blocking = False
    max_turns = 2

    def new_task(self, options: dict[str, Any]) -> Task:
        return Task(id=f"toy-{int(self.np_random.integers(100))}", prompt="Say hi.")

    def on_text(self, text: str) -> str:
        distinct = len(set(text))
        self.add_reward("variety", (distinct % 4) / 3)
        if self.state.turn >= 2:
            self.end_episode(success=distinct % 2 == 0)
        return "Again."


hg.register("TrainToy-v0", ToyEnv)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from horizongym.agents.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("trainer") / "tiny", seed=3, hidden_size=32, num_heads=2)


def load(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def config(out: Path, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "env_id": "TrainToy-v0",
        "group_size": 2,
        "tasks_per_step": 2,
        "steps": 3,
        "lr": 1e-3,
        "max_new_tokens": 10,
        "out_dir": str(out),
    }
    return TrainConfig(**{**values, **overrides})


# ----- the loss ---------------------------------------------------------------------------
def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two completions: ratios (1.5, 1.1) with A = +1, and (0.5, 0.9, 1.3) with A = −2."""
    old = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -1.5, -2.5]])
    ratios = torch.tensor([[1.5, 1.1, 1.0], [0.5, 0.9, 1.3]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    new = ((old + ratios.log()) * mask).requires_grad_(True)
    return new, old * mask, torch.tensor([1.0, -2.0]), mask


def test_token_level_ppo_clip_matches_hand_computation() -> None:
    new, old, adv, mask = _batch()
    loss, stats = ppo_loss(new, old, adv, mask, clip_low=0.2, clip_high=0.2)
    # min(r·A, clip(r)·A): 1.5→1.2 (clipped high), 1.1, 0.5·−2→0.8·−2 = −1.6 (clipped low), −1.8, −2.6 (kept)
    assert loss.item() == pytest.approx(-(1.2 + 1.1 - 1.6 - 1.8 - 2.6) / 5)
    assert stats.clip_fraction == pytest.approx(2 / 5)
    assert stats.mean_ratio == pytest.approx((1.5 + 1.1 + 0.5 + 0.9 + 1.3) / 5)
    assert stats.units == 5
    loss.backward()
    assert new.grad is not None
    # d/dlogπ of −r·A/N is −r·A/N; clipped tokens get no gradient; padding gets none
    expected = torch.tensor([[0.0, -1.1 / 5, 0.0], [0.0, 1.8 / 5, 2.6 / 5]])
    assert torch.allclose(new.grad, expected, atol=1e-6)
    half, _ = ppo_loss(new, old, adv, mask, normalizer=10)
    assert half.item() == pytest.approx(loss.item() / 2)


def test_sequence_level_gspo_ratio_and_asymmetric_clip() -> None:
    new, old, adv, mask = _batch()
    loss, stats = ppo_loss(new, old, adv, mask, ratio_level="sequence", clip_low=0.2, clip_high=0.25)
    s0 = math.sqrt(1.5 * 1.1)  # 1.2845 > 1.25: clipped to 1.25 (A > 0)
    s1 = (0.5 * 0.9 * 1.3) ** (1 / 3)  # 0.8363 inside [0.8, 1.25]: s1·A = −1.6726
    assert loss.item() == pytest.approx(-(1.25 * 1.0 + s1 * -2.0) / 2, rel=1e-5)
    assert stats.clip_fraction == pytest.approx(0.5)
    assert stats.mean_ratio == pytest.approx((s0 + s1) / 2, rel=1e-5)
    assert stats.units == 2
    tight, tight_stats = ppo_loss(new, old, adv, mask, ratio_level="sequence", clip_low=0.1, clip_high=0.25)
    assert tight.item() == pytest.approx(-(1.25 - 0.9 * 2.0) / 2) and tight_stats.clip_fraction == 1.0


def test_kl_penalty_uses_the_k3_estimator() -> None:
    logprobs = torch.tensor([[math.log(0.5), math.log(0.25)]])
    reference = torch.tensor([[math.log(0.25), math.log(0.5)]])
    mask = torch.ones(1, 2)
    loss, stats = ppo_loss(logprobs, logprobs, torch.zeros(1), mask, ref_logprobs=reference, kl_coef=0.1)
    k3 = [(math.exp(q) - q - 1) for q in (math.log(0.5), math.log(2.0))]  # 0.1931, 0.3069
    assert stats.kl_ref == pytest.approx(sum(k3) / 2)
    assert loss.item() == pytest.approx(0.1 * sum(k3) / 2)


# ----- samples, hindsight ---------------------------------------------------------------
def test_samples_keep_the_engine_token_ids_and_skip_expert_steps(model_dir: Path) -> None:
    model, tokenizer = load(model_dir)
    policy = TransformersPolicy(model, tokenizer, max_new_tokens=8, max_batch_size=1)
    with RolloutEngine("TrainToy-v0", policy, progress=False) as engine:
        episodes = engine.run_sync(1, 2, seed=5)
    with RolloutEngine("KeyChain-v0", expert_for("KeyChain-v0"), progress=False) as engine:
        expert = engine.run_sync(1, 1)
    episodes = sorted(episodes, key=lambda e: e.key)
    advantages = [[0.5, -0.5], [1.0, 2.0]]
    samples, skipped = samples_from_episodes([*episodes, *expert], [*advantages, [0.0] * expert[0].num_turns])
    assert skipped == expert[0].num_turns > 0
    assert len(samples) == 4
    for sample in samples:
        step = episodes[sample.episode[1]].steps[sample.turn]
        assert sample.prompt_ids == step.prompt_token_ids and sample.completion_ids == step.token_ids
        assert sample.old_logprobs == step.logprobs
        assert sample.advantage == advantages[sample.episode[1]][sample.turn]
    # ids that do not survive decode → encode are kept as they are
    odd = Step(turn=1, action="x", prompt_token_ids=[256, 1, 2], token_ids=[259, 257, 258], logprobs=[-1.0] * 3)
    kept = samples_from_episodes([Episode(env_id="x", seed=9, steps=[odd])], [[1.0]]).samples[0]
    assert kept.completion_ids == [259, 257, 258] and kept.episode == (9, 0) and kept.turn == 0


def test_hindsight_hint_is_inserted_before_the_assistant_header(model_dir: Path) -> None:
    model, tokenizer = load(model_dir)
    prompt = encode_prompt(tokenizer, [{"role": "user", "content": "Say hi."}], None)
    inserter = HintInserter(tokenizer)
    hinted = inserter.insert(prompt, "Outcome of this episode: reward 1.00 (success).")
    text = tokenizer.decode(hinted)
    assert text.endswith(
        "<|im_start|>user\nOutcome of this episode: reward 1.00 (success).<|im_end|>\n<|im_start|>assistant\n"
    )
    assert hinted[: len(prompt) - len(inserter.header)] == prompt[: len(prompt) - len(inserter.header)]
    headless = [104, 105]
    assert inserter.insert(headless, "h")[-2:] == headless and len(inserter.insert(headless, "h")) > 2

    completion = [104, 105, 257]
    step = Step(turn=1, action="hi", prompt_token_ids=prompt, token_ids=completion, logprobs=[0.0] * 3)
    samples = samples_from_episodes([Episode(env_id="x", seed=0, steps=[step])]).samples
    plain, mask = completion_logprobs(model, [prompt], [completion], pad_token_id=259)
    plain_mean = float((plain.sum() / mask.sum()).item())
    win = hindsight_logprobs(model, tokenizer, samples, [(1.0, True)])
    loss = hindsight_logprobs(model, tokenizer, samples, [(0.0, False)])
    assert len(win) == 1 and win[0] != pytest.approx(plain_mean, abs=1e-6) and win[0] != loss[0]


# ----- SFT -----------------------------------------------------------------------------------
def test_sft_on_expert_episodes_lowers_the_loss(model_dir: Path) -> None:
    expert = expert_for("KeyChain-v0")
    with RolloutEngine("KeyChain-v0", expert, progress=False) as engine:
        episodes = engine.run_sync(2, 1)
    contexts = step_contexts(episodes[0])
    first_action = next(i for i, m in enumerate(episodes[0].messages) if m["role"] == "assistant")
    assert contexts[0][0] == episodes[0].messages[:first_action] and len(contexts) == episodes[0].num_turns
    assert contexts[1][0][-2] == {"role": "assistant", "content": episodes[0].steps[0].action}
    assert contexts[1][0][-1] == {"role": "user", "content": episodes[0].steps[0].observation}
    model, tokenizer = load(model_dir)
    losses = sft_warm_start(model, tokenizer, episodes, epochs=3, batch_size=4, lr=3e-3)
    assert len(losses) == 3 and losses[-1] < losses[0]


# ----- checkpoints -----------------------------------------------------------------------
def test_checkpoint_round_trip_restores_weights_optimizer_and_rng(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    own = random.Random(7)
    position = DataPosition(step=4, next_seed=8, episodes_consumed=16)
    parts: dict[str, Any] = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "trainer_rng": own}
    save_checkpoint(tmp_path, position=position, config={"a": 1}, **parts)
    save_checkpoint(tmp_path, position=DataPosition(2, 4, 8), config={}, **parts)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    draws = (random.random(), np.random.rand(), torch.rand(2), own.random())
    with torch.no_grad():
        model.weight.zero_()
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.name == "step-00000004"
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["step-00000002", "step-00000004"]
    restored = load_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler)
    own.setstate(restored.trainer_rng)
    assert restored.position == position and restored.config == {"a": 1}
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert int(optimizer.state_dict()["state"][0]["step"]) == 1
    assert random.random() == draws[0] and np.random.rand() == draws[1]
    assert torch.equal(torch.rand(2), draws[2]) and own.random() == draws[3]


# ----- the trainer -------------------------------------------------------------------------
def _keys(out: Path) -> list[tuple[int, int]]:
    return [e.key for e in read_episodes(out / "episodes.jsonl")]


def test_resume_gives_bitwise_the_same_weights_and_data(model_dir: Path, tmp_path: Path) -> None:
    settings = {"ppo_epochs": 2, "micro_batch_size": 3, "grad_accumulation": 1, "eval_every": 2, "eval_tasks": 2}
    initial, tokenizer = load(model_dir)
    start = {k: v.clone() for k, v in initial.state_dict().items()}
    straight = Trainer(config(tmp_path / "straight", **settings), initial, tokenizer, progress=False)
    records = straight.train()
    assert [r["step"] for r in records] == [1, 2, 3] and "eval" in records[1]

    model, tokenizer = load(model_dir)
    Trainer(config(tmp_path / "split", **settings), model, tokenizer, progress=False).train(stop_after=1)
    assert latest_checkpoint(tmp_path / "split") == tmp_path / "split" / "checkpoints" / "step-00000001"
    model, tokenizer = load(model_dir)
    resumed = Trainer(config(tmp_path / "split", **settings), model, tokenizer, progress=False)
    assert [r["step"] for r in resumed.train(resume=True)] == [2, 3]

    changed = False
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters(), strict=True):
        assert torch.equal(a, b), name
        changed |= not torch.equal(a, start[name])
    assert changed, "training did not move the weights"
    keys = _keys(tmp_path / "straight")
    assert keys == _keys(tmp_path / "split") and len(keys) == len(set(keys)) == 12
    assert keys == [(seed, sample) for seed in range(6) for sample in range(2)]
    for out in ("straight", "split"):
        lines = (tmp_path / out / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
        assert list((tmp_path / out / "tb").glob("events.out.tfevents.*"))
    with pytest.raises(FileExistsError):
        Trainer(config(tmp_path / "split", **settings), *load(model_dir), progress=False).train()


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_lora_run_trains_only_the_adapters(model_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load(model_dir)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = config(tmp_path, steps=1, lora_rank=4, kl_coef=0.05, advantage="eapo+hcapo", ratio_level="sequence")
    trainer = Trainer(cfg, model, tokenizer, progress=False)
    lora_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    trainer.train()
    assert lora_before and all(p.requires_grad == ("lora_" in n) for n, p in trainer.model.named_parameters())
    assert any(not torch.equal(p, lora_before[n]) for n, p in trainer.model.named_parameters() if "lora_" in n)
    merged_names = {
        n.replace("base_model.model.", "").replace(".base_layer", ""): p
        for n, p in trainer.model.named_parameters()
        if "lora_" not in n
    }
    assert merged_names.keys() == base.keys()
    assert all(torch.equal(p, base[n]) for n, p in merged_names.items())
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint is not None
    saved = torch.load(checkpoint / "model.pt", weights_only=True)
    assert saved and all("lora_" in key for key in saved)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "horizongym", "train", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_train_runs_a_step_with_a_tiny_model(tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["KeyChain-v0", "--policy", "tiny", "--out", str(out), "--quiet"]
    result = _cli(
        *common,
        "--steps",
        "1",
        "--group",
        "2",
        "--tasks-per-step",
        "1",
        "--max-new-tokens",
        "6",
        "--env-kwargs",
        '{"max_turns": 1}',
        "--eval-every",
        "1",
        "--eval-tasks",
        "1",
    )
    assert result.returncode == 0, result.stderr
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["step"] == 1 and "eval" in json.loads(lines[0])
    assert (out / "checkpoints" / "step-00000001" / "model.pt").is_file()
    assert (out / "init" / "config.json").is_file() and list((out / "tb").glob("events.out.tfevents.*"))
    again = _cli(*common, "--steps", "1")
    assert again.returncode == 2 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    wrong = _cli("KeyChain-v0", "--policy", "random", "--out", str(tmp_path / "other"))
    assert wrong.returncode == 2 and "--policy tiny or --policy hf:PATH" in wrong.stderr


# ----- the advantage each stored turn was credited with ----------------------------------
def test_stored_turns_carry_the_advantage_they_were_credited_with(model_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load(model_dir)
    trainer = Trainer(config(tmp_path, steps=1, tree=2, branch_at="1"), model, tokenizer, progress=False)
    rows: dict[tuple[int, int, int], list[float]] = {}
    estimate = trainer.advantages

    def spy(episodes: Any) -> list[list[float]]:
        result = estimate(episodes)
        rows.update({(e.seed, e.sample, e.branch): row for e, row in zip(episodes, result, strict=True)})
        return result

    trainer.advantages = spy  # type: ignore[method-assign]
    trainer.train()
    stored = read_episodes(tmp_path / "episodes.jsonl")
    by_id = {(e.seed, e.sample, e.branch): e for e in stored}
    branches = [e for e in stored if e.branch]
    assert branches and all(e.fork_turn == 1 for e in branches)
    for episode in stored:
        row = rows[(episode.seed, episode.sample, episode.branch)]
        assert all(step.advantage is not None for step in episode.steps)
        for turn, step in enumerate(episode.steps):
            if episode.branch and turn < episode.fork_turn:  # the trunk's turn: its value, trained once
                trunk = by_id[(episode.seed, episode.sample, episode.parent_branch or 0)]
                assert (
                    step.advantage
                    == trunk.steps[turn].advantage
                    == pytest.approx(rows[trunk.seed, trunk.sample, 0][turn])
                )
            else:
                assert step.advantage == pytest.approx(row[turn])
    assert any(step.advantage != 0 for e in stored for step in e.steps)


def test_turns_of_episodes_not_learned_from_have_no_advantage() -> None:
    from horizongym.training.turn_credit import credited

    def episode(branch: int, parent: int | None, fork: int, outcome: str, turns: int) -> Episode:
        steps = [Step(turn=t + 1, action=f"a{t}") for t in range(turns)]
        return Episode(
            env_id="KeyChain-v0",
            seed=3,
            sample=0,
            steps=steps,
            outcome=outcome,  # type: ignore[arg-type]
            branch=branch,
            parent_branch=parent,
            fork_turn=fork,
        )

    trunk, branch, failed = (
        episode(0, None, 0, "completed", 3),
        episode(1, 0, 2, "completed", 4),
        episode(2, 0, 1, "env_error", 2),
    )
    grandchild = episode(3, 1, 3, "completed", 5)
    stored = credited(
        [branch, failed, grandchild, trunk],
        [trunk, branch, grandchild],
        [[0.5, -0.5, 1.0], [9.0, 9.0, 2.0, 3.0], [9.0, 9.0, 9.0, 4.0, 5.0]],
        [0, 2, 3],
    )
    assert [[s.advantage for s in e.steps] for e in stored] == [
        [0.5, -0.5, 2.0, 3.0],  # turns 1-2: the trunk's
        [None, None],  # not learned from
        [0.5, -0.5, 2.0, 4.0, 5.0],  # turn 3 is its parent's own, turns 1-2 its grandparent's
        [0.5, -0.5, 1.0],
    ]
    assert all(s.advantage is None for s in trunk.steps), "the episodes played are left as they were"
