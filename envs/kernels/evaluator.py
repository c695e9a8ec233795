"""Evaluate a candidate kernel file against its task: static checks, build, correctness, timing.

Each evaluation runs two child processes (:mod:`horizongym.envs.kernels.worker`), forked from
a server process that already imported ``torch``: a trusted one for the reference and an
untrusted one for the candidate, so a crash, a hang or a memory bomb in the candidate ends its
own process only (the parent kills both process groups at the deadline), and the candidate's
process never holds a reference output. The parent keeps everything that decides the reward:
it draws the private seeds, compares every output it asks for with the reference's, decides at
random which timed calls to check, and computes the speedup from both children's timings,
taken in alternating order. Nothing a child sends is unpickled (:mod:`~horizongym.envs.kernels.protocol`);
a malformed message from the candidate counts as tampering. A speedup above
``reverify_above`` (10×) is re-checked on fresh inputs, flagged, and rewarded at most at 10×.

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
import shutil
import signal
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from horizongym.cache import cache_dir
from horizongym.envs.kernels import protocol
from horizongym.envs.kernels.static_check import Violation, check_source
from horizongym.envs.kernels.types import KernelTask
from horizongym.envs.kernels.worker import ChildRequest
from horizongym.envs.kernels.zygote import Zygote

BACKENDS = ("auto", "cuda", "cpu", "compile-only")
Status = Literal["correct", "incorrect", "hack", "compile_error", "error", "timeout", "compiled"]
FORMAT_CODES = frozenset({"syntax_error", "missing_model_new"})
SPEEDUP_CAP = 10.0
"""Speedups above this are re-checked on fresh inputs, flagged, and rewarded at most at this value."""
CHECK_FRACTION = 0.25
"""The share of timed candidate calls whose output is checked (chosen at random, after the call)."""
SPOT_FRACTION = 0.1
"""The share of timing rounds that add an untimed candidate call under the operator guard."""
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
    def rewarded_speedup(self) -> float | None:
        """The speedup a reward may use: capped at ``SPEEDUP_CAP`` when it was flagged as suspicious."""
        speedup = self.speedup
        return min(speedup, SPEEDUP_CAP) if speedup is not None and self.suspicious else speedup

    @property
    def reason(self) -> str:
        """One line: why this result scores what it scores."""
        if self.violations:
            return "; ".join(str(v) for v in self.violations[:3])
        return self.message.splitlines()[0] if self.message else self.status


def compare(expected: np.ndarray, actual: np.ndarray, label: str, dtype: str = "") -> tuple[bool, float, str]:
    """(match, max abs error, description of the worst element) under the tolerance of ``dtype``
    (the output's torch dtype name; default: the array's)."""
    with np.errstate(invalid="ignore", over="ignore"):  # garbage outputs hold signalling NaNs and huge values
        return _compare(expected, actual, label, dtype or str(expected.dtype))


def _compare(expected: np.ndarray, actual: np.ndarray, label: str, dtype: str) -> tuple[bool, float, str]:
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
        tolerance = TOLERANCES.get(dtype, 1e-4)
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
    """Evaluates candidate files for tasks on one backend; thread-safe, two children per evaluation."""

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
        reverify_above: float = SPEEDUP_CAP,
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

    def _draw(self, count: int) -> list[int]:
        with self._rng_lock:
            return [self._rng.randrange(1, 2**31 - 1) for _ in range(count)]

    def plan(self, task: KernelTask, candidate_source: str, folder: str) -> ChildRequest:
        """The reference child's instructions, with freshly drawn private seeds (the candidate's derive from it)."""
        seeds = self._draw(self.checks + 7)
        return ChildRequest(
            role="reference",
            reference_source=task.render(self.device),
            candidate_source=candidate_source,
            folder=folder,
            device=self.device,
            language=self.language,
            compile_only=self.backend == "compile-only",
            seeds=tuple(seeds[: self.checks]),
            final_seed=seeds[self.checks],
            pool_seeds=tuple(seeds[self.checks + 1 : self.checks + 5]),
            init_seed=seeds[self.checks + 5],
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
        result = self._run(task, candidate_source)
        if result.correct and result.timing is not None and result.timing.speedup > self.reverify_above:
            again = self._run(task, candidate_source)
            if not again.correct:
                again.message = f"a {result.timing.speedup:.1f}x speedup did not hold up on fresh inputs: " + (
                    again.message or again.reason
                )
                result = again
            result.suspicious = True
        result.seconds = time.perf_counter() - started
        return result

    def _run(self, task: KernelTask, candidate_source: str) -> EvalResult:
        folder = tempfile.mkdtemp(prefix="hg-eval-")
        session = _Session(self, time.monotonic() + self.timeout_s)
        try:
            return session.run(self.plan(task, candidate_source, folder))
        except _Timeout as timeout:
            message = f"no result within {self.timeout_s:g} s (during {timeout})"
            return EvalResult("timeout", message=message, backend=self.backend)
        except _Died as died:
            return EvalResult("error", message=str(died), backend=self.backend)
        except _Tampered as tampered:
            return EvalResult("hack", [Violation("protocol", str(tampered))], backend=self.backend)
        finally:
            session.close()
            shutil.rmtree(folder, ignore_errors=True)


class _Timeout(Exception):
    """The deadline passed; ``str()`` is the stage."""


class _Died(Exception):
    """A child ended without answering."""


class _Tampered(Exception):
    """The candidate's process sent something outside the protocol."""


