"""The kernel evaluator tells its own failures from the candidate's: a crash the kernel caused scores
0 as before, while a worker killed from outside, a missing compiler or a full disk raise
:class:`~horizongym.envs.kernels.evaluator.EvaluatorError` and never become a reward. Real builds,
real processes, real signals; KernelGen-v0 episodes through the rollout engine."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import horizongym
from horizongym.agents.base import Action, Message
from horizongym.agents.scripted import ScriptedPolicy
from horizongym.envs.kernels import evaluator as evaluator_module
from horizongym.envs.kernels.catalog import get_task
from horizongym.envs.kernels.cli import add_kernel_commands
from horizongym.envs.kernels.evaluator import EvaluatorError, KernelEvaluator
from horizongym.tools import ToolCall
from horizongym.training.rollouts import EnvRecipe, RolloutEngine

RELU = get_task("relu")
HONEST_LOOP = "y[i] = x[i] > 0.f ? x[i] : 0.f;"
HANGING_LOOP = "while (true) { y[0] = x[i]; }"


def relu_candidate(loop: str, *, fresh: bool = False) -> str:
    """A candidate for the relu task; ``fresh``: with a unique comment, so its build is not cached."""
    comment = f"// build {uuid.uuid4().hex}\n" if fresh else ""
    return f'''
import torch
import torch.nn as nn
from horizongym.envs.kernels.api import load_kernel

lib = load_kernel(r"""
{comment}#include <cstdint>
#include <cstring>
extern "C" void relu(const float* x, float* y, int64_t n) {{
    for (int64_t i = 0; i < n; ++i) {{ {loop} }}
}}
""")


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        y = torch.empty_like(x)
        lib.relu(x, y, x.numel())
        return y
'''


def quick_evaluator(**kwargs: Any) -> KernelEvaluator:
    return KernelEvaluator("cpu", trials=5, warmup=1, timeout_s=60, **kwargs)


def evaluation_children() -> set[int]:
    """The processes the evaluator's fork server has started and that still run (none while it is not running)."""
    zygote = evaluator_module._ZYGOTE.pid
    if zygote is None:
        return set()
    try:
        return {int(pid) for pid in Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split()}
    except OSError:
        return set()


class Killer(threading.Thread):
    """Kills the next ``role`` process an evaluation starts (``SIGKILL``, from outside), once."""

    def __init__(self, role: str) -> None:
        super().__init__(daemon=True)
        self.role, self.killed = role, threading.Event()
        self.before = evaluation_children()  # children of earlier evaluations may still be on their way out
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for pid in evaluation_children() - self.before:
                try:  # a child's standard output is its role's file from its first moments on
                    if os.readlink(f"/proc/{pid}/fd/1").endswith(f"{self.role}-output.txt"):
                        os.kill(pid, signal.SIGKILL)
                        self.killed.set()
                        return
                except OSError:
                    continue
            time.sleep(0.005)


@pytest.mark.parametrize("role", ["candidate", "reference"])
def test_a_worker_killed_from_outside_is_the_evaluators_failure(role: str) -> None:
    # a hanging candidate stays alive until killed; a fresh honest one builds long enough to kill the reference
    code = relu_candidate(HANGING_LOOP) if role == "candidate" else relu_candidate(HONEST_LOOP, fresh=True)
    evaluator = quick_evaluator()
    killer = Killer(role)
    with pytest.raises(EvaluatorError, match="killed by SIGKILL") as raised:
        evaluator.evaluate(RELU, code)
    assert killer.killed.is_set() and raised.value.retryable
    assert evaluator.evaluate(RELU, relu_candidate(HONEST_LOOP)).status == "correct"  # and it works again


def test_a_crash_the_kernel_caused_stays_the_candidates_failure() -> None:
    result = quick_evaluator().evaluate(RELU, relu_candidate("std::memset((void*)1, 0, 64);"))
    assert result.status == "error" and "killed by SIGSEGV" in result.message and not result.correct


