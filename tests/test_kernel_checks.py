"""KernelGen's static rule checks, build API and reward schemes: fast unit tests, no evaluation process."""

from __future__ import annotations

import pytest
import torch

from horizongym.envs.kernels.api import CompileError, build, load_kernel, trim_compiler_output
from horizongym.envs.kernels.evaluator import EvalResult, Timing, compare
from horizongym.envs.kernels.rewards import KevinReward, MilestoneReward, discounted_returns, make_scheme
from horizongym.envs.kernels.static_check import check_source

CLEAN = """
import math
import torch
import torch.nn as nn
from horizongym.envs.kernels.api import load_kernel

lib = load_kernel("extern \\"C\\" void f(float* y) {}")


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        y = torch.empty(x.shape[0], self.linear.weight.shape[0])
        lib.f(y)
        return y.view(-1)
"""


def codes(source: str) -> set[str]:
    return {violation.code for violation in check_source(source)}


def test_a_rule_abiding_candidate_has_no_violations() -> None:
    assert check_source(CLEAN) == []


@pytest.mark.parametrize(
    ("snippet", "code"),
    [
        ("import os", "forbidden_import"),
        ("import numpy as np", "forbidden_import"),
        ("import torch.utils.cpp_extension", "forbidden_import"),
        ("from torch.utils.cpp_extension import CUDA_HOME", "forbidden_import"),
        ("import torch.nn.functional as F", "torch_functional"),
        ("from torch.nn import functional", "torch_functional"),
        ("y = torch.nn.functional.relu", "torch_functional"),
        ("y = nn.functional.relu", "torch_functional"),
        ("try:\n    pass\nexcept Exception:\n    pass", "try_except"),
        ("y = eval('1')", "forbidden_name"),
        ("y = getattr(torch, 'relu')", "forbidden_name"),
        ("y = torch.__dict__", "forbidden_attribute"),
        ("y = x.__class__", "dunder"),
        ("y = torch.serialization.sys", "forbidden_attribute"),
        ("y = nn.modules.module", "forbidden_attribute"),
        ("y = nn.init.torch", "forbidden_attribute"),
        ("y = (i for i in ()).gi_frame", "forbidden_attribute"),
        ("t = torch", "module_as_value"),
        ("f = nn.init", "module_as_value"),
        ("lib.path = 1", "attribute_assignment"),
        ("y = torch.zeros(3).apply_(abs)", "host_escape"),
        ("from horizongym.envs.kernels.api import build", "forbidden_attribute"),
        ("class P:\n    def __reduce__(self):\n        return (print, ())", "dunder"),
        ("y = __builtins__", "dunder"),
        ("y = torch._C", "forbidden_attribute"),
        ("torch.cuda.Event = object", "module_patch"),
        ("torch.relu = abs", "module_patch"),
        ("y = torch.cuda.synchronize", "forbidden_attribute"),
        ("torch.set_num_threads(8)", "forbidden_attribute"),
        ("y = torch.ones(2).numpy()", "host_escape"),
        ("global lib", "global_state"),
        ("from . import x", "forbidden_import"),
    ],
)
def test_each_rule_is_enforced(snippet: str, code: str) -> None:
    assert code in codes(CLEAN + "\n" + snippet + "\n")


def test_state_written_in_forward_is_flagged_but_not_in_init() -> None:
    assert codes(CLEAN) == set()
    leaking = CLEAN.replace("        return y.view(-1)", "        self.cache = y\n        return y.view(-1)")
    assert codes(leaking) == {"state_in_forward"}


def test_syntax_error_and_missing_model_new_are_reported_with_the_line() -> None:
    (violation,) = check_source("def broken(:\n")
    assert violation.code == "syntax_error" and "line 1" in violation.detail
    assert codes(CLEAN.replace("class ModelNew", "class Other")) == {"missing_model_new"}


RELU = r"""
#include <cstdint>
extern "C" void relu(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
extern "C" void fill(float* y, double value, int64_t n, bool negate) {
    for (int64_t i = 0; i < n; ++i) y[i] = negate ? -(float)value : (float)value;
}
"""


def test_load_kernel_builds_once_and_converts_arguments() -> None:
    first = build(RELU)
    again = build(RELU)
    assert again.cached and again.path == first.path
    lib = load_kernel(RELU)
    x = torch.randn(1000)
    y = torch.empty_like(x)
    lib.relu(x, y, x.numel())
    torch.testing.assert_close(y, torch.relu(x))
    lib.fill(y, 2.5, y.numel(), True)
    assert torch.all(y == -2.5)
    with pytest.raises(TypeError, match="argument 1 is a str"):
        lib.relu(x, "y", 3)
    with pytest.raises(AttributeError, match="extern"):
        _ = lib.gelu


def test_compile_errors_name_the_kernel_file_and_are_cached() -> None:
    broken = 'extern "C" void f(float* y) { y[0] = ; }  // unique-4711'
    with pytest.raises(CompileError, match=r"kernel\.cpp:1:.*error") as first:
        build(broken)
    assert "/tmp" not in str(first.value)
    with pytest.raises(CompileError) as second:
        build(broken)
    assert str(second.value) == str(first.value)


