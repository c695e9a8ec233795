"""KernelGen-v0 end to end: real builds, the isolated evaluator, the exploit corpus, the env and its expert."""

from __future__ import annotations

import json
import time

import pytest
import torch

import horizongym
from horizongym.agents import expert_for
from horizongym.agents.experts.kernel_solutions import SOLUTIONS
from horizongym.envs.kernels.catalog import get_task
from horizongym.envs.kernels.evaluator import KernelEvaluator
from horizongym.envs.kernels.exploits import EXPLOITS
from horizongym.training.rollouts import EnvRecipe, RolloutEngine

RELU_TASK = get_task("relu")


def relu_candidate(body: str, *, kernel: str = "y[i] = x[i] > 0.f ? x[i] : 0.f;") -> str:
    return f'''
import torch
import torch.nn as nn
from horizongym.envs.kernels.api import load_kernel

lib = load_kernel(r"""
#include <cstdint>
#include <cstdlib>
#include <cstring>
extern "C" void relu(const float* x, float* y, int64_t n) {{
    for (int64_t i = 0; i < n; ++i) {{ {kernel} }}
}}
""")


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
{body}
'''


FORWARD = "        y = torch.empty_like(x)\n        lib.relu(x, y, x.numel())\n        return y"
HONEST = relu_candidate(FORWARD)


@pytest.fixture(scope="module")
def evaluator() -> KernelEvaluator:
    return KernelEvaluator("cpu", trials=10, warmup=2, timeout_s=60)


def test_an_honest_kernel_is_correct_and_timed(evaluator: KernelEvaluator) -> None:
    result = evaluator.evaluate(RELU_TASK, HONEST)
    assert result.status == "correct", result.reason
    assert result.timing is not None and result.timing.trials == 10
    assert result.timing.reference_ms > 0 and result.timing.candidate_ms > 0
    assert result.speedup == pytest.approx(result.timing.reference_ms / result.timing.candidate_ms)


def test_a_wrong_kernel_reports_where_it_differs(evaluator: KernelEvaluator) -> None:
    result = evaluator.evaluate(RELU_TASK, relu_candidate(FORWARD, kernel="y[i] = x[i];"))
    assert result.status == "incorrect"
    assert "max abs error" in result.message and "at index" in result.message
    assert result.max_abs_error is not None and result.max_abs_error > 0.1


def test_build_errors_come_back_with_the_compiler_message(evaluator: KernelEvaluator) -> None:
    result = evaluator.evaluate(RELU_TASK, HONEST.replace("x[i] > 0.f ?", "x[i] > 0.f ?? "))
    assert result.status == "compile_error" and not result.compiled
    assert "kernel.cpp" in result.message and "error" in result.message


def test_a_python_error_names_the_candidate_line(evaluator: KernelEvaluator) -> None:
    failing = HONEST.replace("lib.relu(x, y, x.numel())", "lib.relu(x, y, x.numel() // 0)")
    result = evaluator.evaluate(RELU_TASK, failing)
    assert result.status == "error" and "ZeroDivisionError" in result.message and "line" in result.message


def test_a_crashing_kernel_ends_only_its_own_process(evaluator: KernelEvaluator) -> None:
    crash = relu_candidate(FORWARD, kernel="std::memset((void*)1, 0, 64);")
    result = evaluator.evaluate(RELU_TASK, crash)
    assert result.status == "error" and "died" in result.message
    assert evaluator.evaluate(RELU_TASK, HONEST).status == "correct"


def test_a_hanging_kernel_is_stopped_at_the_deadline() -> None:
    quick = KernelEvaluator("cpu", trials=5, warmup=1, timeout_s=4)
    hang = relu_candidate(FORWARD, kernel="while (true) { y[0] = x[i]; }")
    started = time.monotonic()
    result = quick.evaluate(RELU_TASK, hang)
    assert result.status == "timeout" and "4 s" in result.message
    assert time.monotonic() - started < 4 + 6  # deadline + build + slack


def test_a_memory_bomb_hits_the_limit() -> None:
    small = KernelEvaluator("cpu", trials=5, warmup=1, timeout_s=60, memory_limit_bytes=512 << 20)
    bomb = relu_candidate(
        FORWARD,
        kernel="char* p = (char*)std::malloc(size_t(8) << 30); if (!p) std::abort(); "
        "std::memset(p, 1, size_t(8) << 30);",
    )
    result = small.evaluate(RELU_TASK, bomb)
    assert result.status == "error"


@pytest.mark.parametrize("exploit", EXPLOITS, ids=[e.name for e in EXPLOITS])
def test_every_exploit_in_the_corpus_scores_zero(evaluator: KernelEvaluator, exploit) -> None:  # type: ignore[no-untyped-def]
    result = evaluator.evaluate(get_task(exploit.task), exploit.source)
    assert not result.correct and result.speedup is None
    found = {v.code for v in result.violations} | {result.status}
    assert found & exploit.caught_by, f"{exploit.name}: {result.status}: {result.reason}"
    assert result.reason


def test_at_least_ten_exploits() -> None:
    assert len(EXPLOITS) >= 10