def test_a_missing_compiler_is_not_the_candidates_failure(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-g++"
    with pytest.raises(EvaluatorError, match="no-such-g") as raised:
        quick_evaluator(compiler=str(missing)).evaluate(RELU, relu_candidate(HONEST_LOOP))
    assert not raised.value.retryable and "Fix" in str(raised.value)

    log = tmp_path / "calls.log"
    wrapper = tmp_path / "my-g++"  # a compiler of one's own: a script that logs each call, then runs g++
    wrapper.write_text(f'#!/bin/sh\necho called >> "{log}"\nexec g++ "$@"\n')
    wrapper.chmod(0o755)
    result = quick_evaluator(compiler=str(wrapper)).evaluate(RELU, relu_candidate(HONEST_LOOP, fresh=True))
    assert result.status == "correct", result.reason
    assert log.read_text() == "called\n"


def test_a_full_disk_is_not_the_candidates_failure() -> None:
    with pytest.raises(EvaluatorError, match="MiB free") as raised:  # more room than any disk has
        quick_evaluator(min_free_bytes=1 << 60).evaluate(RELU, relu_candidate(HONEST_LOOP))
    assert not raised.value.retryable


def kernel_env(evaluator: KernelEvaluator) -> Any:
    return horizongym.make("KernelGen-v0", tasks=[RELU], split="all", evaluator=evaluator)


class SubmitsThenFinishes(ScriptedPolicy):
    """Each attempt: submits the next of ``codes``, then finishes."""

    name = "submits"

    def __init__(self, codes: list[str]) -> None:
        self.codes = list(codes)

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        if any(m["role"] == "assistant" for m in messages):
            return Action(tool_calls=[ToolCall("finish", {})])
        return Action(tool_calls=[ToolCall("submit", {"code": self.codes.pop(0)})])


def test_an_evaluation_killed_from_outside_is_retried_and_never_scored() -> None:
    evaluator = quick_evaluator()
    policy = SubmitsThenFinishes([relu_candidate(HANGING_LOOP), relu_candidate(HONEST_LOOP)])
    killer = Killer("candidate")
    recipe = EnvRecipe("KernelGen-v0", {"split": "all"})
    with RolloutEngine(recipe, policy, concurrency=1, progress=False, env_factory=lambda: kernel_env(evaluator)) as run:
        (episode,) = run.run_sync(1)
    assert killer.killed.is_set()
    assert episode.outcome == "completed" and episode.success is True and episode.total_reward > 0
    (failed,) = episode.attempts
    assert failed.termination_reason == "infra_error" and "SIGKILL" in (failed.detail or "")
    assert failed.turns == 1


def test_an_evaluator_that_cannot_work_here_ends_the_episode_unscored(tmp_path: Path) -> None:
    evaluator = quick_evaluator(compiler=str(tmp_path / "no-such-g++"))
    env = kernel_env(evaluator)
    env.reset(seed=0)
    call = {"name": "submit", "arguments": {"code": relu_candidate(HONEST_LOOP)}}
    observation, reward, terminated, truncated, info = env.step(f"<tool_call>{json.dumps(call)}</tool_call>")
    assert truncated and not terminated and reward == 0.0  # unscored: no correctness, no speedup
    assert info["termination_reason"] == "infra_error" and info["retryable"] is False
    assert "no-such-g" in info["termination_detail"] and "no-such-g" in observation
    env.close()

    recipe = EnvRecipe("KernelGen-v0", {"split": "all"})
    policy = SubmitsThenFinishes([relu_candidate(HONEST_LOOP)] * 3)
    with RolloutEngine(recipe, policy, concurrency=1, progress=False, env_factory=lambda: kernel_env(evaluator)) as run:
        (episode,) = run.run_sync(1)
    assert episode.outcome == "infra_error" and not episode.retryable and not episode.attempts
    assert episode.termination_detail is not None and "no-such-g" in episode.termination_detail
    assert episode.total_reward == 0.0
    assert len(policy.codes) == 2  # played once: another try could not help


def test_kernels_eval_says_in_one_line_that_the_evaluator_cannot_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "relu.py"
    candidate.write_text(relu_candidate(HONEST_LOOP))
    monkeypatch.setenv("HORIZONGYM_CXX", str(tmp_path / "no-such-g++"))
    parser = argparse.ArgumentParser()
    add_kernel_commands(parser.add_subparsers())
    args = parser.parse_args(["kernels", "eval", "relu", str(candidate), "--backend", "cpu"])
    with pytest.raises(SystemExit) as exited:
        args.run(args)
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("horizongym: error: the evaluator failed") and "no-such-g++" in line and "Fix" in line