def test_compiler_output_is_trimmed() -> None:
    text = "\n".join(f"/tmp/x/k.cu({i}): error: bad" for i in range(100))
    trimmed = trim_compiler_output(text, "/tmp/x/k.cu", "kernel.cu")
    assert trimmed.startswith("kernel.cu(0): error") and "60 more lines" in trimmed


def test_compare_reports_the_worst_element_under_dtype_tolerance() -> None:
    expected = torch.zeros(3, 4).numpy()
    assert compare(expected, expected + 5e-5, "out")[0]
    actual = expected.copy()
    actual[2, 1] = 0.5
    ok, error, detail = compare(expected, actual, "out")
    assert not ok and error == pytest.approx(0.5) and "[2, 1]" in detail and "1 of 12" in detail
    assert "shape" in compare(expected, expected[:2], "out")[2]
    assert compare(expected.astype("float16"), expected.astype("float16") + 5e-3, "half")[0]


def result(status: str, speedup: float = 1.0, compiled_ms: float | None = None) -> EvalResult:
    timing = Timing(reference_ms=speedup, candidate_ms=1.0, trials=10, torch_compile_ms=compiled_ms)
    return EvalResult(status, timing=timing if status == "correct" else None)  # type: ignore[arg-type]


def test_kevin_reward_is_point_three_plus_speedup_when_correct() -> None:
    kevin = KevinReward()
    assert kevin.components(result("correct", 2.0)) == {"correct": 0.3, "speedup": 2.0}
    assert sum(kevin.components(result("incorrect")).values()) == 0.0
    assert sum(kevin.components(result("hack")).values()) == 0.0
    assert kevin.components(result("compiled")) == {"compile": 0.1}


def test_a_suspicious_speedup_is_rewarded_at_most_ten() -> None:
    flagged = result("correct", 40.0)
    flagged.suspicious = True
    assert KevinReward().components(flagged) == {"correct": 0.3, "speedup": 10.0}
    assert KevinReward().components(result("correct", 40.0)) == {"correct": 0.3, "speedup": 40.0}


def test_milestone_reward_levels() -> None:
    milestones = MilestoneReward()
    assert milestones.components(result("compile_error")) == {"milestone": -1.0}
    assert milestones.components(result("hack")) == {"milestone": -1.0}
    assert milestones.components(result("correct", 1.04)) == {"milestone": 1.0}
    assert milestones.components(result("correct", 1.2)) == {"milestone": 2.0}
    assert milestones.components(result("correct", 1.2, compiled_ms=1.1)) == {"milestone": 3.0}
    assert milestones.components(result("correct", 1.2, compiled_ms=1.0)) == {"milestone": 2.0}


def test_discounted_returns_by_hand() -> None:
    # G2 = 2; G1 = 0 + 0.4 * 2 = 0.8; G0 = 1 + 0.4 * 0.8 = 1.32
    assert discounted_returns([1.0, 0.0, 2.0], 0.4) == pytest.approx([1.32, 0.8, 2.0])
    assert make_scheme("kevin").returns([1.0, 0.0, 2.0]) == pytest.approx([1.32, 0.8, 2.0])
    assert make_scheme("milestones").returns([1.0, -1.0]) == [1.0, -1.0]
    with pytest.raises(ValueError, match="kevin"):
        make_scheme("speed")


def test_protocol_rejects_malformed_messages() -> None:
    from multiprocessing import Pipe

    import numpy as np

    from horizongym.envs.kernels import protocol

    ours, theirs = Pipe()
    protocol.send(theirs, "checked", {"seed": 3}, [np.arange(6, dtype=np.float32).reshape(2, 3)])
    message = protocol.receive(ours, {"checked"})
    assert message.meta == {"seed": 3} and message.arrays[0].shape == (2, 3) and message.arrays[0][1, 2] == 5
    for garbage in (
        b"\x80\x04\x95 not json",
        b'{"kind": "done"}',
        b'{"kind": "checked", "arrays": [{"dtype": "object"}]}',
    ):
        theirs.send_bytes(garbage)
        with pytest.raises(protocol.ProtocolError):
            protocol.receive(ours, {"checked"})
    theirs.send_bytes(b'{"kind": "checked", "arrays": [{"dtype": "float32", "shape": [4]}]}')
    theirs.send_bytes(b"\x00" * 8)  # half the bytes the header promised
    with pytest.raises(protocol.ProtocolError, match="8 bytes"):
        protocol.receive(ours, {"checked"})


def test_built_libraries_may_only_import_math_memory_and_openmp() -> None:
    from horizongym.envs.kernels.inspect_library import KernelRejected

    with pytest.raises(KernelRejected, match="fopen") as rejected:
        build('#include <cstdio>\nextern "C" void f(float* y) { FILE* h = std::fopen("x", "r"); y[0] = h != nullptr; }')
    assert rejected.value.code == "forbidden_import"
    with pytest.raises(KernelRejected, match="rdtsc"):
        build('#include <x86intrin.h>\nextern "C" void f(float* y) { y[0] = (float)__rdtsc(); }')
    build(
        '#include <cmath>\nextern "C" void f(float* y, long n) {\n#pragma omp parallel for\n'
        "for (long i = 0; i < n; ++i) y[i] = std::tanh(std::exp(y[i])); }"
    )
