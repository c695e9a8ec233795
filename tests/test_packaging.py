"""Packaging: every sub-package is listed in pyproject.toml, and the CI entry calls make test."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"horizongym"}
    for init in ROOT.rglob("__init__.py"):
        relative = init.parent.relative_to(ROOT)
        if (relative.parts and relative.parts[0] in {".venv", "tests", "build", "runs"}) or any(
            part.startswith(".") for part in relative.parts
        ):
            continue
        if relative.parts:
            found.add("horizongym." + ".".join(relative.parts))
    assert found == listed


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
