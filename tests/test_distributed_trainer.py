"""Data-parallel training under torchrun (2 CPU ranks, gloo) against one process on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from horizongym.training.config import TrainConfig
from horizongym.training.distributed import DataParallel
from horizongym.training.rollouts import read_episodes

TOY_ENV = '''
import horizongym as hg
from horizongym import Task, TextEnv


class SplitToy(TextEnv):
    """One or two turns of free text: the reward and the episode's length depend on the text."""

    blocking = False
    max_turns = 2

    def new_task(self, options):
        return Task(id=f"toy-{int(self.np_random.integers(100))}", prompt="Say hi.")

    def on_text(self, text):
        distinct = len(set(text))
        self.add_reward("variety", (distinct % 4) / 3)
        if distinct % 2 or self.state.turn >= 2:
            self.end_episode(success=distinct % 3 == 0)
        return "Again."


hg.register("SplitToy-v0", SplitToy)
'''

SETTINGS = [
    *("--group 3 --tasks-per-step 3 --max-new-tokens 8 --lr 1e-3 --checkpoint-every 1").split(),
    *("--eval-every 2 --eval-tasks 3 --import split_toy --quiet").split(),
]
"""3 tasks a step split 2 + 1 over 2 ranks; episodes of 1 or 2 turns, so a step's sample count can be odd."""


def horizongym_train(cwd: Path, *args: str, ranks: int = 1) -> subprocess.Popen[str]:
    """Start ``horizongym train ARGS``: a plain process, or ``torchrun --standalone`` (a free port) with ``ranks``."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"] if ranks > 1 else []
    command = [sys.executable, *launcher, "-m", "horizongym", "train", "SplitToy-v0", *SETTINGS, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_two_ranks_under_torchrun_train_like_one_process_on_the_same_batch(tmp_path: Path) -> None:
    """A 2-rank run of 2 steps resumed to 3, one process on the same global batch, a resume with 1 rank.

    Both runs start from ``--policy tiny``, the same random model (its seed is the run's). One
    test, so that the runs are made once whichever xdist worker takes it."""
    runs = _train(tmp_path)
    _check_weights(runs)
    _check_files_of_rank_zero(runs)
    _check_refusal(runs)


def _train(root: Path) -> dict[str, Any]:
    (root / "split_toy.py").write_text(TOY_ENV)
    two, one = root / "two", root / "one"
    # the same global batch in one process: dp_size 2 drops what the 2 ranks drop
    single = horizongym_train(root, "--policy", "tiny", "--out", str(one), "--steps", "3", "--dp-size", "2")
    first = finished(horizongym_train(root, "--policy", "tiny", "--out", str(two), "--steps", "2", ranks=2))
    assert first.returncode == 0, first.stderr[-3000:]
    resume = ["--policy", "tiny", "--out", str(two), "--resume"]
    one_rank = horizongym_train(root, *resume, "--steps", "4")  # refused before it reads or writes a step
    resumed = finished(horizongym_train(root, *resume, "--steps", "3", ranks=2))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    refused = finished(one_rank)
    reference = finished(single)
    assert reference.returncode == 0, reference.stderr[-3000:]
    return {"two": two, "one": one, "first": first, "resumed": resumed, "refused": refused}


def _weights(out: Path, step: int) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoints" / f"step-{step:08d}" / "model.pt", weights_only=True)


def _metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _check_weights(runs: dict[str, Any]) -> None:
    two, one = runs["two"], runs["one"]
    initial = _weights_of_init(two / "init")
    for step in (1, 2, 3):  # step 3 was trained after a resume
        ranked, single = _weights(two, step), _weights(one, step)
        assert ranked.keys() == single.keys()
        # Not bitwise: each rank sums its half of the batch's gradient, then the all-reduce adds
        # the two halves, where one process adds every micro-batch in turn (and pads micro-batches
        # of other samples together); float addition is not associative, so the sums differ in
        # the last bits, and AdamW carries that into the weights.
        for name, tensor in ranked.items():
            torch.testing.assert_close(tensor, single[name], msg=f"step {step}, {name} differs")
    moved = max(float((_weights(two, 3)[k] - v).abs().max()) for k, v in initial.items())
    assert moved > 1e-4, "training did not move the weights"


def _weights_of_init(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def _check_files_of_rank_zero(runs: dict[str, Any]) -> None:
    """Rank 0 alone wrote the store (every episode once, those one process plays), metrics, tb, checkpoints."""
    two, one = runs["two"], runs["one"]
    ranked = list(read_episodes(two / "episodes.jsonl"))
    keys = [e.key for e in ranked]
    assert keys == [(seed, sample) for seed in range(9) for sample in range(3)]  # 3 steps × 3 tasks × 3
    single = {e.key: e for e in read_episodes(one / "episodes.jsonl")}
    for episode in ranked:  # each rank played the episodes one process plays, seed for seed
        assert [s.action for s in episode.steps] == [s.action for s in single[episode.key].steps]
    metrics, reference = _metrics(two), _metrics(one)
    assert [m["step"] for m in metrics] == [1, 2, 3]
    turns = [round(m["turns_mean"] * 9) for m in metrics]
    assert all(m["samples"] % 2 == 0 for m in metrics)
    assert any(t % 2 for t in turns), "no step had an odd sample count for the downsampling to drop"
    assert [m["samples"] for m in metrics] == [t - t % 2 for t in turns]
    for mine, theirs in zip(metrics, reference, strict=True):
        for key in ("reward_mean", "samples", "episodes_consumed", "next_seed", "optimizer_steps"):
            assert mine[key] == theirs[key], key
        for key in ("loss", "grad_norm", "clip_fraction", "mean_ratio"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    assert metrics[1]["eval"] == reference[1]["eval"] and metrics[1]["eval"]["episodes"] == 3
    assert len(list((two / "tb").glob("events.out.tfevents.*"))) == 2  # one writer per launch: rank 0's
    assert (two / "checkpoints" / "step-00000003" / "ranks.json").read_text() == '{"world_size": 2}\n'
    assert runs["first"].stdout.count("metrics:") == 1  # rank 0 reports


def _check_refusal(runs: dict[str, Any]) -> None:
    """A resume with another number of ranks is refused in one line, and loses nothing."""
    refused = runs["refused"]
    assert refused.returncode == 2
    errors = [line for line in refused.stderr.splitlines() if line.startswith("horizongym: error:")]
    assert len(errors) == 1 and errors[0] == refused.stderr.strip().splitlines()[-1], refused.stderr
    assert "2 data-parallel rank(s)" in errors[0] and "--nproc-per-node 2" in errors[0], errors
    assert [m["step"] for m in _metrics(runs["two"])] == [1, 2, 3]  # nothing lost


# ----- the ranks, without a process group ------------------------------------------------------
def test_ranks_come_from_torchrun_variables() -> None:
    assert DataParallel.from_env({}) == DataParallel(rank=0, world_size=1, local_rank=0)
    ranks = DataParallel.from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (ranks.rank, ranks.world_size, ranks.local_rank, ranks.is_main, ranks.active) == (3, 4, 1, False, True)
    for bad in ({"WORLD_SIZE": "2"}, {"WORLD_SIZE": "2", "RANK": "2"}, {"WORLD_SIZE": "two", "RANK": "0"}):
        with pytest.raises(ValueError, match="torchrun"):
            DataParallel.from_env(bad)


def test_each_seed_and_sample_goes_to_exactly_one_rank() -> None:
    for count, world in ((3, 2), (8, 4), (7, 3), (5, 5)):
        blocks = [DataParallel(rank=r, world_size=world).share(10, count) for r in range(world)]
        seeds = [s for first, n in blocks for s in range(first, first + n)]
        assert seeds == list(range(10, 10 + count))
        assert max(n for _, n in blocks) - min(n for _, n in blocks) <= 1
    batch = list(range(6))
    assert [DataParallel(rank=r, world_size=3).batch_share(batch) for r in range(3)] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="multiple of 4"):
        DataParallel(rank=0, world_size=4).batch_share(batch)


def test_the_config_is_fitted_to_the_ranks() -> None:
    config = TrainConfig(env_id="KeyChain-v0", tasks_per_step=2)
    two = DataParallel(rank=1, world_size=2)
    assert two.fit(config).dp_size == 2 and DataParallel().fit(config) is config
    assert two.fit(config.model_copy(update={"dp_size": 4})).dp_size == 4
    with pytest.raises(ValueError, match="--dp-size 2"):
        two.fit(config.model_copy(update={"dp_size": 3}))
    with pytest.raises(ValueError, match="--tasks-per-step 4"):
        DataParallel(rank=0, world_size=4).fit(config)
    on_ray = config.model_copy(update={"backend": "ray"})
    with pytest.raises(ValueError, match=r"each start a Ray cluster of their own.*--address auto"):
        two.fit(on_ray)
    assert two.fit(on_ray.model_copy(update={"ray_address": "auto"})).dp_size == 2
    assert DataParallel().fit(on_ray) is on_ray  # one process may start a local Ray


def test_gradients_are_summed_in_buckets_of_one_dtype() -> None:
    from horizongym.training.distributed import _buckets

    grads = [torch.zeros(4), torch.zeros(3), torch.zeros(5), torch.zeros(2, dtype=torch.float64), torch.zeros(1)]
    sizes = [[g.numel() for g in bucket] for bucket in _buckets(grads, limit=8)]
    assert sizes == [[4, 3], [5], [2], [1]]  # a new bucket past 8 elements, and for another dtype
    assert _buckets([torch.zeros(20)], limit=8)[0][0].numel() == 20  # a tensor over the limit goes alone
