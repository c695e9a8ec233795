"""Packaging: every sub-package is listed in pyproject.toml, the embedded SWE library ships as
package data, and the CI entry calls make test."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def test_the_embedded_swe_library_is_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    swe = ROOT / "envs" / "swe"
    shipped = {path for pattern in patterns["horizongym.envs.swe"] for path in swe.glob(pattern)}
    files = {path for path in (swe / "embedded").rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    assert files and files <= shipped, sorted(str(p) for p in files - shipped)


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
