"""Evaluate a candidate kernel file against its task: static checks, build, correctness, timing.

Each evaluation runs in its own child process (:mod:`horizongym.envs.kernels.worker`), forked
from a server process that already imported ``torch``, so a crash, a hang or a memory bomb
in the candidate ends that child only: the parent kills its whole process group at the
deadline. The parent keeps everything that decides the reward: it draws the private seeds,
receives the reference outputs before the candidate is loaded, compares, and computes the
speedup. A speedup above ``reverify_above`` (10×) is re-checked on fresh inputs and flagged.

Backends: ``cuda`` (CUDA kernels, timed with events on the GPU), ``cpu`` (C++ kernels built
by g++ with OpenMP, timed on the CPU with the same protocol), ``compile-only`` (CUDA kernels
built by nvcc on a machine with no GPU: only the build is checked). ``auto`` picks ``cuda``
when a GPU is visible, else ``cpu``.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import random
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from horizongym.envs.kernels.static_check import Violation, check_source
from horizongym.envs.kernels.types import KernelTask
from horizongym.envs.kernels.worker import EvalRequest
from horizongym.envs.kernels.zygote import Zygote
from horizongym.envs.search.cache import cache_dir

BACKENDS = ("auto", "cuda", "cpu", "compile-only")
Status = Literal["correct", "incorrect", "hack", "compile_error", "error", "timeout", "compiled"]
FORMAT_CODES = frozenset({"syntax_error", "missing_model_new"})
TOLERANCES = {"float32": 1e-4, "float64": 1e-6, "float16": 1e-2, "bfloat16": 1e-2}
"""Absolute and relative tolerance by output dtype; integer and bool outputs must match exactly."""

_ZYGOTE = Zygote()
atexit.register(_ZYGOTE.close)


def resolve_backend(backend: str = "auto") -> str:
    """``auto`` → ``cuda`` if a GPU is visible, else ``cpu``; other names are checked and returned."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def backend_language(backend: str) -> str:
    """The kernel language a backend expects: ``cpp`` on ``cpu``, ``cuda`` otherwise."""
    return "cpp" if resolve_backend(backend) == "cpu" else "cuda"


def cpu_l2_bytes(default: int = 4 << 20) -> int:
    """The per-core L2 cache size from sysfs (the CPU cache flush reads twice this much)."""
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(root.glob("index*")):
        with contextlib.suppress(OSError, ValueError):
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip().upper()
                multiplier = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
                return int(size.rstrip("KM")) * multiplier
    return default


@dataclass(frozen=True)
class Timing:
    """Median milliseconds per call, over ``trials`` alternating timed calls."""

    reference_ms: float
    candidate_ms: float
    trials: int
    torch_compile_ms: float | None = None
    candidate_spread: float = 0.0
    """Coefficient of variation of the candidate's per-trial times (noise of this measurement)."""

    @property
    def speedup(self) -> float:
        return self.reference_ms / self.candidate_ms if self.candidate_ms > 0 else math.inf


@dataclass
class EvalResult:
    """What one evaluation found. ``status`` decides the reward; the rest explains it."""

    status: Status
    violations: list[Violation] = field(default_factory=list)
    message: str = ""
    max_abs_error: float | None = None
    timing: Timing | None = None
    suspicious: bool = False
    seconds: float = 0.0
    backend: str = "cpu"

    @property
    def compiled(self) -> bool:
        return self.status not in ("compile_error",) and not any(v.code in FORMAT_CODES for v in self.violations)

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    @property
    def speedup(self) -> float | None:
        return self.timing.speedup if self.timing and self.correct else None

    @property
    def reason(self) -> str:
        """One line: why this result scores what it scores."""
        if self.violations:
            return "; ".join(str(v) for v in self.violations[:3])
        return self.message.splitlines()[0] if self.message else self.status


def compare(expected: np.ndarray, actual: np.ndarray, label: str) -> tuple[bool, float, str]:
    """(match, max abs error, description of the worst element) under the dtype's tolerance."""
    with np.errstate(invalid="ignore", over="ignore"):  # garbage outputs hold signalling NaNs and huge values
        return _compare(expected, actual, label)


