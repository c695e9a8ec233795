"""What a release's tests need installed, as its own metadata declares it, pinned for the sandbox.

Declared (:func:`declared_requirements`), in this order, each source once:

- the runtime dependencies: ``[project] dependencies`` (PEP 621), ``[options] install_requires``
  in ``setup.cfg``, or a literal ``install_requires=`` in ``setup.py``'s ``setup(...)`` call;
- the test extras (``[project.optional-dependencies]``, ``[options.extras_require]``, a literal
  ``extras_require=``) and dependency groups (PEP 735 ``[dependency-groups]``, ``include-group``
  followed) named ``test``, ``tests`` or ``testing``; a literal ``tests_require=``;
- when none of those name a test extra: ``deps`` of ``tox.ini``'s ``[testenv]`` (plain
  requirement lines; ``-r`` files and ``{...}`` substitutions are not followed).

Added: the modules whose warning categories the pytest configuration's ``filterwarnings``
names (``ignore::coverage.exceptions.CoverageWarning`` makes pytest import ``coverage`` at
start-up, so it is installed even though pytest-cov's options are dropped).

Left out, with the reason: pytest itself (the sandbox's runner is pinned,
:data:`~horizongym.envs.swe.packages.TEST_REQUIREMENTS`), the release itself, and the
coverage and report plugins whose options :mod:`horizongym.envs.swe.testsetup` neutralises.

Pinned (:func:`pin_requirements`): ``pip download --only-binary :all: --python-version 3.11``
with the pinned runner in the same resolution, so everything fits it; the pins are the wheels
pip picked. A requirement with no wheel for the sandbox's Python is dropped and reported (each
is tried alone to find which). The pins are cached by a hash of the requirements
(:func:`horizongym.cache.cached`); the instance records them, so its image is rebuilt from the
same wheels however PyPI changes later.
"""

from __future__ import annotations

import ast
import configparser
import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from horizongym.cache import cached
from horizongym.envs.swe.packages import IMAGE_PYTHON, TEST_REQUIREMENTS, SourceError, pip_download

TEST_EXTRAS = ("test", "tests", "testing")
NOT_INSTALLED = {
    "pytest": "the sandbox's pytest is pinned",
    "pytest-cov": "coverage options are neutralised",
    "coverage": "coverage options are neutralised",
    "pytest-html": "report options are neutralised",
    "pytest-xdist": "tests run in one process",
    "pytest-benchmark": "report options are neutralised",
    "codecov": "coverage options are neutralised",
    "pytest-mypy": "linters are not run as tests",
    "pytest-flake8": "linters are not run as tests",
    "pytest-ruff": "linters are not run as tests",
    "pytest-checkdocs": "linters are not run as tests",
    "pytest-black": "linters are not run as tests",
    "tox": "a CI tool, not used by the tests",
    "nox": "a CI tool, not used by the tests",
    "setuptools": "a build tool, not used by the tests",
    "setuptools-scm": "a build tool, not used by the tests",
    "wheel": "a build tool, not used by the tests",
    "build": "a build tool, not used by the tests",
    "pip": "a build tool, not used by the tests",
}
"""Requirements never installed, with the reason (names normalised as in PEP 503)."""

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_WHEEL = re.compile(r"^([A-Za-z0-9_.]+)-([A-Za-z0-9_.+!]+)-")


@dataclass(frozen=True)
class TestRequirements:
    """The requirements a release declares for its tests, what was left out, and where they came from."""

    requirements: list[str]
    sources: list[str] = field(default_factory=list)
    """Where they were read (``pyproject.toml [project.optional-dependencies] tests``, ...)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Requirement -> why it is not installed."""


