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

Whose failure: what the candidate's process does (crash, abort, memory limit, hang, a message
outside the protocol) is the candidate's and scores 0. A failure of the evaluator itself raises
:class:`EvaluatorError`, an :class:`~horizongym.failures.InfrastructureError`, so it never
becomes a reward: the compiler is missing or the disk is (nearly) full (checked before each
evaluation and again after a failed build or run; not retryable), a child cannot be forked, the
reference's process fails, breaks the protocol or runs past the deadline before the candidate
starts, or a child is killed from outside (``SIGKILL``, ``SIGTERM``, ``SIGINT``, ``SIGHUP``,
``SIGQUIT``: a person, a supervisor; the evaluator sends none before it has its result, and a
candidate's library may not call ``kill``). The zygote reports how each child ended; a ``SIGKILL``
while the kernel's out-of-memory count (``oom_kill`` in ``/proc/vmstat``) went up, or where that
count cannot be read, is taken as the candidate's memory use.
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
from horizongym.envs.kernels import inline_build, protocol
from horizongym.envs.kernels.api import CompileError, compiler_of
from horizongym.envs.kernels.static_check import Violation, check_source
from horizongym.envs.kernels.types import KernelTask
from horizongym.envs.kernels.worker import ChildRequest
from horizongym.envs.kernels.zygote import Zygote
from horizongym.failures import InfrastructureError

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
MIN_FREE_BYTES = 64 << 20
"""Free disk space the evaluator needs in the temporary and cache folders (builds write there)."""
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT})
"""Signals that end a child from outside the evaluator (see the module docstring)."""
EXIT_WAIT_S = 2.0
"""How long a child whose connection closed may take to exit before it counts as still running."""


class EvaluatorError(InfrastructureError):
    """The evaluator itself failed, not the candidate: no reward may come of this evaluation.

    ``retryable`` when another try may work (a child killed from outside, a fork that failed);
    False when it cannot (no compiler, a full disk).
    """


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
        compiler: str | None = None,
        min_free_bytes: int = MIN_FREE_BYTES,
    ) -> None:
        if trials < 1 or checks < 1:
            raise ValueError("trials and checks must be at least 1")
        self.backend = resolve_backend(backend)
        self.device = "cuda" if self.backend == "cuda" else "cpu"
        self.language = backend_language(self.backend)
        self.compiler = compiler or compiler_of(self.language)
        """The compiler candidates are built with (a path, or a name on ``PATH``)."""
        self.min_free_bytes = min_free_bytes
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
            compiler=self.compiler,
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
        """Evaluate once; a correct result faster than ``reverify_above`` is re-run on fresh inputs.

        Raises :class:`EvaluatorError` when the evaluator itself fails (see the module docstring).
        """
        started = time.perf_counter()
        violations = check_source(candidate_source)
        if violations:
            status: Status = "error" if all(v.code in FORMAT_CODES for v in violations) else "hack"
            return EvalResult(status, violations, seconds=time.perf_counter() - started, backend=self.backend)
        if "load_inline" in candidate_source:
            self.prepare_inline()
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

    def prepare_inline(self) -> None:
        """Precompile the torch prelude of ``load_inline`` builds here, once per machine: the candidate's
        process may not write a file that large (raises :class:`EvaluatorError` if it does not build)."""
        try:
            inline_build.prelude_folder()
        except CompileError as error:
            raise EvaluatorError(str(error), retryable=False) from None

    def check_machine(self) -> None:
        """Raise :class:`EvaluatorError` (not retryable) unless the compiler is there and the disk has room."""
        if shutil.which(self.compiler) is None:
            raise EvaluatorError(
                f"the {self.language} compiler {self.compiler!r} is not installed here (not found on PATH); no "
                f"candidate can be built. Fix: install it, or point KernelEvaluator(compiler=...) or "
                f"${'HORIZONGYM_NVCC' if self.language == 'cuda' else 'HORIZONGYM_CXX'} at one",
                retryable=False,
            )
        self.check_room()

    def check_room(self) -> None:
        """Raise :class:`EvaluatorError` (not retryable) when the temporary or cache folder is (nearly) full."""
        for folder in dict.fromkeys((Path(tempfile.gettempdir()), cache_dir())):
            try:
                free = shutil.disk_usage(folder).free
            except OSError as error:
                raise EvaluatorError(f"cannot use {folder}: {error}", retryable=False) from error
            if free < self.min_free_bytes:
                raise EvaluatorError(
                    f"{folder} has {free / 2**20:.0f} MiB free, less than the {self.min_free_bytes / 2**20:.0f} MiB "
                    "an evaluation needs. Fix: free some disk space",
                    retryable=False,
                )

    def _run(self, task: KernelTask, candidate_source: str) -> EvalResult:
        self.check_machine()
        try:
            folder = tempfile.mkdtemp(prefix="hg-eval-")
        except OSError as error:
            raise EvaluatorError(f"cannot make an evaluation folder: {error}", retryable=False) from error
        session = _Session(self, time.monotonic() + self.timeout_s)
        try:
            result = self._result(session, self.plan(task, candidate_source, folder))
        finally:
            session.close()
            shutil.rmtree(folder, ignore_errors=True)
        if result.status in ("compile_error", "error"):
            self.check_room()  # a build or a run that failed for want of disk space is the machine's failure
        return result

    def _result(self, session: _Session, plan: ChildRequest) -> EvalResult:
        try:
            return session.run(plan)
        except _Timeout as timeout:
            message = f"no result within {self.timeout_s:g} s (during {timeout})"
            return EvalResult("timeout", message=message, backend=self.backend)
        except _Died as died:
            return EvalResult("error", message=str(died), backend=self.backend)
        except _Tampered as tampered:
            return EvalResult("hack", [Violation("protocol", str(tampered))], backend=self.backend)