def test_cuda_syntax_error_shows_nvcc_output_on_a_cpu_machine() -> None:
    env = horizongym.make("KernelGen-v0", backend="compile-only", split="all")
    observation, _ = env.reset(seed=0, options={"task_id": RELU_TASK.id})
    assert "Language: cuda" in observation
    code = HONEST.replace('extern "C" void relu', '__global__ void bad(float* y) { y[0] = }\nextern "C" void relu')
    observation, reward, *_, info = env.step("```python\n" + code + "\n```")
    assert "BUILD FAILED" in observation and "kernel.cu" in observation and "error" in observation
    assert info["evaluation"]["status"] == "compile_error" and reward == 0.0


def test_compile_only_backend_builds_the_cuda_experts() -> None:
    evaluator = KernelEvaluator("compile-only")
    cuda = {name: files["cuda"] for name, files in SOLUTIONS.items() if "cuda" in files}
    assert len(cuda) >= 4
    for name, code in cuda.items():
        result = evaluator.evaluate(get_task(name), code)
        assert result.status == "compiled", f"{name}: {result.reason}"


def test_every_cpp_expert_passes_the_evaluator(evaluator: KernelEvaluator) -> None:
    cpp = {name: files["cpp"] for name, files in SOLUTIONS.items() if "cpp" in files}
    assert len(cpp) >= 10
    for name, code in cpp.items():
        result = evaluator.evaluate(get_task(name), code)
        assert result.status == "correct", f"{name}: {result.reason}"


def test_expert_episode_through_the_env() -> None:
    env = horizongym.make(
        "KernelGen-v0", backend="cpu", trials=10, reward="milestones", split="all"
    )  # CPU: no torch.compile timing, so 1 or 2
    expert = expert_for("KernelGen-v0")
    observation, info = env.reset(seed=0, options={"task_id": get_task("softmax").id})
    messages = [{"role": "user", "content": observation}]
    action = expert.decide(messages, info["tools"], None)
    assert action.tool_calls[0].name == "submit"
    call = {"name": "submit", "arguments": {"code": action.tool_calls[0].arguments["code"]}}
    observation, submitted, terminated, _, info = env.step(f"<tool_call>{json.dumps(call)}</tool_call>")
    assert "Result: CORRECT" in observation and "| your kernel |" in observation
    assert submitted in (1.0, 2.0) and not terminated and info["evaluation"]["correct"]
    messages.append({"role": "tool", "content": observation})
    assert expert.decide(messages, info["tools"], None).tool_calls[0].name == "finish"
    _, reward, terminated, _, info = env.step('<tool_call>{"name": "finish", "arguments": {}}</tool_call>')
    assert terminated and info["success"] is True and reward == 0.0
    assert info["turn_returns"] == [submitted, 0.0]  # milestones: each turn on its own (γ = 0)


def test_turn_limit_ends_the_episode_with_discounted_returns() -> None:
    env = horizongym.make("KernelGen-v0", backend="cpu", trials=5, max_turns=2, split="all")
    env.reset(seed=0, options={"task_id": RELU_TASK.id})
    observation, _, _, _, info = env.step("no code here")
    assert "no submission" in observation and info["reward_components"] == {"format": -0.1}
    observation, reward, terminated, truncated, info = env.step(f"```python\n{HONEST}```")
    assert truncated and not terminated and info["success"] is True
    assert info["turn_returns"] == pytest.approx([-0.1 + 0.4 * float(reward), reward])


def test_rollout_engine_runs_kernel_episodes_with_the_expert(tmp_path) -> None:  # type: ignore[no-untyped-def]
    recipe = EnvRecipe("KernelGen-v0", {"backend": "cpu", "trials": 5, "levels": [2]})
    with RolloutEngine(recipe, expert_for("KernelGen-v0"), concurrency=2, progress=False) as engine:
        episodes = engine.run_sync(2)
    assert len(episodes) == 2
    assert all(e.termination_reason == "terminated" for e in episodes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the cuda backend needs a GPU")
def test_cuda_backend_runs_the_cuda_experts_on_a_gpu() -> None:
    evaluator = KernelEvaluator("cuda", trials=20)
    for name, files in SOLUTIONS.items():
        if "cuda" in files:
            result = evaluator.evaluate(get_task(name), files["cuda"])
            assert result.status == "correct", f"{name}: {result.reason}"
    for exploit in EXPLOITS:
        assert not evaluator.evaluate(get_task(exploit.task), exploit.source).correct


def test_the_prompts_example_candidates_are_valid() -> None:
    from horizongym.envs.kernels.env import example_candidate
    from horizongym.envs.kernels.types import KernelTask

    double = KernelTask(
        "double",
        1,
        "class Model(nn.Module):\n    def forward(self, x):\n        return 2 * x\n\n\n"
        "def get_inputs():\n    return [torch.randn(N)]\n\n\ndef get_init_inputs():\n    return []\n",
        {"cpu": {"N": 4096}},
    )
    assert KernelEvaluator("cpu", trials=5).evaluate(double, example_candidate("cpp")).status == "correct"
    assert KernelEvaluator("compile-only").evaluate(double, example_candidate("cuda")).status == "compiled"
