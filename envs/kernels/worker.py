"""The two evaluation processes: a trusted *reference* child and an untrusted *candidate* child.

Both are forked from the zygote (:mod:`horizongym.envs.kernels.zygote`) and driven by the
parent (:mod:`horizongym.envs.kernels.evaluator`) over a socket in the JSON-and-bytes format of
:mod:`horizongym.envs.kernels.protocol`; the parent never unpickles what a child sends.

* The **reference** child never sees candidate code. It computes the reference outputs for
  every private seed (correctness checks, the final check, the timing pool) and sends them to
  the parent, then times the reference on command.
* The **candidate** child loads the candidate (building its kernels; a library that imports or
  executes anything outside the rules is rejected before it is loaded, see
  :mod:`horizongym.envs.kernels.inspect_library`), constructs ``ModelNew`` under the same seed
  as ``Model``, and answers the correctness checks, then times the candidate on command. It
  never holds a reference output, so there is no answer in its memory to find.

Correctness calls run on fresh inputs, each on its own clones, after blocks of the outputs'
sizes have been filled with NaN and freed (so a buffer the candidate gets from the allocator
holds poison, never a plausible answer), under :class:`~horizongym.envs.kernels.guards.OperatorGuard`.
After each: the output must be a plain tensor sharing no memory with an input, the inputs
unchanged, at least one kernel launched, no computing PyTorch operator dispatched, the output
unchanged 20 ms later (nothing left running), the timers untouched.

Timing: the parent runs ``trials`` rounds; in each, both children time one call, alternating
which goes first. Before each timed call a child refills its inputs in place from the timing
pool (so results cached from earlier calls are stale) and flushes the cache, with garbage
collection off. After a random subset of the candidate's timed calls the parent asks for that
call's output and checks it, and at random rounds it asks for an untimed call under the
operator guard. On CUDA each call is timed by events and by the host clock around a
device-wide synchronize, whichever is larger, so work left on a side stream still counts.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import math
import os
import resource
import sys
import time
import traceback
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Literal

import numpy as np
import torch

from horizongym.envs.kernels import api, inline_build, protocol
from horizongym.envs.kernels.guards import OperatorGuard
from horizongym.envs.kernels.inspect_library import KernelRejected

_CLOCK = time.perf_counter_ns
_SLEEP = time.sleep
COMMANDS = frozenset({"warmup", "trial", "output", "spot", "final", "stop"})


@dataclass(frozen=True)
class ChildRequest:
    """Everything a child needs; picklable (the parent pickles it, the child unpickles it)."""

    role: Literal["reference", "candidate"]
    reference_source: str
    candidate_source: str = ""
    folder: str = ""
    device: str = "cpu"
    language: str = "cpp"
    compiler: str = ""
    """The compiler of ``language`` (a path or a name on ``PATH``); empty: :func:`.api.compiler_of`'s."""
    compile_only: bool = False
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    final_seed: int = 6
    pool_seeds: tuple[int, ...] = (7, 8, 9, 10)
    init_seed: int = 0
    threads: int = 1
    flush_bytes: int = 4 << 20
    memory_limit_bytes: int = 4 << 30
    file_limit_bytes: int = 64 << 20
    time_torch_compile: bool = False
    settle_s: float = 0.02
    cache_dir: str = ""
    output_specs: tuple[tuple[tuple[int, ...], str], ...] = ()
    """Shape and torch dtype name of each reference output (the candidate child poisons blocks of these sizes)."""


@dataclass
class CallCheck:
    """What the runtime checks saw around one candidate call."""

    violations: list[list[str]] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple | list) else [value]