def _compare(expected: np.ndarray, actual: np.ndarray, label: str) -> tuple[bool, float, str]:
    if expected.shape != actual.shape:
        return False, math.inf, f"{label}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    if expected.dtype != actual.dtype:
        return False, math.inf, f"{label}: dtype {actual.dtype}, expected {expected.dtype}"
    if expected.size == 0:
        return True, 0.0, ""
    if expected.dtype.kind in "biu":
        diff = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
        tol = np.zeros_like(diff)
    else:
        tolerance = TOLERANCES.get(str(expected.dtype), 1e-4)
        exp64, act64 = expected.astype(np.float64), actual.astype(np.float64)
        both_nan = np.isnan(exp64) & np.isnan(act64)
        diff = np.where(both_nan, 0.0, np.abs(exp64 - act64))
        diff = np.where(np.isnan(diff), np.inf, diff)
        tol = tolerance + tolerance * np.abs(exp64)
    worst = int(np.argmax(diff - tol))
    max_error = float(diff.max())
    if bool((diff <= tol).all()):
        return True, max_error, ""
    index = tuple(int(i) for i in np.unravel_index(worst, expected.shape))
    detail = (
        f"{label}: max abs error {max_error:.3g}; at index {list(index)} expected {float(expected[index]):.6g}, "
        f"got {float(actual[index]):.6g} ({int((diff > tol).sum())} of {expected.size} elements off)"
    )
    return False, max_error, detail


class KernelEvaluator:
    """Evaluates candidate files for tasks on one backend; thread-safe, one child per evaluation."""

    def __init__(
        self,
        backend: str = "auto",
        *,
        trials: int = 200,
        warmup: int = 5,
        checks: int = 5,
        threads: int = 1,
        timeout_s: float = 180.0,
        memory_limit_bytes: int = 4 << 30,
        flush_bytes: int | None = None,
        time_torch_compile: bool | None = None,
        reverify_above: float = 10.0,
        seed: int | None = None,
    ) -> None:
        if trials < 1 or checks < 1:
            raise ValueError("trials and checks must be at least 1")
        self.backend = resolve_backend(backend)
        self.device = "cuda" if self.backend == "cuda" else "cpu"
        self.language = backend_language(self.backend)
        self.trials, self.warmup, self.checks, self.threads = trials, warmup, checks, threads
        self.timeout_s, self.memory_limit_bytes = timeout_s, memory_limit_bytes
        default_flush = 256 << 20 if self.device == "cuda" else 2 * cpu_l2_bytes()
        self.flush_bytes = flush_bytes if flush_bytes is not None else default_flush
        self.time_torch_compile = self.device == "cuda" if time_torch_compile is None else time_torch_compile
        self.reverify_above = reverify_above
        self._rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()
        self._rng_lock = threading.Lock()

    def _seeds(self, count: int) -> list[int]:
        with self._rng_lock:
            return [self._rng.randrange(1, 2**31 - 1) for _ in range(count)]

    def request(self, task: KernelTask, candidate_source: str) -> EvalRequest:
        """The child's instructions for one evaluation, with freshly drawn private seeds."""
        seeds = self._seeds(self.checks + 6)
        return EvalRequest(
            reference_source=task.render(self.device),
            candidate_source=candidate_source,
            device=self.device,
            language=self.language,
            compile_only=self.backend == "compile-only",
            seeds=tuple(seeds[: self.checks]),
            final_seed=seeds[self.checks],
            timing_seeds=tuple(seeds[self.checks + 1 : self.checks + 5]),
            init_seed=seeds[self.checks + 5],
            trials=self.trials,
            warmup=self.warmup,
            threads=self.threads,
            flush_bytes=self.flush_bytes,
            memory_limit_bytes=self.memory_limit_bytes,
            time_torch_compile=self.time_torch_compile,
            cache_dir=str(cache_dir()),
        )

    def evaluate(self, task: KernelTask, candidate_source: str) -> EvalResult:
        """Evaluate once; a correct result faster than ``reverify_above`` is re-run on fresh inputs."""
        started = time.perf_counter()
        violations = check_source(candidate_source)
        if violations:
            status: Status = "error" if all(v.code in FORMAT_CODES for v in violations) else "hack"
            return EvalResult(status, violations, seconds=time.perf_counter() - started, backend=self.backend)
        result = self._run(self.request(task, candidate_source))
        if result.correct and result.timing is not None and result.timing.speedup > self.reverify_above:
            again = self._run(self.request(task, candidate_source))
            if not again.correct:
                again.suspicious = True
                again.message = f"a {result.timing.speedup:.1f}x speedup did not hold up on fresh inputs: " + (
                    again.message or again.reason
                )
                result = again
            result.suspicious = True
        result.seconds = time.perf_counter() - started
        return result

    def _run(self, request: EvalRequest) -> EvalResult:
        pid, receiver = _ZYGOTE.start_child(request)
        collected = _Collected()
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    collected.ending = ("timeout", f"no result within {self.timeout_s:g} s (during {collected.stage})")
                    break
                if not receiver.poll(remaining):
                    continue
                try:
                    kind, payload = receiver.recv()
                except (EOFError, OSError):
                    collected.ending = ("error", _death_message(collected.stage))
                    break
                if collected.take(kind, payload):
                    break
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            receiver.close()
        return collected.result(request, self.backend)


