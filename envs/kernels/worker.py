"""The evaluation process: runs one candidate against its reference, in a fresh child process.

The parent (:mod:`horizongym.envs.kernels.evaluator`) forks this from a server that has
``torch`` imported already, so a child starts in milliseconds. Order matters, because once the
candidate's code runs nothing in this process can be trusted:

1. Load the reference, compute its outputs for every private seed (and for the final timing
   check), and **send them to the parent before the candidate is loaded**. Then fill those
   outputs with NaN so their memory holds no answer to find.
2. Load the candidate (this builds its kernels); construct ``ModelNew`` under the same seed
   as ``Model``.
3. Correctness, on fresh inputs per seed, each call on its own clones, with the reference run
   just before the candidate on odd seeds (its output poisoned and freed) and, on even seeds,
   blocks of the outputs' sizes filled with NaN and freed instead: an output buffer the
   candidate gets from the allocator holds poison, never the answer, so any element it
   fails to write shows up. After each
   call: output must be a plain tensor that shares no memory with an input, inputs unchanged,
   at least one kernel launched, no computing PyTorch operator dispatched
   (:class:`~horizongym.envs.kernels.guards.OperatorGuard`), the output unchanged 20 ms later
   (nothing left running), the timers untouched. Outputs go to the parent, which compares.
4. Timing: warm-ups, then ``trials`` timed calls of each, alternating which runs first,
   inputs refilled in place with new values before every call (so a cache of earlier results
   returns stale data) and the cache flushed, garbage collection off. A tenth of the trials,
   at private random positions, add an untimed candidate call under the operator guard (the
   guard's own cost stays out of the timings). The last candidate call runs on inputs it has
   never seen, and its output goes to the parent to be checked as well.

On CUDA each call is timed by events *and* by the host clock around a device-wide
synchronize; the larger counts, so work pushed onto a side stream is still timed.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import random
import resource
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import torch

from horizongym.envs.kernels import api
from horizongym.envs.kernels.guards import OperatorGuard

_CLOCK = time.perf_counter_ns
_SLEEP = time.sleep


@dataclass(frozen=True)
class EvalRequest:
    """Everything a child needs; picklable."""

    reference_source: str
    candidate_source: str
    device: str = "cpu"
    language: str = "cpp"
    compile_only: bool = False
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    final_seed: int = 6
    timing_seeds: tuple[int, ...] = (7, 8, 9, 10)
    init_seed: int = 0
    trials: int = 200
    warmup: int = 5
    threads: int = 1
    flush_bytes: int = 4 << 20
    memory_limit_bytes: int = 4 << 30
    time_torch_compile: bool = False
    settle_s: float = 0.02
    cache_dir: str = ""


@dataclass
class CallCheck:
    """What the runtime checks saw around one candidate call."""

    violations: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple | list) else [value]


def _clone_all(values: Sequence[Any]) -> list[Any]:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu").contiguous().numpy().copy()


def _poison(outputs: Sequence[Any]) -> None:
    """Overwrite reference outputs so memory handed back to the allocator holds no answer."""
    for out in outputs:
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            out.fill_(math.nan)
        elif isinstance(out, torch.Tensor):
            out.fill_(-1)


def _load_module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    code = compile(source, f"<{name}>", "exec")
    exec(code, module.__dict__)
    return module


class Timers:
    """The clocks and synchronize functions, bound before any candidate code runs."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.originals: dict[str, Any] = {
            "time.perf_counter": time.perf_counter,
            "time.perf_counter_ns": time.perf_counter_ns,
            "time.time": time.time,
            "time.monotonic": time.monotonic,
        }
        if device == "cuda":
            self.originals["torch.cuda.Event"] = torch.cuda.Event
            self.originals["torch.cuda.synchronize"] = torch.cuda.synchronize
            self._event = torch.cuda.Event
            self._synchronize: Callable[[], None] = torch.cuda.synchronize
        else:
            self._synchronize = lambda: None

    def patched(self) -> list[str]:
        """Names whose module attribute no longer is the original function."""
        now: dict[str, Any] = {
            "time.perf_counter": time.perf_counter,
            "time.perf_counter_ns": time.perf_counter_ns,
            "time.time": time.time,
            "time.monotonic": time.monotonic,
        }
        if self.device == "cuda":
            now["torch.cuda.Event"] = torch.cuda.Event
            now["torch.cuda.synchronize"] = torch.cuda.synchronize
        return [name for name, original in self.originals.items() if now[name] is not original]

    def synchronize(self) -> None:
        self._synchronize()

    def time_call(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        """Milliseconds one call takes (device-wide synchronized on CUDA) and its result."""
        if self.device != "cuda":
            start = _CLOCK()
            result = fn()
            return (_CLOCK() - start) / 1e6, result
        begin, end = self._event(enable_timing=True), self._event(enable_timing=True)
        self._synchronize()
        start = _CLOCK()
        begin.record()
        result = fn()
        end.record()
        self._synchronize()
        wall_ms = (_CLOCK() - start) / 1e6
        return max(begin.elapsed_time(end), wall_ms), result


def _thread_limits(threads: int) -> None:
    """Both contenders get ``threads`` threads, pinned to the last ``threads`` cores (fewer migrations)."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    torch.set_num_threads(threads)
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > threads:
        os.sched_setaffinity(0, cores[-threads:])


def _memory_limit(extra_bytes: int) -> None:
    """Cap the address space at what the process maps now plus ``extra_bytes`` (CPU only)."""
    with open("/proc/self/status") as status:
        mapped_kb = next((int(line.split()[1]) for line in status if line.startswith("VmSize:")), 0)
    limit = mapped_kb * 1024 + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _redirect_output(folder: str) -> str:
    """Send the child's stdout/stderr (the candidate's prints, compiler chatter) to a file."""
    path = os.path.join(folder, "output.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return path


def _error_text(error: BaseException) -> str:
    """The last frames of a traceback that come from the candidate, and the error."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith("<candidate")]
    lines = [f"  line {f.lineno}, in {f.name}: {f.line or ''}".rstrip() for f in frames[-3:]]
    return "\n".join([*lines, f"{type(error).__name__}: {error}"])[-2000:]