def describe_exit(status: int | None) -> str:
    """A ``waitpid`` status in words: ``killed by SIGSEGV``, ``exited with code 3``."""
    if status is None:
        return "it closed its connection and kept running"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.WEXITSTATUS(status)}"


def oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer has killed since boot (None: cannot tell)."""
    try:
        with open("/proc/vmstat", "rb") as fh:
            for line in fh:
                if line.startswith(b"oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _went_up(before: int | None, after: int | None) -> bool:
    """Whether a counter grew; True when it cannot be told (a SIGKILL then counts as the candidate's)."""
    return before is None or after is None or after > before


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
        self.ended: set[str] = set()
        """Children whose exit the zygote reported (reaped: their pids must not be signalled)."""
        self.rng = random.SystemRandom()
        self.stage = "start"
        self.oom_kills = oom_kills()

    # ----- plumbing ----------------------------------------------------------------------
    def start(self, request: ChildRequest) -> None:
        try:
            self.children[request.role] = _ZYGOTE.start_child(request)
        except (OSError, EOFError) as error:
            why = f"{type(error).__name__}: {error}"
            raise EvaluatorError(f"could not start the {request.role} process: {why}") from None

    def send(self, role: str, kind: str, meta: dict[str, Any] | None = None) -> None:
        try:
            protocol.send(self.children[role][1], kind, meta)
        except OSError:
            raise self.ended_early(role) from None

    def receive(self, role: str, kinds: set[str]) -> protocol.Message:
        conn = self.children[role][1]
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not conn.poll(remaining):
            if "candidate" not in self.children:  # only trusted code has run: the machine is too slow
                raise EvaluatorError(
                    f"the reference gave no result within timeout_s={self.evaluator.timeout_s:g} s "
                    f"(during {self.stage}), before the candidate started"
                )
            raise _Timeout(self.stage)
        try:
            message = protocol.receive(conn, kinds | {"error"})
        except EOFError:
            raise self.ended_early(role) from None
        except protocol.ProtocolError as error:
            if role == "candidate":
                raise _Tampered(f"the candidate's process broke the protocol during {self.stage}: {error}") from None
            raise EvaluatorError(f"the reference process broke the protocol during {self.stage}: {error}") from None
        if message.kind == "error":
            detail = f"error during {message.meta.get('stage', self.stage)}:\n{message.meta.get('message', '')}"
            if role == "candidate":
                raise _Died(detail)
            raise EvaluatorError(f"the reference failed: {detail}")
        return message

    def ended_early(self, role: str) -> Exception:
        """Why ``role``'s process ended without answering: the candidate's doing (:class:`_Died`) or the
        evaluator's failure (:class:`EvaluatorError`; see the module docstring)."""
        pid = self.children[role][0]
        try:
            status = _ZYGOTE.exit_status(pid, EXIT_WAIT_S)
        except (OSError, EOFError, ChildProcessError) as error:
            return EvaluatorError(
                f"the {role} process ended during {self.stage}, and the evaluator's fork server is gone ({error})"
            )
        if status is not None:
            self.ended.add(role)
        how = describe_exit(status)
        if role == "reference":
            return EvaluatorError(f"the reference process ended during {self.stage} ({how})")
        if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) in OUTSIDE_SIGNALS:
            killed_for_memory = os.WTERMSIG(status) == signal.SIGKILL and _went_up(self.oom_kills, oom_kills())
            if not killed_for_memory:
                return EvaluatorError(
                    f"the candidate's process was {how} during {self.stage}, from outside the evaluator"
                )
            how += " by the out-of-memory killer"
        return _Died(f"the candidate process died during {self.stage} ({how}: a crash, an abort, or its memory limit)")

    def close(self) -> None:
        for role, (pid, conn) in self.children.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # what it started (a build) too: a live group keeps its id
            if role not in self.ended:  # an ended child was reaped: its pid may be another process's by now
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(OSError, EOFError, ChildProcessError):
                    _ZYGOTE.exit_status(pid, forget=True)  # the zygote reaps it when it is gone
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