def _clone_all(values: Sequence[Any]) -> list[Any]:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A host copy; bfloat16 (which numpy lacks) travels as float32."""
    tensor = tensor.detach().to("cpu")
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.contiguous().numpy().copy()


def _poison(outputs: Sequence[Any]) -> None:
    """Overwrite tensors so memory handed back to the allocator holds no answer."""
    for out in outputs:
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            out.fill_(math.nan)
        elif isinstance(out, torch.Tensor):
            out.fill_(-1)


def _candidate_builtins() -> dict[str, Any]:
    """Builtins whose ``__import__`` answers ``from torch.utils.cpp_extension import load_inline`` with
    :mod:`~horizongym.envs.kernels.inline_build` (torch's own builder never runs a candidate's build)."""
    real_import = builtins.__import__

    def redirecting_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == inline_build.EXTENSION_MODULE:
            return inline_build
        return real_import(name, *args, **kwargs)

    return {**builtins.__dict__, "__import__": redirecting_import}


def _load_module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    if name == "candidate":
        module.__dict__["__builtins__"] = _candidate_builtins()
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def _error_text(error: BaseException) -> str:
    """The last frames of a traceback that come from the candidate, and the error."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith("<candidate")]
    lines = [f"  line {f.lineno}, in {f.name}: {f.line or ''}".rstrip() for f in frames[-3:]]
    return "\n".join([*lines, f"{type(error).__name__}: {error}"])[-2000:]


