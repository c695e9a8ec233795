"""How a release's own CI runs its tests: its pytest configuration, read and made safe to mine with.

pytest reads its settings from the first of ``pytest.ini``, ``.pytest.ini``, ``pyproject.toml``
(``[tool.pytest.ini_options]``), ``tox.ini`` (``[pytest]``) and ``setup.cfg`` (``[tool:pytest]``)
in the root folder that holds one (``pytest.ini`` counts even when empty; the others only with
that section); :func:`find_pytest_config` follows the same rule. The miner runs pytest from the
release root, so pytest reads that file itself and ``pythonpath``, ``filterwarnings``,
``markers``, ``--strict-markers``, ``--doctest-modules``, ``--import-mode`` and the rest apply
exactly as in the project's CI. The miner names the test files to run, so it honours
``testpaths`` and ``python_files`` itself when it picks them (:meth:`TestSetup.test_files`).

Only ``addopts`` is rewritten (:func:`neutralise_addopts`), and only when it holds options that
cannot work in a sandbox or that would defeat the miner. Those are dropped and the rest kept, in
order, passed back with ``-o addopts=...`` (pytest's ini override; the file itself is not
touched, so the agent's copy of the project is the release's):

- coverage (``--cov*``, ``--no-cov*``): pytest-cov is not installed, and its tracer would fight
  the miner's line tracer (:mod:`horizongym.envs.swe.linetrace`);
- other reports (``--junitxml``, ``--junit-prefix``, ``--html``, ``--self-contained-html``,
  ``--css``, ``--benchmark-*``, ``--result-log``): the miner writes its own JUnit XML;
- parallel and repeated runs (xdist's ``-n``/``--numprocesses``/``--dist``/``--tx``/
  ``--maxprocesses``/``--looponfail``, ``--reruns*``, ``--timeout*``, ``--count``): every test
  runs once, in one process, under the sandbox's own time limit;
- early stops and ordering from the cache (``-x``, ``--maxfail``, ``--lf``, ``--ff``, ``--nf``,
  ``--sw``, ``--sw-skip``, ``--cache-clear``): every selected test must report, and the cache
  provider is off;
- linters run as tests (``--mypy``, ``--flake8``, ``--pylint``, ``--black``, ``--isort``,
  ``--ruff``, ``--ruff-format``, ``--pycodestyle``, ``--checkdocs``): they judge style, not the
  code's behaviour;
- ``-p NAME`` of a plugin that is not a pytest built-in or a module of the release itself
  (``-p no:NAME`` is kept): a third-party plugin is either not installed, or installed from the
  test requirements and loaded by its entry point anyway.

Tests that need the network are left out: when the configuration declares a marker for them
(``network``, ``online``, ``internet``, ``requires_network``, ``needs_network``), ``-m "not
NAME"`` deselects them; tests that fail on the release with a network error (the sandbox has
no network) are reported as skipped for that reason by the miner.
"""

from __future__ import annotations

import configparser
import fnmatch
import posixpath
import re
import shlex
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

from horizongym.envs.swe.types import DEFAULT_TEST_COMMAND

CONFIG_FILES = (
    ("pytest.ini", "pytest"),
    (".pytest.ini", "pytest"),
    ("pyproject.toml", "tool.pytest.ini_options"),
    ("tox.ini", "pytest"),
    ("setup.cfg", "tool:pytest"),
)
"""pytest's configuration files in its order of precedence, with the section it reads in each."""

NETWORK_ERROR = re.compile(
    r"socket\.gaierror|Temporary failure in name resolution|Name or service not known|Network is unreachable"
    r"|No address associated with hostname|URLError|(?:requests\.exceptions|urllib3\.exceptions)\.\w*Connection"
    r"|ConnectionRefusedError|NewConnectionError|getaddrinfo failed"
)
"""What a test that failed for want of the network says (the sandbox has none)."""

NETWORK_MARKERS = ("network", "online", "internet", "requires_network", "needs_network")

BUILTIN_PLUGINS = frozenset(
    {
        "mark", "main", "runner", "fixtures", "helpconfig", "python", "terminal", "debugging", "unittest",
        "capture", "skipping", "legacypath", "tmpdir", "monkeypatch", "recwarn", "pastebin", "assertion",
        "junitxml", "doctest", "cacheprovider", "freeze_support", "setuponly", "setupplan", "stepwise",
        "warnings", "logging", "reports", "python_path", "unraisableexception", "threadexception",
        "faulthandler", "pytester", "pytester_assertions", "nose", "tmp_path",
    }
)  # fmt: skip
"""pytest's own plugins (``-p`` of these always works)."""