def _death_message(stage: str) -> str:
    return f"the evaluation process died during {stage} (a crash, an abort, or its memory limit)"


class _Collected:
    """The messages of one child, folded into an :class:`EvalResult`."""

    def __init__(self) -> None:
        self.stage = "reference"
        self.expected: dict[int, list[np.ndarray]] = {}
        self.checked: list[tuple[int, list[np.ndarray], list[tuple[str, str]]]] = []
        self.timed: dict[str, Any] | None = None
        self.ending: tuple[Status, str] | None = None
        self.compiled = False

    def take(self, kind: str, payload: dict[str, Any]) -> bool:
        """Record one message; True when the child has nothing more to say."""
        if kind == "expected":
            self.expected, self.stage = payload["outputs"], "candidate load and build"
        elif kind == "compiled":
            self.compiled, self.stage = True, "construction and correctness checks"
        elif kind == "checked":
            self.checked.append((payload["seed"], payload["outputs"], payload["violations"]))
        elif kind == "timed":
            self.timed, self.stage = payload, "timing"
        elif kind == "compile_error":
            self.ending = ("compile_error", payload["message"])
            return True
        elif kind == "error":
            self.ending = ("error", f"error during {payload['stage']}:\n{payload['message']}")
            return True
        elif kind == "done":
            return True
        if kind == "timed":
            self.stage = "final check"
        return False

    def result(self, request: EvalRequest, backend: str) -> EvalResult:
        violations: list[Violation] = []
        seen: set[str] = set()
        all_violations = [v for _, _, vs in self.checked for v in vs]
        if self.timed:
            all_violations += self.timed["violations"]
        for code, detail in all_violations:
            if code not in seen:
                seen.add(code)
                violations.append(Violation(code, detail))
        if violations:
            return EvalResult("hack", violations, backend=backend)
        if self.ending is not None:
            return EvalResult(self.ending[0], message=self.ending[1], backend=backend)
        if request.compile_only:
            return EvalResult("compiled", message="built; cannot run without a GPU", backend=backend)
        worst_error, problems = 0.0, []
        checks = [(seed, outputs) for seed, outputs, _ in self.checked]
        if self.timed is not None:
            checks.append((request.final_seed, self.timed["final_outputs"]))
        if len(checks) < len(request.seeds) + 1:
            return EvalResult("error", message="the evaluation ended before every check ran", backend=backend)
        for number, (seed, outputs) in enumerate(checks, start=1):
            expected = self.expected[seed]
            if len(outputs) != len(expected):
                problems.append(f"check {number}: {len(outputs)} outputs, expected {len(expected)}")
                worst_error = math.inf
                continue
            for position, (want, got) in enumerate(zip(expected, outputs, strict=True)):
                label = f"check {number}, output {position}"
                ok, error, detail = compare(want, got, label)
                worst_error = max(worst_error, error)
                if not ok:
                    problems.append(detail)
        if problems:
            message = "\n".join(problems[:3])
            return EvalResult("incorrect", message=message, max_abs_error=worst_error, backend=backend)
        assert self.timed is not None
        times = self.timed["times"]
        candidate_times = times["candidate"]
        spread = statistics.pstdev(candidate_times) / statistics.fmean(candidate_times) if candidate_times else 0.0
        timing = Timing(
            reference_ms=statistics.median(times["reference"]),
            candidate_ms=statistics.median(candidate_times),
            trials=len(candidate_times),
            torch_compile_ms=statistics.median(times["torch_compile"]) if "torch_compile" in times else None,
            candidate_spread=spread,
        )
        return EvalResult("correct", max_abs_error=worst_error, timing=timing, backend=backend)