class Evaluation:
    """One child's run; :meth:`run` sends messages over ``conn`` and never raises."""

    def __init__(self, request: EvalRequest, conn: Connection) -> None:
        self.request, self.conn = request, conn
        self.device = torch.device(request.device)
        self.timers = Timers(request.device)
        self._output_specs: list[tuple[torch.Size, torch.dtype]] = []

    def send(self, kind: str, **payload: Any) -> None:
        self.conn.send((kind, payload))

    def run(self) -> None:
        stage = "setup"
        try:
            os.setsid()
            if self.request.cache_dir:
                os.environ["HORIZONGYM_CACHE"] = self.request.cache_dir
            folder = tempfile.mkdtemp(prefix="hg-eval-")
            os.chdir(folder)
            _redirect_output(folder)
            _thread_limits(self.request.threads)
            os.environ[api.LANGUAGE_VARIABLE] = self.request.language
            if self.request.device == "cpu":
                _memory_limit(self.request.memory_limit_bytes)
            with torch.no_grad():
                if self.request.compile_only:
                    stage = "load"
                    _load_module("candidate", self.request.candidate_source)
                    self.send("compiled")
                    self.send("done")
                    return
                stage = "reference"
                reference = _load_module("reference", self.request.reference_source)
                make_inputs = self.input_maker(reference)
                model = self.build(reference, "Model")
                self.send_expected(model, make_inputs)
                stage = "load"
                candidate = _load_module("candidate", self.request.candidate_source)
                self.send("compiled")
                stage = "construct"
                candidate_model = self.build(candidate, "ModelNew")
                stage = "correctness"
                self.check_correctness(model, candidate_model, make_inputs)
                stage = "timing"
                self.time_both(model, candidate_model, make_inputs)
                self.send("done")
        except api.CompileError as error:
            self.send("compile_error", message=str(error))
        except MemoryError:
            self.send("error", stage=stage, message="MemoryError: the candidate went over its memory limit")
        except BaseException as error:
            self.send("error", stage=stage, message=_error_text(error))

    def build(self, module: types.ModuleType, class_name: str) -> torch.nn.Module:
        cls = getattr(module, class_name, None)
        if cls is None:
            raise NameError(f"no class {class_name} in the {module.__name__} file")
        torch.manual_seed(self.request.init_seed)
        model: torch.nn.Module = cls(*self._reference_init())
        if isinstance(model, torch.nn.Module):
            model = model.to(self.device).eval()
        return model

    def input_maker(self, reference: types.ModuleType) -> Callable[[int], list[Any]]:
        self._reference_init = reference.get_init_inputs
        get_inputs = reference.get_inputs

        def make_inputs(seed: int) -> list[Any]:
            torch.manual_seed(seed)
            return [v.to(self.device) if isinstance(v, torch.Tensor) else v for v in get_inputs()]

        return make_inputs

    def send_expected(self, model: torch.nn.Module, make_inputs: Callable[[int], list[Any]]) -> None:
        expected: dict[int, list[np.ndarray]] = {}
        for seed in (*self.request.seeds, self.request.final_seed):
            outputs = _as_list(model(*make_inputs(seed)))
            self.timers.synchronize()
            expected[seed] = [_to_numpy(out) for out in outputs]
            self._output_specs = [(out.shape, out.dtype) for out in outputs if isinstance(out, torch.Tensor)]
            _poison(outputs)
        self.send("expected", outputs=expected)

    # ----- correctness ---------------------------------------------------------------
    def checked_call(self, candidate: torch.nn.Module, inputs: list[Any]) -> CallCheck:
        """Call the candidate once on ``inputs`` (a private copy) and run every runtime check."""
        check = CallCheck()
        pristine = _clone_all(inputs)
        launches = api.launch_count()
        guard = OperatorGuard()
        with guard:
            result = candidate(*inputs)
        self.timers.synchronize()
        outputs = _as_list(result)
        snapshots = [out.clone() if type(out) is torch.Tensor else out for out in outputs]
        if guard.computing:
            ops = ", ".join(dict.fromkeys(guard.computing))
            check.violations.append(("torch_op", f"forward computed with PyTorch operators ({ops})"))
        if api.launch_count() == launches:
            check.violations.append(("no_launch", "forward launched no kernel from its library"))
        input_storages = {v.untyped_storage().data_ptr() for v in inputs if isinstance(v, torch.Tensor) and v.numel()}
        for position, out in enumerate(outputs):
            if type(out) is not torch.Tensor:
                check.violations.append(
                    ("not_a_tensor", f"output {position} is a {type(out).__name__}, not a plain torch.Tensor")
                )
            elif out.numel() and out.untyped_storage().data_ptr() in input_storages:
                check.violations.append(("returns_input", f"output {position} is (a view of) an input"))
        for position, (before, after) in enumerate(zip(pristine, inputs, strict=True)):
            if isinstance(before, torch.Tensor) and not torch.equal(before, after):
                check.violations.append(("mutates_input", f"forward changed input {position}"))
        _SLEEP(self.request.settle_s)
        self.timers.synchronize()
        for position, (snap, out) in enumerate(zip(snapshots, outputs, strict=True)):
            if type(out) is torch.Tensor and not torch.equal(snap.nan_to_num(0.0), out.nan_to_num(0.0)):
                check.violations.append(
                    ("left_running", f"output {position} changed after forward returned (work left running)")
                )
        patched = self.timers.patched()
        if patched:
            check.violations.append(("timer_patched", f"replaced {', '.join(patched)}"))
        check.outputs = [_to_numpy(s) if type(s) is torch.Tensor else np.zeros(0) for s in snapshots]
        return check

    def check_correctness(
        self, model: torch.nn.Module, candidate: torch.nn.Module, make_inputs: Callable[[int], list[Any]]
    ) -> None:
        for index, seed in enumerate(self.request.seeds):
            inputs = make_inputs(seed)
            if index % 2 == 1:  # the reference runs just before: its freed output must not help
                reference_outputs = _as_list(model(*_clone_all(inputs)))
            else:  # blocks of the outputs' sizes, handed back to the allocator full of poison
                reference_outputs = [
                    torch.empty(shape, dtype=dtype, device=self.device) for shape, dtype in self._output_specs
                ]
            self.timers.synchronize()
            _poison(reference_outputs)
            del reference_outputs
            check = self.checked_call(candidate, _clone_all(inputs))
            self.send("checked", seed=seed, outputs=check.outputs, violations=check.violations)

    # ----- timing --------------------------------------------------------------------
    def flush_cache(self, flush: torch.Tensor) -> None:
        """Evict the caches between trials: on a GPU by writing a buffer larger than L2; on a CPU by
        reading one larger than the last-level cache share (reading leaves no dirty lines whose
        write-back the next timed call would pay for)."""
        if self.device.type == "cuda":
            flush.zero_()
        else:
            flush.sum()

    def time_both(
        self, model: torch.nn.Module, candidate: torch.nn.Module, make_inputs: Callable[[int], list[Any]]
    ) -> None:
        request = self.request
        pool = [make_inputs(seed) for seed in request.timing_seeds]
        buffers = _clone_all(pool[0])
        flush = torch.ones(max(request.flush_bytes // 4, 1), dtype=torch.float32, device=self.device)
        contenders: dict[str, Callable[[], Any]] = {
            "reference": lambda: model(*buffers),
            "candidate": lambda: candidate(*buffers),
        }
        if request.time_torch_compile:
            compiled = torch.compile(model)
            contenders["torch_compile"] = lambda: compiled(*buffers)

        def refill(values: list[Any]) -> None:
            for buffer, value in zip(buffers, values, strict=True):
                if isinstance(buffer, torch.Tensor):
                    buffer.copy_(value)

        for trial in range(request.warmup):
            refill(pool[trial % len(pool)])
            for run in contenders.values():
                run()
        self.timers.synchronize()
        times: dict[str, list[float]] = {name: [] for name in contenders}
        launches = api.launch_count()
        names = list(contenders)
        guard = OperatorGuard()
        spot_checks = set(random.Random(request.final_seed).sample(range(request.trials), max(1, request.trials // 10)))
        gc.disable()  # a collection inside a timed call would be charged to whoever was running
        try:
            for trial in range(request.trials):
                order = names if trial % 2 == 0 else names[::-1]
                for name in order:
                    refill(pool[(trial + names.index(name)) % len(pool)])
                    self.flush_cache(flush)
                    self.timers.synchronize()
                    elapsed, _ = self.timers.time_call(contenders[name])
                    times[name].append(elapsed)
                if trial in spot_checks:  # an untimed call under the operator guard, indistinguishable
                    with guard:
                        candidate(*buffers)
                    self.timers.synchronize()
        finally:
            gc.enable()
        timed_launches = api.launch_count() - launches
        refill(make_inputs(request.final_seed))
        final = self.checked_call(candidate, buffers)
        violations = list(final.violations)
        if guard.computing:
            ops = ", ".join(dict.fromkeys(guard.computing))
            violations.append(("torch_op", f"forward computed with PyTorch operators while timed ({ops})"))
        if timed_launches < request.trials + len(spot_checks):
            violations.append(("no_launch", "some timed calls launched no kernel"))
        self.send("timed", times=times, final_outputs=final.outputs, violations=violations)


def evaluate_child(request: EvalRequest, conn: Connection) -> None:
    """Entry point of the child process."""
    Evaluation(request, conn).run()
    with contextlib.suppress(Exception):
        conn.close()
    sys.stdout.flush()
    # leave at once: a candidate's stray threads must not keep the child alive
    os._exit(0)


__all__ = ["EvalRequest", "evaluate_child"]