_DROPPED_FLAGS = {
    "--no-cov": "coverage",
    "--no-cov-on-fail": "coverage",
    "--cov-append": "coverage",
    "--cov-branch": "coverage",
    "--cov-reset": "coverage",
    "--self-contained-html": "report",
    "--looponfail": "parallel or repeated runs",
    "-f": "parallel or repeated runs",
    "-x": "stops early",
    "--exitfirst": "stops early",
    "--lf": "cache provider is off",
    "--last-failed": "cache provider is off",
    "--ff": "cache provider is off",
    "--failed-first": "cache provider is off",
    "--nf": "cache provider is off",
    "--new-first": "cache provider is off",
    "--sw": "cache provider is off",
    "--stepwise": "cache provider is off",
    "--sw-skip": "cache provider is off",
    "--stepwise-skip": "cache provider is off",
    "--cache-clear": "cache provider is off",
    "--mypy": "linter",
    "--flake8": "linter",
    "--pylint": "linter",
    "--black": "linter",
    "--isort": "linter",
    "--ruff": "linter",
    "--ruff-format": "linter",
    "--pycodestyle": "linter",
    "--checkdocs": "linter",
    "--benchmark-disable": "report",
    "--benchmark-enable": "report",
    "--benchmark-skip": "report",
    "--benchmark-only": "report",
    "--benchmark-autosave": "report",
    "--benchmark-verbose": "report",
    "--benchmark-disable-gc": "report",
}
"""Options without a value that are dropped, with the reason."""

_DROPPED_WITH_VALUE = {
    "--cov": "coverage",
    "--cov-report": "coverage",
    "--cov-config": "coverage",
    "--cov-fail-under": "coverage",
    "--cov-context": "coverage",
    "--junitxml": "report",
    "--junit-xml": "report",
    "--junit-prefix": "report",
    "--html": "report",
    "--css": "report",
    "--result-log": "report",
    "-n": "parallel or repeated runs",
    "--numprocesses": "parallel or repeated runs",
    "--dist": "parallel or repeated runs",
    "--tx": "parallel or repeated runs",
    "--maxprocesses": "parallel or repeated runs",
    "--max-worker-restart": "parallel or repeated runs",
    "--reruns": "parallel or repeated runs",
    "--reruns-delay": "parallel or repeated runs",
    "--only-rerun": "parallel or repeated runs",
    "--count": "parallel or repeated runs",
    "--timeout": "parallel or repeated runs",
    "--timeout-method": "parallel or repeated runs",
    "--maxfail": "stops early",
}
"""Options that take a value (``--opt=V``, ``--opt V`` or, for one-letter ones, ``-nV``), dropped."""

_OPTIONAL_VALUE = frozenset({"--cov"})
"""Options whose value may be left out (``--cov`` alone covers everything)."""


_ARGS_SETTINGS = frozenset(
    {"addopts", "testpaths", "python_files", "python_classes", "python_functions", "norecursedirs"}
)
"""Settings pytest splits like a shell command line (the others are one value a line)."""


class TestConfigError(ValueError):
    """A release's pytest configuration cannot be read."""

    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class Dropped:
    """An option taken out of ``addopts``, and why."""

    option: str
    reason: str


@dataclass(frozen=True)
class PytestConfig:
    """The settings pytest reads for a release (``path`` is empty when the release has none)."""

    path: str = ""
    settings: Mapping[str, str | list[str]] = field(default_factory=dict)

    def values(self, key: str) -> list[str]:
        """An ``args``/``linelist`` setting as a list (TOML lists kept; ini text split as pytest does)."""
        value = self.settings.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return [str(item) for item in value]
        if key in _ARGS_SETTINGS:
            return shlex.split(value)
        return [line.strip() for line in value.splitlines() if line.strip()]


@dataclass(frozen=True)
class TestSetup:
    """How the miner runs a release's tests: the configuration, what was left out of it, the command."""

    config: PytestConfig
    addopts: list[str]
    """``addopts`` as the miner passes it (the release's, less :attr:`dropped`)."""
    dropped: list[Dropped]
    deselect_marker: str = ""
    """A marker the configuration declares for tests that need the network (``-m "not NAME"``)."""

    @property
    def test_command(self) -> str:
        """The pytest command line: :data:`DEFAULT_TEST_COMMAND`, plus overrides where they are needed."""
        parts = [DEFAULT_TEST_COMMAND]
        if self.dropped:
            parts.append("-o " + shlex.quote(f"addopts={shlex.join(self.addopts)}"))
        if self.deselect_marker:
            parts.append(f"-m {shlex.quote(f'not {self.deselect_marker}')}")
        return " ".join(parts)

    def test_files(self, files: Mapping[str, bytes], found: list[str]) -> list[str]:
        """The test files CI collects: ``found`` (``test_*.py``, ``*_test.py``) or, when the
        configuration sets ``python_files``, the files matching it; only under ``testpaths`` if set."""
        patterns = self.config.values("python_files")
        if patterns:
            found = [
                path
                for path in files
                if path.endswith(".py")
                and posixpath.basename(path) != "conftest.py"
                and any(fnmatch.fnmatch(posixpath.basename(path), pattern) for pattern in patterns)
            ]
        roots = [posixpath.normpath(p).strip("/") for p in self.config.values("testpaths")]
        if roots and "." not in roots:
            under = [path for path in found if any(path == r or path.startswith(f"{r}/") for r in roots)]
            found = under or found  # a testpaths that matches nothing is pytest's fallback to the root
        return sorted(found)

    def warning_modules(self, own_modules: frozenset[str] = frozenset()) -> list[str]:
        """Top-level modules that ``filterwarnings`` names a category from (pytest imports them at start-up,
        so they must be installed even when the plugin that would bring them is left out)."""
        found = []
        for line in self.config.values("filterwarnings"):
            parts = line.split(":")
            category = parts[2].strip() if len(parts) > 2 else ""
            top = category.split(".")[0]
            if "." in category and top not in sys.stdlib_module_names and top not in own_modules:
                found.append(top)
        return sorted(set(found))

    def summary(self) -> dict[str, object]:
        """A JSON-friendly digest for the mining report."""
        return {
            "config": self.config.path or None,
            "dropped_options": [f"{d.option} ({d.reason})" for d in self.dropped],
            "deselected_marker": self.deselect_marker or None,
            "test_command": self.test_command,
        }