class _Session:
    """One evaluation: the two children, the checks, the timing rounds."""

    def __init__(self, evaluator: KernelEvaluator, deadline: float) -> None:
        self.evaluator, self.deadline = evaluator, deadline
        self.children: dict[str, tuple[int, Any]] = {}
        self.rng = random.SystemRandom()
        self.stage = "start"

    # ----- plumbing ----------------------------------------------------------------------
    def start(self, request: ChildRequest) -> None:
        self.children[request.role] = _ZYGOTE.start_child(request)

    def send(self, role: str, kind: str, meta: dict[str, Any] | None = None) -> None:
        try:
            protocol.send(self.children[role][1], kind, meta)
        except OSError:
            raise _Died(f"the {role} process ended during {self.stage}") from None

    def receive(self, role: str, kinds: set[str]) -> protocol.Message:
        conn = self.children[role][1]
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not conn.poll(remaining):
            raise _Timeout(self.stage)
        try:
            message = protocol.receive(conn, kinds | {"error"})
        except EOFError:
            raise _Died(
                f"the {role} process died during {self.stage} (a crash, an abort, or its memory limit)"
            ) from None
        except protocol.ProtocolError as error:
            if role == "candidate":
                raise _Tampered(f"the candidate's process broke the protocol during {self.stage}: {error}") from None
            raise
        if message.kind == "error":
            detail = f"error during {message.meta.get('stage', self.stage)}:\n{message.meta.get('message', '')}"
            raise _Died(detail if role == "candidate" else f"the reference failed: {detail}")
        return message

    def close(self) -> None:
        for pid, conn in self.children.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            conn.close()

    # ----- the evaluation ----------------------------------------------------------------
    def run(self, plan: ChildRequest) -> EvalResult:
        backend = self.evaluator.backend
        candidate_plan = replace(plan, role="candidate")
        if plan.compile_only:
            self.stage = "build"
            self.start(candidate_plan)
            return self.load_candidate() or EvalResult("compiled", message="built; cannot run without a GPU")
        self.stage = "reference"
        self.start(plan)
        expected, specs = self.expected()
        self.stage = "candidate load and build"
        self.start(replace(candidate_plan, output_specs=tuple((tuple(shape), dtype) for shape, dtype in specs)))
        failed = self.load_candidate()
        if failed is not None:
            return failed
        self.stage = "correctness checks"
        checker = _Checker(expected, [dtype for _, dtype in specs])
        for number, seed in enumerate(plan.seeds, start=1):
            message = self.receive("candidate", {"checked"})
            checker.take_violations(message.meta.get("violations"))
            checker.compare(seed, message.arrays, f"check {number}")
        if checker.violations or checker.problems:
            return checker.result(backend)
        self.stage = "timing"
        times = self.time_both(plan, checker)
        self.stage = "final check"
        self.send("candidate", "final")
        message = self.receive("candidate", {"final"})
        checker.take_violations(message.meta.get("violations"))
        checker.compare(plan.final_seed, message.arrays, "final check")
        for role in self.children:
            self.send(role, "stop")
        return checker.result(backend, times)

    def expected(self) -> tuple[dict[int, list[np.ndarray]], list[tuple[list[int], str]]]:
        message = self.receive("reference", {"expected"})
        seeds, counts = message.meta["seeds"], message.meta["counts"]
        specs = [(list(shape), str(dtype)) for shape, dtype in message.meta["specs"]]
        expected: dict[int, list[np.ndarray]] = {}
        position = 0
        for seed, count in zip(seeds, counts, strict=True):
            expected[int(seed)] = message.arrays[position : position + count]
            position += count
        return expected, specs[: counts[0]]

    def load_candidate(self) -> EvalResult | None:
        """None when the candidate built and loaded; else the result that ends the evaluation."""
        backend = self.evaluator.backend
        try:
            message = self.receive("candidate", {"compiled", "compile_error", "rejected"})
        except _Died as died:
            return EvalResult("error", message=str(died), backend=backend)
        if message.kind == "compile_error":
            return EvalResult("compile_error", message=str(message.meta.get("message", "")), backend=backend)
        if message.kind == "rejected":
            code, detail = str(message.meta.get("code", "rejected")), str(message.meta.get("message", ""))
            return EvalResult("hack", [Violation(code, detail)], backend=backend)
        return None

    def time_both(self, plan: ChildRequest, checker: _Checker) -> dict[str, list[float]]:
        """Warm-ups, then ``trials`` rounds timing both in alternating order, checking outputs at random."""
        evaluator = self.evaluator
        pool = len(plan.pool_seeds)
        for round_index in range(evaluator.warmup):
            for role in ("reference", "candidate"):
                self.send(role, "warmup", {"pool": round_index % pool})
                self.receive(role, {"timed"})
        times: dict[str, list[float]] = {}
        for round_index in range(evaluator.trials):
            order = ("reference", "candidate") if round_index % 2 == 0 else ("candidate", "reference")
            pool_index = self.rng.randrange(pool)
            for role in order:
                self.send(role, "trial", {"pool": pool_index})
                timed = self.receive(role, {"timed"}).meta.get("ms", {})
                for name, value in timed.items():
                    times.setdefault(str(name), []).append(float(value))
            if self.rng.random() < CHECK_FRACTION:
                self.send("candidate", "output")
                message = self.receive("candidate", {"output"})
                checker.compare(plan.pool_seeds[pool_index], message.arrays, f"timed call {round_index + 1}")
            if self.rng.random() < SPOT_FRACTION:
                self.send("candidate", "spot")
                checker.take_violations(self.receive("candidate", {"spot"}).meta.get("violations"))
        if len(times.get("candidate", ())) != evaluator.trials or len(times.get("reference", ())) != evaluator.trials:
            raise _Tampered("the timing replies do not match the rounds")
        return times


