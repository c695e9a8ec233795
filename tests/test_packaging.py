"""Packaging: every sub-package is listed in pyproject.toml, the data folders (the embedded SWE
library, the built-in kernel tasks, the expert's kernel sources) ship as package data and are in
a built wheel, whose built-in tasks load, and the CI entry calls make test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA_FOLDERS = {
    "horizongym.envs.swe": "envs/swe/embedded",
    "horizongym.envs.kernels": "envs/kernels/builtin",
    "horizongym.agents.experts": "agents/experts/kernel_sources",
}
"""Package -> its folder of package data (relative to the repository root)."""


def _data_files(folder: str) -> set[Path]:
    """The files under ``folder`` that must ship, relative to the repository root."""
    return {
        path.relative_to(ROOT)
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_every_package_folder_is_listed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"horizongym"}
    for init in ROOT.rglob("__init__.py"):
        relative = init.parent.relative_to(ROOT)
        if (
            (relative.parts and relative.parts[0] in {".venv", "tests", "build", "runs"})
            or any(part.startswith(".") for part in relative.parts)
            or relative.parts[:3] == ("envs", "swe", "embedded")  # task data: package data, not a package
        ):
            continue
        if relative.parts:
            found.add("horizongym." + ".".join(relative.parts))
    assert found == listed


@pytest.mark.parametrize(("package", "folder"), DATA_FOLDERS.items())
def test_data_folders_are_package_data(package: str, folder: str) -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package_root = ROOT.joinpath(*package.split(".")[1:])
    shipped = {path.relative_to(ROOT) for pattern in patterns[package] for path in package_root.glob(pattern)}
    files = _data_files(folder)
    assert files and files <= shipped, sorted(str(p) for p in files - shipped)


_LOAD_FROM_WHEEL = """
import hashlib, json, horizongym
from horizongym.agents.experts.kernel_solutions import SOLUTIONS
from horizongym.envs.kernels.catalog import TASKS
renders = "".join(task.id + task.render("cpu") + task.render("cuda") for task in TASKS)
print(json.dumps({
    "package": horizongym.__file__,
    "tasks": hashlib.sha256(renders.encode()).hexdigest(),
    "solutions": hashlib.sha256(json.dumps(SOLUTIONS, sort_keys=True).encode()).hexdigest(),
}))
"""


def test_the_built_wheel_holds_the_data_and_loads_the_builtin_tasks(tmp_path: Path) -> None:
    source, wheels, site = tmp_path / "source", tmp_path / "wheels", tmp_path / "site"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "runs", "build", "__pycache__", "*.egg-info"))
    offline = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    built = subprocess.run([*build, "-w", str(wheels), str(source)], capture_output=True, text=True, env=offline)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("horizongym-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    for folder in DATA_FOLDERS.values():
        missing = sorted(str(p) for p in _data_files(folder) if f"horizongym/{p.as_posix()}" not in names)
        assert not missing, f"{wheel.name} lacks {missing}"

    loaded = subprocess.run(
        [sys.executable, "-c", _LOAD_FROM_WHEEL],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**offline, "PYTHONPATH": str(site)},
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    from_wheel = json.loads(loaded.stdout.splitlines()[-1])
    assert Path(from_wheel["package"]).is_relative_to(site)
    here = subprocess.run([sys.executable, "-c", _LOAD_FROM_WHEEL], capture_output=True, text=True, check=True)
    assert json.loads(here.stdout.splitlines()[-1]) | {"package": ""} == from_wheel | {"package": ""}


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
