"""KernelGen-v0: write a faster kernel for a PyTorch operator; each submission is built, checked and timed.

Each episode is one task (a KernelBench-style reference ``Model``). The agent submits a Python
file defining ``ModelNew`` whose work is done by a kernel built with
:func:`horizongym.envs.kernels.api.load_kernel` — CUDA on a GPU, C++ on a CPU-only machine, so
the same environment trains and tests anywhere. A submission is the ``submit`` tool's ``code``
argument, or simply a reply holding one ```` ```python ```` block. Every submission is
evaluated in its own process (:mod:`horizongym.envs.kernels.evaluator`): static rule checks,
build (errors come back trimmed), correctness on fresh private inputs (the worst mismatch
comes back), timing against PyTorch eager; the observation says all of it and the agent may
try again until ``max_turns`` submissions are used or it calls ``finish``.

A failure of the evaluator itself (:class:`~horizongym.envs.kernels.evaluator.EvaluatorError`:
a worker killed from outside, no compiler, a full disk) is never scored: a retryable one ends
the episode as truncated with reason ``infra_error`` (the rollout engine plays it again on a
fresh env); one that another try cannot fix says so (``info["retryable"]`` False: not retried).

Reward components per turn follow the chosen scheme (:mod:`horizongym.envs.kernels.rewards`):
``kevin`` (``correct``, ``speedup``) or ``milestones`` (``milestone``); a malformed action costs
``format``. When the episode ends, ``info["turn_returns"]`` holds each turn's discounted credit
and ``info["best_speedup"]`` the best correct speedup (``success`` = some submission correct).
A replay of an episode compares the calls and each evaluation's status, correctness, rule
violations and backend, not its timings or the rewards made of them (a speedup is measured anew).

Tasks (``tasks=``, see :mod:`horizongym.envs.tasklist` for ``split`` and ``task_order``):
``"catalog"`` (the built-in operators, the default), ``"kernelbench:PATH"`` (see
:mod:`horizongym.envs.kernels.data`) or a list of tasks; ``levels=`` keeps only those levels.

Forking (:mod:`horizongym.envs.snapshot`): an episode's state is its :class:`KernelEpisode` (the
task, each turn's reward, each evaluation), which a snapshot copies. The evaluator belongs to the
env and is shared, never copied: it keeps nothing per episode (each evaluation runs in fresh
processes; built kernels are cached on disk by their source's hash, the same for every episode),
and the private inputs it checks with are drawn anew for every submission, a branch's too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, SupportsFloat

from horizongym.envs.kernels.api import candidate_file
from horizongym.envs.kernels.data import load_kernel_tasks
from horizongym.envs.kernels.evaluator import EvalResult, EvaluatorError, KernelEvaluator
from horizongym.envs.kernels.feedback import describe
from horizongym.envs.kernels.rewards import make_scheme
from horizongym.envs.kernels.types import KernelTask
from horizongym.envs.tasklist import TaskListEnv
from horizongym.tools import NoToolCall, tool

_CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)

EXAMPLE_MODEL = """

class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        lib.scale(x, y, 2.0, x.numel())
        return y
"""
EXAMPLE_KERNELS = {
    "cpp": """#include <cstdint>
extern "C" void scale(const float* __restrict__ x, float* __restrict__ y, double factor, int64_t n) {
    #pragma omp parallel for simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * (float)factor;
}""",
    "cuda": """#include <cstdint>
__global__ void scale_kernel(const float* x, float* y, float factor, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] * factor;
}
extern "C" void scale(const float* x, float* y, double factor, int64_t n) {
    scale_kernel<<<(n + 255) / 256, 256>>>(x, y, (float)factor, n);
}""",
}


def example_candidate(language: str) -> str:
    """A complete, rule-abiding candidate file (for an operator y = 2x) in ``language``."""
    return candidate_file(EXAMPLE_KERNELS[language], EXAMPLE_MODEL, language)


RULES = (
    "Rules (checked; a submission that breaks one scores 0): ModelNew takes the same constructor arguments as "
    "Model and creates its parameters the same way, in the same order (they are compared under the same seed); "
    "import only torch, torch.nn, math and horizongym.envs.kernels.api; in forward use PyTorch only to allocate "
    "and reshape (torch.empty, empty_like, zeros, view, reshape, contiguous) and do every computation in your "
    "kernel; no try/except, no torch.nn.functional, no .numpy()/.item(), no state kept between calls, never "
    "return or modify an input. Outputs must match the reference within 1e-4 (fp32) on fresh random inputs."
)


@dataclass
class KernelEpisode:
    """Everything this env remembers about the running episode."""

    task: KernelTask
    rewards: list[float] = field(default_factory=list)
    """Every turn's reward, submissions or not."""
    results: list[EvalResult] = field(default_factory=list)

    @property
    def best_speedup(self) -> float | None:
        speedups = [r.speedup for r in self.results if r.speedup is not None]
        return max(speedups) if speedups else None