class _Checker:
    """Compares outputs with the reference's and collects violations, into an :class:`EvalResult`."""

    def __init__(self, expected: dict[int, list[np.ndarray]], dtypes: list[str]) -> None:
        self.expected, self.dtypes = expected, dtypes
        self.violations: list[Violation] = []
        self.problems: list[str] = []
        self.worst_error = 0.0

    def take_violations(self, found: Any) -> None:
        if not isinstance(found, list):
            raise _Tampered("malformed violations list")
        for item in found:
            if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
                raise _Tampered("malformed violation")
            if all(v.code != item[0] for v in self.violations):
                self.violations.append(Violation(item[0], item[1]))

    def compare(self, seed: int, outputs: list[np.ndarray], label: str) -> None:
        expected = self.expected[seed]
        if len(outputs) != len(expected):
            self.problems.append(f"{label}: {len(outputs)} outputs, expected {len(expected)}")
            self.worst_error = math.inf
            return
        for position, (want, got) in enumerate(zip(expected, outputs, strict=True)):
            dtype = self.dtypes[position] if position < len(self.dtypes) else ""
            ok, error, detail = compare(want, got, f"{label}, output {position}", dtype)
            self.worst_error = max(self.worst_error, error)
            if not ok:
                self.problems.append(detail)

    def result(self, backend: str, times: dict[str, list[float]] | None = None) -> EvalResult:
        if self.violations:
            return EvalResult("hack", list(self.violations), backend=backend)
        if self.problems:
            message = "\n".join(self.problems[:3])
            return EvalResult("incorrect", message=message, max_abs_error=self.worst_error, backend=backend)
        assert times is not None
        candidate = times["candidate"]
        spread = statistics.pstdev(candidate) / statistics.fmean(candidate) if candidate else 0.0
        timing = Timing(
            reference_ms=statistics.median(times["reference"]),
            candidate_ms=statistics.median(candidate),
            trials=len(candidate),
            torch_compile_ms=statistics.median(times["torch_compile"]) if "torch_compile" in times else None,
            candidate_spread=spread,
        )
        return EvalResult("correct", max_abs_error=self.worst_error, timing=timing, backend=backend)