def find_pytest_config(files: Mapping[str, bytes]) -> PytestConfig:
    """The configuration pytest uses for a release run from its root (see the module docstring)."""
    for name, section in CONFIG_FILES:
        if name not in files:
            continue
        text = files[name].decode("utf-8", "replace")
        if name == "pyproject.toml":
            try:
                table = tomllib.loads(text)
            except tomllib.TOMLDecodeError as error:
                raise TestConfigError(f"{name}: not valid TOML ({error}); pytest could not read it either") from None
            options = table.get("tool", {}).get("pytest", {}).get("ini_options")
            if isinstance(options, dict):
                return PytestConfig(name, {k: v if isinstance(v, list) else str(v) for k, v in options.items()})
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=name)
        except configparser.Error as error:
            if name in ("pytest.ini", ".pytest.ini"):
                raise TestConfigError(
                    f"{name}: not a valid ini file ({error}); pytest could not read it either"
                ) from None
            continue
        if parser.has_section(section):
            return PytestConfig(name, dict(parser.items(section)))
        if name in ("pytest.ini", ".pytest.ini"):
            return PytestConfig(name, {})
    return PytestConfig()


def neutralise_addopts(args: list[str], local_modules: frozenset[str] = frozenset()) -> tuple[list[str], list[Dropped]]:
    """``(kept, dropped)``: ``args`` without the options listed in the module docstring.

    ``local_modules`` are dotted names of the release's own modules (``-p`` of one is kept).
    """
    kept: list[str] = []
    dropped: list[Dropped] = []
    index = 0
    while index < len(args):
        arg = args[index]
        name, has_value, _ = arg.partition("=")
        following = args[index + 1] if index + 1 < len(args) else None
        if arg in _DROPPED_FLAGS:
            dropped.append(Dropped(arg, _DROPPED_FLAGS[arg]))
        elif name in _DROPPED_WITH_VALUE or name.startswith("--cov-") or name.startswith("--benchmark-"):
            reason = _DROPPED_WITH_VALUE.get(name, "coverage" if name.startswith("--cov") else "report")
            takes_next = not has_value and following is not None
            if name in _OPTIONAL_VALUE and following is not None and following.startswith("-"):
                takes_next = False
            option = f"{arg} {following}" if takes_next else arg
            dropped.append(Dropped(option, reason))
            index += 1 if takes_next else 0
        elif re.fullmatch(r"-n\S+", arg):  # xdist's "-nauto", "-n4"
            dropped.append(Dropped(arg, "parallel or repeated runs"))
        elif arg == "-p" or (arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--")):
            plugin = arg[2:] if arg != "-p" else (following or "")
            taken = 2 if arg == "-p" else 1
            option = " ".join(args[index : index + taken])
            if plugin.startswith("no:") or plugin in BUILTIN_PLUGINS or plugin in local_modules:
                kept.extend(args[index : index + taken])
            else:
                dropped.append(Dropped(option, "plugin not in the sandbox or loaded by its entry point"))
            index += taken - 1
        else:
            kept.append(arg)
        index += 1
    return kept, dropped


def network_marker(config: PytestConfig) -> str:
    """The marker the configuration declares for tests that need the network, or ``""``."""
    for line in config.values("markers"):
        name = re.split(r"[:(\s]", line.strip(), maxsplit=1)[0]
        if name in NETWORK_MARKERS:
            return name
    return ""


def needs_network(failure_text: str) -> bool:
    """Whether a test's failure text is a network error."""
    return NETWORK_ERROR.search(failure_text) is not None


def read_test_setup(files: Mapping[str, bytes]) -> TestSetup:
    """How the miner runs the tests of the release whose files are ``files``."""
    config = find_pytest_config(files)
    local = frozenset(
        path.removeprefix("src/").removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for path in files
        if path.endswith(".py")
    )
    addopts = config.values("addopts")
    kept, dropped = neutralise_addopts(addopts, local)
    marker = network_marker(config)
    if marker and any(arg == "-m" or (arg.startswith("-m") and not arg.startswith("--")) for arg in kept):
        marker = ""  # the project already selects by marker; its own expression stands
    return TestSetup(config=config, addopts=kept, dropped=dropped, deselect_marker=marker)
