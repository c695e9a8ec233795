"""KernelBench-form ``load_inline`` submissions: built fast, bound, evaluated, and held to the same rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from horizongym.envs.kernels.catalog import get_task
from horizongym.envs.kernels.evaluator import KernelEvaluator
from horizongym.envs.kernels.static_check import check_source

ELEMENTWISE = {
    "relu": ("x", "in0[i] > 0.f ? in0[i] : 0.f"),
    "sigmoid": ("x", "1.f / (1.f + std::exp(-in0[i]))"),
    "add": ("a, b", "in0[i] + in1[i]"),
}


def kernelbench_file(task: str, *, forward: str = "", cpp_body: str = "", extra: str = "") -> str:
    """A candidate in KernelBench's own form: sources in strings, load_inline, ModelNew calling the module."""
    params, expression = ELEMENTWISE[task]
    names = [p.strip() for p in params.split(",")]
    signature = ", ".join(f"torch::Tensor {n}" for n in names)
    pointers = "".join(f"    const float* in{i} = {n}.data_ptr<float>();\n" for i, n in enumerate(names))
    body = cpp_body or (
        f'    TORCH_CHECK({names[0]}.is_contiguous(), "input must be contiguous");\n'
        f"    auto out = torch::empty_like({names[0]});\n{pointers}"
        "    float* y = out.data_ptr<float>();\n    const int64_t n = out.numel();\n"
        "    #pragma omp parallel for simd\n"
        f"    for (int64_t i = 0; i < n; ++i) y[i] = {expression};\n    return out;\n"
    )
    call = forward or f"return self.op.{task}_cpu({params})"
    return (
        "import torch\nimport torch.nn as nn\nfrom torch.utils.cpp_extension import load_inline\n\n"
        f'{task}_source = """\n#include <torch/extension.h>\n#include <cmath>\n\n'
        f'torch::Tensor {task}_cpu({signature}) {{\n{body}}}\n"""\n\n'
        f'{task}_cpp_source = "torch::Tensor {task}_cpu({signature});"\n\n'
        f'{task} = load_inline(\n    name="{task}",\n    cpp_sources={task}_source,\n'
        f'    functions=["{task}_cpu"],\n    verbose=False,\n    extra_cflags=["-O3"],\n    extra_ldflags=[""],\n)\n'
        f"{extra}\n\nclass ModelNew(nn.Module):\n    def __init__(self) -> None:\n        super().__init__()\n"
        f"        self.op = {task}\n\n    def forward(self, {params}):\n        {call}\n"
    )


@pytest.fixture(scope="module")
def evaluator() -> KernelEvaluator:
    return KernelEvaluator("cpu", trials=10, warmup=2, timeout_s=120)


@pytest.mark.parametrize("task", sorted(ELEMENTWISE))
def test_an_honest_kernelbench_file_is_correct_with_a_speedup(evaluator: KernelEvaluator, task: str) -> None:
    source = kernelbench_file(task)
    assert check_source(source) == []
    result = evaluator.evaluate(get_task(task), source)
    assert result.status == "correct", result.reason
    assert result.speedup is not None and result.speedup > 0
    assert result.timing is not None and result.timing.trials == 10


HACKS = {
    "functional_in_forward": (
        {"forward": "return torch.nn.functional.relu(x)"},
        "torch_functional",
    ),
    "try_except_fallback": (
        {"forward": "try:\n            return self.op.relu_cpu(x)\n        except RuntimeError:\n            return x"},
        "try_except",
    ),
    "clock_patching": ({"extra": "import time\ntime.perf_counter = lambda: 0.0\n"}, "forbidden_import"),
    "torch_op_in_cpp": ({"cpp_body": "    return torch::relu(x);\n"}, "torch_op"),
    "tensor_method_in_cpp": (
        {"cpp_body": "    auto y = torch::empty_like(x);\n    return x.clamp_min(0);\n"},
        "torch_op",
    ),
    "torch_op_in_python_forward": ({"forward": "self.op.relu_cpu(x)\n        return x.relu()"}, "torch_op"),
}


@pytest.mark.parametrize("name", sorted(HACKS))
def test_each_hack_in_kernelbench_form_scores_zero_naming_its_rule(evaluator: KernelEvaluator, name: str) -> None:
    options, code = HACKS[name]
    result = evaluator.evaluate(get_task("relu"), kernelbench_file("relu", **options))
    assert result.status == "hack", (result.status, result.reason)
    assert code in {v.code for v in result.violations}, result.reason
    assert result.speedup is None