def normalise(name: str) -> str:
    """PEP 503's normal form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    return normalise(match.group(1)) if match else ""


def declared_requirements(
    files: Mapping[str, bytes], own_name: str, warning_modules: Sequence[str] = ()
) -> TestRequirements:
    """What the release's metadata says its tests need (see the module docstring), plus
    ``warning_modules`` (modules the pytest configuration's ``filterwarnings`` imports, taken as
    distribution names; one installed even if it is in :data:`NOT_INSTALLED`)."""
    found: list[tuple[str, list[str]]] = []
    pyproject = _toml(files, "pyproject.toml")
    project = pyproject.get("project", {})
    setup_cfg = _ini(files, "setup.cfg")
    setup_py = _setup_call(files)
    if project.get("dependencies"):
        found.append(("pyproject.toml [project] dependencies", list(project["dependencies"])))
    elif setup_cfg.has_option("options", "install_requires"):
        found.append(("setup.cfg [options] install_requires", _lines(setup_cfg.get("options", "install_requires"))))
    elif isinstance(setup_py.get("install_requires"), list):
        found.append(("setup.py install_requires", list(setup_py["install_requires"])))
    runtime = len(found)
    extras = project.get("optional-dependencies", {})
    groups = pyproject.get("dependency-groups", {})
    cfg_extras = (
        dict(setup_cfg.items("options.extras_require")) if setup_cfg.has_section("options.extras_require") else {}
    )
    py_extras = setup_py.get("extras_require") if isinstance(setup_py.get("extras_require"), dict) else {}
    for extra in TEST_EXTRAS:
        if extra in extras:
            found.append((f"pyproject.toml [project.optional-dependencies] {extra}", list(extras[extra])))
        if extra in groups:
            found.append((f"pyproject.toml [dependency-groups] {extra}", _group(groups, extra, set())))
        if extra in cfg_extras:
            found.append((f"setup.cfg [options.extras_require] {extra}", _lines(cfg_extras[extra])))
        if isinstance(py_extras, dict) and isinstance(py_extras.get(extra), list):
            found.append((f"setup.py extras_require {extra}", list(py_extras[extra])))
    if isinstance(setup_py.get("tests_require"), list):
        found.append(("setup.py tests_require", list(setup_py["tests_require"])))
    if len(found) == runtime:  # no test extra: what tox installs for the tests
        tox = _ini(files, "tox.ini")
        if tox.has_option("testenv", "deps"):
            deps = [line for line in _lines(tox.get("testenv", "deps")) if not line.startswith("-") and "{" not in line]
            found.append(("tox.ini [testenv] deps", deps))
    requirements: list[str] = list(warning_modules)
    if warning_modules:
        found.append(("pytest filterwarnings categories", list(warning_modules)))
    skipped: dict[str, str] = {}
    own = normalise(own_name)
    for _, items in found:
        for item in items:
            text = str(item).strip()
            name = requirement_name(text)
            if not name or text in requirements or text in skipped:
                continue
            if name in {requirement_name(m) for m in warning_modules}:
                continue
            if name == own:
                skipped[text] = "the release itself"
            elif name in NOT_INSTALLED:
                skipped[text] = NOT_INSTALLED[name]
            else:
                requirements.append(text)
    return TestRequirements(requirements, [source for source, _ in found], skipped)


def pin_requirements(requirements: list[str]) -> tuple[list[str], dict[str, str]]:
    """``(pins, dropped)``: exact ``NAME==VERSION`` of every wheel the requirements need, and the
    requirements left out for having no wheel for the sandbox's Python (with pip's error)."""
    if not requirements:
        return [], {}
    try:
        return _pins(requirements), {}
    except SourceError:
        pass
    usable: list[str] = []
    dropped: dict[str, str] = {}
    for requirement in requirements:
        try:
            _pins([requirement])
            usable.append(requirement)
        except SourceError as error:
            dropped[requirement] = str(error)[:300]
    return (_pins(usable) if usable else []), dropped


def _pins(requirements: list[str]) -> list[str]:
    """The pins of one resolution, cached by the hash of its requirements and the runner's pins."""
    text = "\n".join([IMAGE_PYTHON, *TEST_REQUIREMENTS, "", *sorted(requirements)])
    key = hashlib.sha256(text.encode()).hexdigest()[:20]

    def build(folder: Path) -> None:
        wheels = folder / "wheels"
        wheels.mkdir()
        arguments = ["--only-binary", ":all:", "--python-version", IMAGE_PYTHON, *TEST_REQUIREMENTS, *requirements]
        pip_download(wheels, arguments)
        runner = {requirement_name(pin) for pin in TEST_REQUIREMENTS}
        pins = []
        for wheel in sorted(wheels.glob("*.whl")):
            match = _WHEEL.match(wheel.name)
            if match and normalise(match.group(1)) not in runner:
                pins.append(f"{normalise(match.group(1))}=={match.group(2)}")
        (folder / "pins.txt").write_text("\n".join(pins))
        for wheel in wheels.iterdir():
            wheel.unlink()  # the image's wheels are fetched by exact pin (packages.download_wheels)

    folder = cached(f"swe-pins-{key}", build)
    return [line for line in (folder / "pins.txt").read_text().splitlines() if line]


def _toml(files: Mapping[str, bytes], name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(files[name].decode("utf-8", "replace")) if name in files else {}
    except tomllib.TOMLDecodeError:
        return {}


def _ini(files: Mapping[str, bytes], name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    if name in files:
        try:
            parser.read_string(files[name].decode("utf-8", "replace"), source=name)
        except configparser.Error:
            return configparser.ConfigParser(interpolation=None)
    return parser


def _lines(value: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in value.splitlines() if line.split("#", 1)[0].strip()]


def _group(groups: Mapping[str, object], name: str, seen: set[str]) -> list[str]:
    """A PEP 735 dependency group's requirements, its ``include-group`` entries expanded."""
    if name in seen:
        return []
    seen.add(name)
    items = groups.get(name)
    result: list[str] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            result.append(item)
        elif isinstance(item, dict) and isinstance(item.get("include-group"), str):
            result.extend(_group(groups, item["include-group"], seen))
    return result


def _setup_call(files: Mapping[str, bytes]) -> dict[str, Any]:
    """The literal keyword arguments of ``setup(...)`` in ``setup.py`` (others are not evaluated)."""
    if "setup.py" not in files:
        return {}
    try:
        tree = ast.parse(files["setup.py"].decode("utf-8", "replace"))
    except SyntaxError:
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup":
            result: dict[str, Any] = {}
            for keyword in node.keywords:
                if keyword.arg:
                    try:
                        result[keyword.arg] = ast.literal_eval(keyword.value)
                    except ValueError:
                        continue
            return result
    return {}
