"""The KernelGen task catalog, the KernelBench loader and the hand-written expert kernels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from horizongym.agents.experts.kernel_solutions import KERNELS, SOLUTIONS, load_kernels, load_solutions
from horizongym.envs.kernels.catalog import BUILTIN_ROOT, TASKS, get_task, tasks_at
from horizongym.envs.kernels.kernelbench import load_kernelbench
from horizongym.envs.kernels.types import KernelTask

SEEDS = (0, 1, 2)
INTEGER_OUTPUTS = {"argmax_last_dim"}


def _namespace(source: str) -> dict[str, Any]:
    """``source`` executed into a fresh module namespace."""
    namespace: dict[str, Any] = {"__name__": "candidate"}
    exec(compile(source, "<kernel-task>", "exec"), namespace)
    return namespace


# -- catalog -----------------------------------------------------------------------------------


def test_catalog_size_levels_and_unique_ids() -> None:
    assert len(TASKS) >= 30
    assert {task.level for task in TASKS} == {1, 2, 3}
    assert len(tasks_at(1)) >= 16 and len(tasks_at(2)) >= 10 and len(tasks_at(3)) >= 5
    assert len({task.id for task in TASKS}) == len(TASKS)
    assert len({task.name for task in TASKS}) == len(TASKS)
    assert tasks_at() == list(TASKS)
    for task in TASKS:
        assert task.name.isidentifier() and task.name == task.name.lower()
        assert task.description
        assert set(task.sizes) == {"cpu", "cuda"}


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.id)
def test_task_renders_and_runs_on_cpu(task: KernelTask) -> None:
    cuda = task.render("cuda")
    compile(cuda, task.id, "exec")
    for name in task.sizes["cuda"]:
        assert f"\n{name} = " in "\n" + cuda
    namespace = _namespace(task.render("cpu"))
    torch.manual_seed(0)
    model = namespace["Model"](*namespace["get_init_inputs"]())
    inputs = namespace["get_inputs"]()
    assert inputs and all(isinstance(x, torch.Tensor) and x.dtype == torch.float32 for x in inputs)
    with torch.no_grad():
        out = model(*inputs)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == (torch.int64 if task.name in INTEGER_OUTPUTS else torch.float32)
    assert out.numel() > 0


def test_get_task_by_name_and_id() -> None:
    assert get_task("relu") is get_task("L1/relu")
    assert get_task("L3/mlp").level == 3
    assert get_task("softmax").render("cpu").startswith("import torch\n")
    with pytest.raises(KeyError, match="layer_norm"):
        get_task("layer_nrom")
    with pytest.raises(ValueError):
        tasks_at(4)


def test_builtin_files_are_the_gpu_reference_programs() -> None:
    files = sorted(BUILTIN_ROOT.glob("level*/*.py"))
    assert len(files) == len(TASKS)
    by_file = {(int(path.parent.name.removeprefix("level")), path.stem.split("_", 1)[1]): path for path in files}
    for task in TASKS:
        assert task.render("cuda") == by_file[task.level, task.name].read_text()
        assert "BATCH = " not in task.source and "class Model(nn.Module)" in task.source


# -- KernelBench loader ------------------------------------------------------------------------

_REFERENCE = """import torch
import torch.nn as nn

N = 8


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a):
        return {expression}


def get_inputs():
    return [torch.randn(N, N)]


def get_init_inputs():
    return []
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_kernelbench_loader(tmp_path: Path) -> None:
    root = tmp_path / "KernelBench"
    _write(root / "level1" / "10_ReLU.py", _REFERENCE.format(expression="torch.relu(a)"))
    _write(root / "level1" / "2_Standard_matrix_multiplication_.py", _REFERENCE.format(expression="a @ a"))
    _write(root / "level2" / "1_Matmul_Tanh_Scale.py", _REFERENCE.format(expression="torch.tanh(a @ a) * 2"))
    tasks = load_kernelbench(root)
    assert [(task.level, task.name) for task in tasks] == [
        (1, "2_standard_matrix_multiplication"),
        (1, "10_relu"),
        (2, "1_matmul_tanh_scale"),
    ]
    assert [task.name for task in load_kernelbench(str(root), levels=[2])] == ["1_matmul_tanh_scale"]
    relu = tasks[1]
    assert relu.sizes == {} and relu.render("cuda") == relu.render("cpu") == relu.source
    namespace = _namespace(relu.render("cpu"))
    x = namespace["get_inputs"]()[0]
    assert torch.equal(namespace["Model"]()(x), torch.relu(x))


def test_kernelbench_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_kernelbench(tmp_path / "missing")
    root = tmp_path / "bench"
    _write(root / "level1" / "1_ReLU.py", _REFERENCE.format(expression="torch.relu(a)"))
    with pytest.raises(FileNotFoundError, match="level3"):
        load_kernelbench(root, levels=[3])
    _write(root / "level2" / "1_Broken.py", "import torch\n\ndef get_inputs():\n    return []\n")
    with pytest.raises(ValueError, match="class Model"):
        load_kernelbench(root)


_SIZED = """import torch
import torch.nn as nn
import math

N = 64
SCALE = 0.5

class Model(nn.Module):
    def forward(self, a):
        return a * SCALE * math.pi


def get_inputs():
    return [torch.randn(N, N)]


def get_init_inputs():
    return []
"""


