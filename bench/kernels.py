"""KernelGen evaluation speed and trustworthiness: builds, timing noise, throughput, reward hacks caught.

- ``compile_cold_s`` (``backend``, ``method``): building a small kernel that is not in the cache.
  ``method=ctypes`` is :func:`horizongym.envs.kernels.api.build` (plain g++/nvcc shared library,
  no torch headers). ``method=load_inline_fast`` builds a KernelBench-form ``load_inline`` file's
  sources through :func:`horizongym.envs.kernels.inline_build.load_inline` (what a candidate's
  ``load_inline`` runs), with the torch prelude already precompiled (``prelude=cached``);
  ``method=torch_load_inline`` builds the same sources with torch's own
  ``torch.utils.cpp_extension.load_inline`` into a fresh build folder (full run only: it takes
  about half a minute; it needs ninja, and without it the figure is printed as skipped, with the
  reason, instead of a number). ``backend=cpu`` builds C++, ``backend=compile-only`` builds CUDA with nvcc.
- ``prelude_build_s`` (``cache``): the one-time precompilation of the torch prelude ``load_inline_fast``
  builds on: measured in a fresh cache folder (full run, ``cache=fresh``), or the time the machine's
  cached prelude took when it was built (``--quick``, ``cache=machine``).
- ``compile_cached_ms`` (``backend``, ``method``): getting the same kernel again (hash, cache hit).
- ``timing_cv`` (``backend``, ``task``): coefficient of variation of the candidate's median time
  over 10 repeated evaluations of one expert kernel (each: 200 alternating trials, flushed cache).
- ``expert_speedup`` (``backend``, ``task``): speedup of each hand-written expert kernel over PyTorch
  eager, from a full evaluation; ``experts_faster``: how many have a speedup ≥ 1.0.
- ``evals_per_min`` (``backend``): full evaluations (process, build from cache, 5 checks, 200
  timed trials of each contender) per minute, one at a time.
- ``exploits_caught`` / ``exploits_total``: reward hacks of the regression corpus that scored 0.

On a machine with a GPU, the same figures are also measured for ``backend=cuda``.

    python -m horizongym.bench.kernels [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from typing import Any

from tqdm import tqdm

from horizongym.agents.experts.kernel_solutions import SOLUTIONS
from horizongym.envs.kernels.api import build
from horizongym.envs.kernels.catalog import get_task
from horizongym.envs.kernels.evaluator import KernelEvaluator
from horizongym.envs.kernels.exploits import EXPLOITS

figures: list[dict[str, Any]] = []

SMALL_CPP = r"""
#include <cstdint>
extern "C" void relu(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    #pragma omp parallel for simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
"""

SMALL_CUDA = r"""
#include <cstdint>
__global__ void relu_kernel(const float* x, float* y, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
extern "C" void relu(const float* x, float* y, int64_t n) { relu_kernel<<<(n + 255) / 256, 256>>>(x, y, n); }
"""

KERNELBENCH_RELU = r"""
#include <torch/extension.h>
torch::Tensor relu_cpu(torch::Tensor x) {
    TORCH_CHECK(x.is_contiguous(), "x must be contiguous");
    auto y = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const int64_t n = x.numel();
    #pragma omp parallel for simd
    for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] > 0.f ? xp[i] : 0.f;
    return y;
}
"""
"""The C++ of a KernelBench-form ``load_inline`` relu (``cpp_sources``, ``functions=["relu_cpu"]``)."""


def emit(metric: str, value: float, unit: str, **params: Any) -> None:
    figures.append(
        {"bench": "kernels", "metric": metric, "value": round(float(value), 4), "unit": unit, "params": params}
    )


def measure_builds(backend: str, language: str, source: str, repeats: int) -> None:
    cold, cached = [], []
    for _ in range(repeats):
        unique = f"{source}\n// {uuid.uuid4().hex}\n"
        started = time.perf_counter()
        first = build(unique, language)
        cold.append(time.perf_counter() - started)
        assert not first.cached
        for _ in range(5):
            started = time.perf_counter()
            again = build(unique, language)
            cached.append((time.perf_counter() - started) * 1000)
            assert again.cached
    emit("compile_cold_s", statistics.median(cold), "s", backend=backend, method="ctypes", repeats=repeats)
    emit("compile_cached_ms", statistics.median(cached), "ms", backend=backend, method="ctypes")


def emit_skipped(metric: str, reason: str, **params: Any) -> None:
    """A figure that could not be measured here: printed with ``value`` null and the reason."""
    figures.append({"bench": "kernels", "metric": metric, "value": None, "skipped": reason, "params": params})


def measure_prelude(fresh: bool) -> None:
    """``prelude_build_s``: precompile the torch prelude in a fresh cache folder (``fresh``), or read the
    time the machine's cached prelude took (recorded when it was built)."""
    import os

    from horizongym.envs.kernels import inline_build

    if not fresh:
        recorded = inline_build.prelude_folder() / inline_build.PRELUDE_SECONDS
        if recorded.exists():
            emit("prelude_build_s", float(recorded.read_text()), "s", cache="machine")
        else:
            emit_skipped("prelude_build_s", "the cached prelude predates its recorded build time; run without --quick")
        return
    previous = os.environ.get("HORIZONGYM_CACHE")
    with tempfile.TemporaryDirectory(prefix="hg-prelude-") as folder:
        os.environ["HORIZONGYM_CACHE"] = folder
        try:
            started = time.perf_counter()
            inline_build.prelude_folder()
            emit("prelude_build_s", time.perf_counter() - started, "s", cache="fresh")
        finally:
            if previous is None:
                os.environ.pop("HORIZONGYM_CACHE", None)
            else:
                os.environ["HORIZONGYM_CACHE"] = previous


def measure_inline_fast(repeats: int) -> None:
    """``compile_cold_s`` / ``compile_cached_ms`` of ``method=load_inline_fast`` (prelude already built)."""
    import torch

    from horizongym.envs.kernels import inline_build

    inline_build.prelude_folder()
    cold, cached = [], []
    x = torch.randn(1000)
    for _ in range(repeats):
        source = f"{KERNELBENCH_RELU}// {uuid.uuid4().hex}\n"
        started = time.perf_counter()
        module = inline_build.load_inline("relu", cpp_sources=source, functions=["relu_cpu"], extra_cflags=["-O3"])
        cold.append(time.perf_counter() - started)
        assert torch.equal(module.relu_cpu(x), x.clamp(min=0))
        for _ in range(5):
            started = time.perf_counter()
            inline_build.load_inline("relu", cpp_sources=source, functions=["relu_cpu"], extra_cflags=["-O3"])
            cached.append((time.perf_counter() - started) * 1000)
    method = {"backend": "cpu", "method": "load_inline_fast"}
    emit("compile_cold_s", statistics.median(cold), "s", **method, prelude="cached", repeats=repeats)
    emit("compile_cached_ms", statistics.median(cached), "ms", **method)


def measure_torch_load_inline() -> None:
    """``method=torch_load_inline``: the same sources through torch's own builder, into a fresh folder."""
    import torch
    from torch.utils import cpp_extension

    method = {"backend": "cpu", "method": "torch_load_inline"}
    if not cpp_extension.is_ninja_available():
        reason = "torch's load_inline needs ninja, which is not installed here (pip install ninja)"
        emit_skipped("compile_cold_s", reason, **method)
        emit_skipped("compile_cached_ms", reason, **method)
        return
    name = f"bench_relu_{uuid.uuid4().hex[:8]}"
    x = torch.randn(1000)
    with tempfile.TemporaryDirectory() as folder:
        options: dict[str, Any] = {"build_directory": folder, "extra_cflags": ["-O3", "-fopenmp"]}
        started = time.perf_counter()  # fresh lists each call: torch's load_inline appends to the ones it gets
        module = cpp_extension.load_inline(name, [KERNELBENCH_RELU], functions=["relu_cpu"], **options)
        emit("compile_cold_s", time.perf_counter() - started, "s", **method)
        assert torch.equal(module.relu_cpu(x), x.clamp(min=0))
        started = time.perf_counter()
        cpp_extension.load_inline(name, [KERNELBENCH_RELU], functions=["relu_cpu"], **options)
        emit("compile_cached_ms", (time.perf_counter() - started) * 1000, "ms", **method)


def measure_evaluations(backend: str, experts: list[str], cv_task: str, repeats: int) -> None:
    language = "cpp" if backend == "cpu" else "cuda"
    evaluator = KernelEvaluator(backend)
    medians = []
    code = SOLUTIONS[cv_task][language]
    for _ in tqdm(range(repeats), desc=f"timing noise ({cv_task})", unit="eval"):
        result = evaluator.evaluate(get_task(cv_task), code)
        assert result.timing is not None, result.reason
        medians.append(result.timing.candidate_ms)
    emit("timing_cv", statistics.pstdev(medians) / statistics.fmean(medians), "ratio", backend=backend, task=cv_task)
    faster = 0
    started = time.perf_counter()
    for name in tqdm(experts, desc="expert kernels", unit="eval"):
        result = evaluator.evaluate(get_task(name), SOLUTIONS[name][language])
        speedup = result.speedup if result.speedup is not None else 0.0
        faster += speedup >= 1.0
        emit("expert_speedup", speedup, "x", backend=backend, task=name, status=result.status)
    elapsed = time.perf_counter() - started
    emit("evals_per_min", len(experts) / elapsed * 60, "evals/min", backend=backend)
    emit("experts_faster", faster, "tasks", backend=backend, of=len(experts))


def measure_exploits(backend: str, trials: int) -> None:
    evaluator = KernelEvaluator(backend, trials=trials)
    caught = 0
    for exploit in tqdm(EXPLOITS, desc="exploit corpus", unit="exploit"):
        result = evaluator.evaluate(get_task(exploit.task), exploit.source)
        caught += not result.correct
    emit("exploits_caught", caught, "exploits", backend=backend)
    emit("exploits_total", len(EXPLOITS), "exploits", backend=backend)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="under a minute: fewer experts, no torch load_inline")
    args = parser.parse_args()
    import torch

    measure_builds("cpu", "cpp", SMALL_CPP, repeats=3)
    measure_builds("compile-only", "cuda", SMALL_CUDA, repeats=1 if args.quick else 3)
    measure_prelude(fresh=not args.quick)
    measure_inline_fast(repeats=1 if args.quick else 3)
    if args.quick:
        reason = "full run only (about half a minute); run without --quick"
        emit_skipped("compile_cold_s", reason, backend="cpu", method="torch_load_inline")
    else:
        measure_torch_load_inline()
    backends = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for backend in backends:
        language = "cpp" if backend == "cpu" else "cuda"
        experts = sorted(name for name, files in SOLUTIONS.items() if language in files)
        measure_evaluations(backend, experts[:5] if args.quick else experts, "softmax", repeats=10)
        measure_exploits(backend, trials=5 if args.quick else 100)
    for figure in figures:
        print(json.dumps(figure, ensure_ascii=False))


if __name__ == "__main__":
    main()