class KernelGenEnv(TaskListEnv[KernelTask, KernelEpisode]):
    """Write a faster kernel (CUDA or C++) for a PyTorch operator; rewarded by building, checking and timing it."""

    description = "Write a faster CUDA/C++ kernel for a PyTorch operator; rewarded by compiling, checking and timing."
    blocking = True
    max_turns = 4
    replay_compares: ClassVar[tuple[str, ...]] = (
        "tool_calls",
        "error",
        "evaluation.status",
        "evaluation.correct",
        "evaluation.violations",
        "evaluation.backend",
    )

    def __init__(
        self,
        *,
        tasks: str | list[KernelTask] = "catalog",
        split: str = "train",
        task_order: str = "random",
        levels: list[int] | None = None,
        backend: str = "auto",
        reward: str = "kevin",
        gamma: float | None = None,
        trials: int = 200,
        checks: int = 5,
        threads: int = 1,
        timeout_s: float = 180.0,
        evaluator: KernelEvaluator | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(tasks=load_kernel_tasks(tasks, levels), split=split, task_order=task_order, **kwargs)
        self.evaluator = evaluator or KernelEvaluator(
            backend, trials=trials, checks=checks, threads=threads, timeout_s=timeout_s
        )
        self.scheme = make_scheme(reward, gamma)

    # ----- task ------------------------------------------------------------------------
    def task_id(self, task: KernelTask) -> str:
        return task.id

    def start_episode(self, task: KernelTask) -> tuple[KernelEpisode, str]:
        return KernelEpisode(task), self.prompt(task)

    def prompt(self, task: KernelTask) -> str:
        evaluator = self.evaluator
        cuda = evaluator.language == "cuda"
        language = (
            'CUDA (built by nvcc; an extern "C" host function launches your __global__ kernels on the default stream)'
            if cuda
            else f"C++ (built by g++ -O3 -march=native -fopenmp; timed with {evaluator.threads} thread(s))"
        )
        if evaluator.backend == "compile-only":
            language += "; this machine has no GPU, so submissions are only built, not run"
        example = example_candidate(evaluator.language)
        return (
            f"Write a faster kernel for this PyTorch operator.\n\n"
            f"Task: {task.id} (level {task.level}){' — ' + task.description if task.description else ''}\n"
            f"Backend: {evaluator.backend}. Language: {evaluator.language} — {language}.\n\n"
            f"Reference:\n```python\n{task.render(evaluator.device)}```\n\n"
            "Write a complete Python file that defines class ModelNew(nn.Module), a drop-in replacement for Model "
            'whose work is done by your kernel. Build the kernel with load_kernel: each extern "C" void function '
            "of the source becomes callable; tensors are passed as data pointers, Python ints as int64_t, floats "
            f"as double. For example:\n```python\n{example}```\n\n{RULES}\n\n"
            f"Submit the whole file with the submit tool (or reply with a single ```python block). You have "
            f"{self.max_turns} submissions; each is built, checked on {evaluator.checks} fresh random inputs and "
            "timed against the reference (median of many runs). Call finish when you are done."
        )

    def on_text(self, text: str) -> str:
        blocks = _CODE_BLOCK.findall(text)
        if len(blocks) == 1:
            return self.submit(blocks[0])
        if len(blocks) > 1:
            raise NoToolCall("your reply holds several code blocks; submit exactly one complete file.")
        raise NoToolCall(
            "your reply holds no submission. Call submit with the complete Python file defining ModelNew "
            "(or reply with one ```python block), or call finish to end."
        )

    # ----- tools -------------------------------------------------------------------------
    @tool
    def submit(self, code: str) -> str:
        """Build, check and time a complete Python file that defines ModelNew.

        Args:
            code: the whole file: imports, kernel source given to load_kernel, and class ModelNew.
        """
        episode = self.episode
        try:
            result = self.evaluator.evaluate(episode.task, code)
        except EvaluatorError as error:
            return self._evaluator_failed(error)
        components = self.scheme.components(result)
        for name, value in components.items():
            self.add_reward(name, value)
        episode.results.append(result)
        self.set_info("evaluation", evaluation_info(result))
        self.end_turn()
        turns_left = self.max_turns - self.state.turn
        return describe(result, components, threads=self.evaluator.threads, turns_left=turns_left)

    @tool
    def finish(self) -> str:
        """End the episode; the submissions so far are final."""
        self._close_episode()
        self.end_episode(success=self.state.success)
        return "Episode finished."

    def on_turn_limit(self) -> None:
        self._close_episode()

    def _evaluator_failed(self, error: EvaluatorError) -> str:
        """End the episode on the evaluator's own failure, unscored (see the module docstring)."""
        detail = f"the kernel evaluator failed: {error}"
        self.truncate_episode("infra_error", detail, retryable=error.retryable)
        self.end_turn()
        return f"The episode ends: {detail}"

    def _close_episode(self) -> None:
        self.state.success = any(r.correct for r in self.episode.results)

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        episode = self.episode
        episode.rewards.append(float(reward))
        if terminated or truncated:
            info["turn_returns"] = self.scheme.returns(episode.rewards)
            info["best_speedup"] = episode.best_speedup
        return observation, reward, terminated, truncated, info


def evaluation_info(result: EvalResult) -> dict[str, Any]:
    """The evaluation, as plain data for ``info`` and trajectories."""
    timing = result.timing
    return {
        "status": result.status,
        "reason": result.reason,
        "violations": [v.code for v in result.violations],
        "correct": result.correct,
        "speedup": result.speedup,
        "reference_ms": timing.reference_ms if timing else None,
        "candidate_ms": timing.candidate_ms if timing else None,
        "torch_compile_ms": timing.torch_compile_ms if timing else None,
        "max_abs_error": result.max_abs_error,
        "suspicious": result.suspicious,
        "backend": result.backend,
        "seconds": round(result.seconds, 3),
    }