def test_kernelbench_loader_reads_names_descriptions_and_cpu_sizes(tmp_path: Path) -> None:
    root = tmp_path / "tasks"
    _write(root / "level1" / "1_Scale.py", _SIZED)
    _write(root / "level1" / "2_ReLU.py", _REFERENCE.format(expression="torch.relu(a)"))
    toml = '["1_Scale"]\nname = "scale"\ndescription = "Scale by pi/2."\ncpu = { N = 8 }\n'
    _write(root / "level1" / "tasks.toml", toml)
    scale, relu = load_kernelbench(root)
    assert (scale.id, scale.description) == ("L1/scale", "Scale by pi/2.")
    assert (relu.id, relu.description) == ("L1/2_relu", "ReLU")
    assert scale.sizes == {"cpu": {"N": 8, "SCALE": 0.5}, "cuda": {"N": 64, "SCALE": 0.5}}
    assert "N = 64" not in scale.source and "import math" in scale.source
    assert scale.render("cuda") == _SIZED
    assert scale.render("cpu") == _SIZED.replace("N = 64", "N = 8")
    namespace = _namespace(scale.render("cpu"))
    assert namespace["get_inputs"]()[0].shape == (8, 8)


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ('["9_Missing"]\nname = "missing"\n', "not in"),
        ('["1_Scale"]\ncpu = { M = 8 }\n', "not top-level number constants"),
        ('["1_Scale"]\ncpu = { N = "big" }\n', "must be a number"),
        ('["1_Scale"]\nsizes = 3\n', "unknown fields"),
        ('["1_Scale"]\nname = "Big Scale"\n', "snake_case"),
        ('["1_Scale"]\nname = "2_relu"\n', "both give the task name"),
        ("[1_Scale\n", "not valid TOML"),
    ],
)
def test_kernelbench_loader_rejects_a_bad_tasks_toml(tmp_path: Path, toml: str, match: str) -> None:
    _write(tmp_path / "level1" / "1_Scale.py", _SIZED)
    _write(tmp_path / "level1" / "2_ReLU.py", _REFERENCE.format(expression="torch.relu(a)"))
    _write(tmp_path / "level1" / "tasks.toml", toml)
    with pytest.raises(ValueError, match=match):
        load_kernelbench(tmp_path)


# -- expert solutions --------------------------------------------------------------------------


def test_expert_solution_coverage() -> None:
    assert len([name for name, files in SOLUTIONS.items() if "cpp" in files]) >= 10
    cuda = [name for name, files in SOLUTIONS.items() if "cuda" in files]
    assert len(cuda) >= 4
    for name in SOLUTIONS:
        get_task(name)
    for name in cuda:
        kernel = KERNELS[name]["cuda"]
        assert "__global__" in kernel and 'extern "C"' in kernel and "<<<" in kernel
        assert "load_kernel(SOURCE, 'cuda')" in SOLUTIONS[name]["cuda"]


@pytest.mark.parametrize("name", sorted(name for name, files in SOLUTIONS.items() if "cpp" in files))
def test_cpp_expert_matches_reference(name: str) -> None:
    reference = _namespace(get_task(name).render("cpu"))
    candidate = _namespace(SOLUTIONS[name]["cpp"])
    for seed in SEEDS:
        torch.manual_seed(seed)
        model = reference["Model"](*reference["get_init_inputs"]())
        torch.manual_seed(seed)
        model_new = candidate["ModelNew"](*reference["get_init_inputs"]())
        torch.manual_seed(seed + 100)
        inputs = reference["get_inputs"]()
        originals = [x.clone() for x in inputs]
        with torch.no_grad():
            expected = model(*inputs)
            got = model_new(*inputs)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
        for before, after in zip(originals, inputs, strict=True):
            assert torch.equal(before, after), "the candidate modified an input"


def test_solution_files_are_assembled_with_their_headers_inlined(tmp_path: Path) -> None:
    _write(tmp_path / "common.h", "#include <cstdint>\n")
    _write(tmp_path / "twice.cpp", '#include "common.h"\n#include <cmath>\n\nextern "C" void twice() {}\n')
    _write(tmp_path / "twice.py", "class ModelNew(nn.Module):\n    pass\n")
    kernels = load_kernels(tmp_path)
    assert kernels == {"twice": {"cpp": '#include <cstdint>\n#include <cmath>\n\nextern "C" void twice() {}\n'}}
    candidate = load_solutions(tmp_path)["twice"]["cpp"]
    assert "#include <cstdint>" in candidate and "load_kernel(SOURCE, 'cpp')" in candidate
    assert candidate.endswith("class ModelNew(nn.Module):\n    pass\n")


def test_solution_files_errors(tmp_path: Path) -> None:
    _write(tmp_path / "lonely.cu", 'extern "C" void lonely() {}\n')
    with pytest.raises(FileNotFoundError, match=r"lonely\.py"):
        load_kernels(tmp_path)
    _write(tmp_path / "lonely.py", "class ModelNew(nn.Module):\n    pass\n")
    _write(tmp_path / "unused.py", "class ModelNew(nn.Module):\n    pass\n")
    with pytest.raises(ValueError, match=r"unused\.py"):
        load_kernels(tmp_path)
    (tmp_path / "unused.py").unlink()
    _write(tmp_path / "lonely.cu", '#include "absent.h"\nextern "C" void lonely() {}\n')
    with pytest.raises(FileNotFoundError, match=r"absent\.h"):
        load_kernels(tmp_path)