def test_linker_flags_and_dynamic_sources_are_rules_too() -> None:
    ldflags = kernelbench_file("relu").replace('extra_ldflags=[""]', 'extra_ldflags=["-lcblas"]')
    assert {v.code for v in check_source(ldflags)} == {"forbidden_flag"}
    dynamic = kernelbench_file("relu").replace("cpp_sources=relu_source", "cpp_sources=relu_source.upper()")
    assert {v.code for v in check_source(dynamic)} == {"inline_not_static"}
    plain = kernelbench_file("relu").replace(
        "from torch.utils.cpp_extension import load_inline", "import torch.utils.cpp_extension"
    )
    assert "forbidden_import" in {v.code for v in check_source(plain)}


def test_malformed_load_inline_gets_a_clear_build_error(evaluator: KernelEvaluator) -> None:
    missing = kernelbench_file("relu").replace('functions=["relu_cpu"]', 'functions=["relu_fast"]')
    result = evaluator.evaluate(get_task("relu"), missing)
    assert result.status == "compile_error"
    assert "relu_fast" in result.message and "does not define" in result.message
    broken = kernelbench_file("relu").replace("return out;", "return out")
    result = evaluator.evaluate(get_task("relu"), broken)
    assert result.status == "compile_error"
    assert "expected ';'" in result.message.replace("‘", "'").replace("’", "'")


def test_the_kernelbench_form_expert_is_correct_with_a_speedup(evaluator: KernelEvaluator) -> None:
    from horizongym.agents.experts.kernels import KernelExpert, solution_for

    source = solution_for("swish", "cpp", "kernelbench")
    assert source is not None and "load_inline(" in source and "fast_exp" in source
    assert check_source(source) == []
    result = evaluator.evaluate(get_task("swish"), source)
    assert result.status == "correct", result.reason
    assert result.speedup is not None and result.speedup > 1.0, result.speedup
    assert solution_for("swish", "cuda", "kernelbench") is None
    with pytest.raises(ValueError, match="form must be one of"):
        KernelExpert(form="pybind")


def test_the_inline_exploits_are_in_the_corpus() -> None:
    from horizongym.envs.kernels.exploits import EXPLOITS, INLINE_EXPLOITS

    assert len(INLINE_EXPLOITS) >= 10 and set(INLINE_EXPLOITS) <= set(EXPLOITS)
    assert all("from torch.utils.cpp_extension import load_inline" in e.source for e in INLINE_EXPLOITS)
    assert len({e.name for e in EXPLOITS}) == len(EXPLOITS)


CUDA_RELU = '''import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

relu_source = """
#include <torch/extension.h>
#include <cuda_runtime.h>
INCLUDE
__global__ void relu_kernel(const float* x, float* y, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

torch::Tensor relu_cuda(torch::Tensor x) {
    TORCH_CHECK(x.is_cuda() && x.is_contiguous(), "x must be a contiguous CUDA tensor");
    auto y = torch::empty_like(x);
    const int64_t n = x.numel();
    relu_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""

relu_cpp_source = "torch::Tensor relu_cuda(torch::Tensor x);"

relu = load_inline(
    name="relu",
    cpp_sources=relu_cpp_source,
    cuda_sources=relu_source,
    functions=["relu_cuda"],
    verbose=True,
    extra_cflags=["-O3"],
    extra_cuda_cflags=["-O3", "--use_fast_math"],
)


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.op = relu

    def forward(self, x):
        return self.op.relu_cuda(x)
'''
"""KernelBench's CUDA form: kernel and host function in cuda_sources, the declaration in cpp_sources."""


def cuda_file(include: str = "") -> str:
    return CUDA_RELU.replace("INCLUDE", include)


def test_a_kernelbench_cuda_file_builds_under_compile_only() -> None:
    """nvcc builds cuda_sources, g++ the binding; the library is checked and loaded (no GPU needed)."""
    source = cuda_file()
    assert check_source(source) == []
    result = KernelEvaluator("compile-only", timeout_s=400).evaluate(get_task("relu"), source)
    assert result.status == "compiled", result.reason
    broken = source.replace("return y;", "return y")
    result = KernelEvaluator("compile-only", timeout_s=400).evaluate(get_task("relu"), broken)
    assert result.status == "compile_error" and "cuda_sources" in result.message


def test_cuda_sources_on_the_cpu_backend_and_torchs_missing_cuda_headers_get_one_plain_line(
    evaluator: KernelEvaluator,
) -> None:
    result = evaluator.evaluate(get_task("relu"), cuda_file())
    assert result.status == "compile_error"
    assert "cuda_sources need the cuda backend" in result.message
    import torch

    if (Path(torch.__file__).parent / "include/c10/cuda/impl/cuda_cmake_macros.h").exists():
        pytest.skip("this torch ships complete CUDA headers")  # a CUDA wheel: streams can be built
    stream = cuda_file("#include <c10/cuda/CUDAStream.h>")
    result = KernelEvaluator("compile-only", timeout_s=400).evaluate(get_task("relu"), stream)
    assert result.status == "compile_error"
    first = result.message.splitlines()[0]
    assert "has no complete CUDA headers" in first and "default stream" in first, first