class Timers:
    """The clocks and synchronize functions, bound before any candidate code runs."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.originals = self._current()
        if device == "cuda":
            self._event = torch.cuda.Event
            self._synchronize: Callable[[], None] = torch.cuda.synchronize
        else:
            self._synchronize = lambda: None

    def _current(self) -> dict[str, Any]:
        now: dict[str, Any] = {
            "time.perf_counter": time.perf_counter,
            "time.perf_counter_ns": time.perf_counter_ns,
            "time.time": time.time,
            "time.monotonic": time.monotonic,
        }
        if self.device == "cuda":
            now["torch.cuda.Event"] = torch.cuda.Event
            now["torch.cuda.synchronize"] = torch.cuda.synchronize
        return now

    def patched(self) -> list[str]:
        """Names whose module attribute no longer is the original function."""
        return [name for name, now in self._current().items() if now is not self.originals[name]]

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


class Child:
    """What both children share: set-up, inputs, construction, timing one call."""

    def __init__(self, request: ChildRequest, conn: Connection) -> None:
        self.request, self.conn = request, conn
        self.device = torch.device(request.device)
        self.timers = Timers(request.device)
        self.buffers: list[Any] = []
        self.pool: list[list[Any]] = []
        self.flush: torch.Tensor | None = None

    def setup(self) -> None:
        request = self.request
        os.setsid()
        if request.cache_dir:
            os.environ["HORIZONGYM_CACHE"] = request.cache_dir
        os.environ[api.LANGUAGE_VARIABLE] = request.language
        if request.compiler:
            os.environ[api.COMPILER_VARIABLES[request.language]] = request.compiler
        os.chdir(request.folder)
        fd = os.open(os.path.join(request.folder, f"{request.role}-output.txt"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        resource.setrlimit(resource.RLIMIT_FSIZE, (request.file_limit_bytes, request.file_limit_bytes))
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[variable] = str(request.threads)
        torch.set_num_threads(request.threads)
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) > request.threads:  # the last cores: the parent mostly waits on the first
            os.sched_setaffinity(0, cores[-request.threads :])
        if request.device == "cpu":
            with open("/proc/self/status") as status:
                mapped_kb = next((int(line.split()[1]) for line in status if line.startswith("VmSize:")), 0)
            limit = mapped_kb * 1024 + request.memory_limit_bytes
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        reference = _load_module("reference", request.reference_source)
        self.get_inputs, self.get_init_inputs = reference.get_inputs, reference.get_init_inputs
        self.reference_module = reference

    def make_inputs(self, seed: int) -> list[Any]:
        torch.manual_seed(seed)
        return [v.to(self.device) if isinstance(v, torch.Tensor) else v for v in self.get_inputs()]

    def construct(self, module: types.ModuleType, class_name: str) -> torch.nn.Module:
        cls = getattr(module, class_name, None)
        if cls is None:
            raise NameError(f"no class {class_name} in the {module.__name__} file")
        torch.manual_seed(self.request.init_seed)
        model: torch.nn.Module = cls(*self.get_init_inputs())
        if isinstance(model, torch.nn.Module):
            model = model.to(self.device).eval()
        return model

    def prepare_timing(self) -> None:
        self.pool = [self.make_inputs(seed) for seed in self.request.pool_seeds]
        self.buffers = _clone_all(self.pool[0])
        self.flush = torch.ones(max(self.request.flush_bytes // 4, 1), dtype=torch.float32, device=self.device)

    def refill(self, values: Sequence[Any]) -> None:
        for buffer, value in zip(self.buffers, values, strict=True):
            if isinstance(buffer, torch.Tensor):
                buffer.copy_(value)

    def flush_cache(self) -> None:
        """Evict the caches: on a GPU by writing a buffer twice the L2; on a CPU by reading one
        (reading leaves no dirty lines whose write-back the next timed call would pay for)."""
        assert self.flush is not None
        if self.device.type == "cuda":
            self.flush.zero_()
        else:
            self.flush.sum()
        self.timers.synchronize()

    def timed(self, fn: Callable[[], Any], pool_index: int) -> tuple[float, Any]:
        self.refill(self.pool[pool_index % len(self.pool)])
        self.flush_cache()
        gc.disable()
        try:
            return self.timers.time_call(fn)
        finally:
            gc.enable()

    def send(self, kind: str, meta: dict[str, Any] | None = None, arrays: Sequence[np.ndarray] = ()) -> None:
        protocol.send(self.conn, kind, meta, arrays)

    def command(self) -> protocol.Message:
        return protocol.receive(self.conn, COMMANDS)


class ReferenceChild(Child):
    """Computes the expected outputs, then times the reference (and ``torch.compile``) on command."""

    def run(self) -> None:
        stage = "setup"
        try:
            self.setup()
            with torch.no_grad():
                stage = "reference"
                model = self.construct(self.reference_module, "Model")
                request = self.request
                arrays: list[np.ndarray] = []
                specs: list[list[Any]] = []
                counts: list[int] = []
                for seed in (*request.seeds, request.final_seed, *request.pool_seeds):
                    outputs = _as_list(model(*self.make_inputs(seed)))
                    self.timers.synchronize()
                    counts.append(len(outputs))
                    for out in outputs:
                        arrays.append(to_numpy(out))
                        specs.append([list(out.shape), str(out.dtype).removeprefix("torch.")])
                seeds = [*request.seeds, request.final_seed, *request.pool_seeds]
                self.send("expected", {"seeds": seeds, "counts": counts, "specs": specs}, arrays)
                del arrays
                stage = "timing"
                self.prepare_timing()
                contenders: dict[str, Callable[[], Any]] = {"reference": lambda: model(*self.buffers)}
                if request.time_torch_compile:
                    compiled = torch.compile(model)
                    contenders["torch_compile"] = lambda: compiled(*self.buffers)
                self.serve(contenders)
        except BaseException as error:
            with contextlib.suppress(Exception):
                self.send("error", {"stage": stage, "message": _error_text(error)})

    def serve(self, contenders: dict[str, Callable[[], Any]]) -> None:
        while True:
            message = self.command()
            if message.kind == "stop":
                return
            pool_index = int(message.meta.get("pool", 0))
            timings = {}
            for name, run in contenders.items():
                elapsed, result = self.timed(run, pool_index)
                _poison(_as_list(result))
                timings[name] = elapsed
            self.send("timed", {"ms": timings})


class CandidateChild(Child):
    """Loads the candidate, answers the correctness checks, then times it on command."""

    def run(self) -> None:
        stage = "setup"
        try:
            self.setup()
            with torch.no_grad():
                stage = "load"
                candidate_module = _load_module("candidate", self.request.candidate_source)
                self.send("compiled")
                if self.request.compile_only:
                    return
                stage = "construction"
                candidate = self.construct(candidate_module, "ModelNew")
                stage = "correctness checks"
                for seed in self.request.seeds:
                    self.poison_free_memory()
                    check = self.checked_call(candidate, self.make_inputs(seed))
                    self.send("checked", {"seed": seed, "violations": check.violations}, check.outputs)
                stage = "timing"
                self.prepare_timing()
                self.serve(candidate)
        except api.CompileError as error:
            self.send("compile_error", {"message": str(error)})
        except KernelRejected as rejected:
            self.send("rejected", {"code": rejected.code, "message": str(rejected)})
        except MemoryError:
            self.send("error", {"stage": stage, "message": "MemoryError: the candidate went over its memory limit"})
        except BaseException as error:
            with contextlib.suppress(Exception):
                self.send("error", {"stage": stage, "message": _error_text(error)})

    def poison_free_memory(self) -> None:
        """Allocate blocks of the outputs' sizes, fill them with NaN and free them."""
        blocks = [
            torch.empty(shape, dtype=getattr(torch, dtype), device=self.device)
            for shape, dtype in self.request.output_specs
        ]
        _poison(blocks)
        self.timers.synchronize()

    def serve(self, candidate: torch.nn.Module) -> None:
        last: list[Any] = []
        while True:
            message = self.command()
            if message.kind == "stop":
                return
            if message.kind in ("warmup", "trial"):
                elapsed, result = self.timed(lambda: candidate(*self.buffers), int(message.meta.get("pool", 0)))
                last = _as_list(result)
                self.send("timed", {"ms": {"candidate": elapsed}})
            elif message.kind == "output":
                self.send("output", {}, [to_numpy(out) if type(out) is torch.Tensor else np.zeros(0) for out in last])
            elif message.kind == "spot":
                guard = OperatorGuard()
                with guard:
                    candidate(*self.buffers)
                self.send("spot", {"violations": self.guard_violations(guard, "while timed")})
            elif message.kind == "final":
                self.refill(self.make_inputs(self.request.final_seed))
                self.poison_free_memory()
                check = self.checked_call(candidate, self.buffers)
                self.send("final", {"violations": check.violations}, check.outputs)

    @staticmethod
    def guard_violations(guard: OperatorGuard, when: str = "") -> list[list[str]]:
        if not guard.computing:
            return []
        ops = ", ".join(dict.fromkeys(guard.computing))
        return [["torch_op", f"forward computed with PyTorch operators{' ' + when if when else ''} ({ops})"]]

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
        check.violations.extend(self.guard_violations(guard))
        if api.launch_count() == launches:
            check.violations.append(["no_launch", "forward launched no kernel from its library"])
        input_storages = {v.untyped_storage().data_ptr() for v in inputs if isinstance(v, torch.Tensor) and v.numel()}
        for position, out in enumerate(outputs):
            if type(out) is not torch.Tensor:
                check.violations.append(
                    ["not_a_tensor", f"output {position} is a {type(out).__name__}, not a plain torch.Tensor"]
                )
            elif out.numel() and out.untyped_storage().data_ptr() in input_storages:
                check.violations.append(["returns_input", f"output {position} is (a view of) an input"])
        for position, (before, after) in enumerate(zip(pristine, inputs, strict=True)):
            if isinstance(before, torch.Tensor) and not torch.equal(before, after):
                check.violations.append(["mutates_input", f"forward changed input {position}"])
        _SLEEP(self.request.settle_s)
        self.timers.synchronize()
        for position, (snap, out) in enumerate(zip(snapshots, outputs, strict=True)):
            if type(out) is torch.Tensor and not torch.equal(snap.nan_to_num(0.0), out.nan_to_num(0.0)):
                check.violations.append(
                    ["left_running", f"output {position} changed after forward returned (work left running)"]
                )
        patched = self.timers.patched()
        if patched:
            check.violations.append(["timer_patched", f"replaced {', '.join(patched)}"])
        check.outputs = [to_numpy(s) if type(s) is torch.Tensor else np.zeros(0) for s in snapshots]
        return check


def run_child(request: ChildRequest, conn: Connection) -> None:
    """Entry point of a forked child: run its role, then leave at once (stray threads must not keep it alive)."""
    child = ReferenceChild(request, conn) if request.role == "reference" else CandidateChild(request, conn)
    child.run()
    with contextlib.suppress(Exception):
        conn.close()
    sys.stdout.flush()
    os._exit(0)
