"""Running a release's tests as its CI does: config discovery, addopts neutralised, test requirements.

The pure parts run here without Docker; mining the fixture package and real packages with these
set-ups is in the last part, on the real Docker engine (cached by content hash).
"""

from __future__ import annotations

import shlex

import pytest

from horizongym.envs.swe.mining_report import MiningReport
from horizongym.envs.swe.testdeps import declared_requirements, pin_requirements
from horizongym.envs.swe.testsetup import (
    TestConfigError,
    find_pytest_config,
    needs_network,
    neutralise_addopts,
    read_test_setup,
)


def test_config_is_found_in_pytests_order() -> None:
    both = {
        "tox.ini": b"[pytest]\naddopts = --doctest-modules\n",
        "pyproject.toml": b'[tool.pytest.ini_options]\naddopts = "--color=yes"\n',
    }
    assert find_pytest_config(both).path == "pyproject.toml"
    no_section = {"pyproject.toml": b"[project]\nname='x'\n", "setup.cfg": b"[tool:pytest]\ntestpaths = t\n"}
    assert find_pytest_config(no_section).path == "setup.cfg"
    assert find_pytest_config({"pytest.ini": b"", "setup.cfg": b"[tool:pytest]\n"}).path == "pytest.ini"
    assert find_pytest_config({"setup.py": b""}).path == ""
    with pytest.raises(TestConfigError, match=r"pyproject\.toml: not valid TOML"):
        find_pytest_config({"pyproject.toml": b"[tool.pytest.ini_options\n"})


def test_coverage_reports_xdist_and_missing_plugins_are_dropped() -> None:
    args = shlex.split(
        "-ra --strict-markers --cov=pkg --cov --no-cov-on-fail --cov-report term-missing --cov-report=xml:c.xml "
        "--junitxml=out.xml -n auto -n4 --dist loadscope -p pytest_randomly -p no:cacheprovider -p pkg.plugin "
        "-p pytester -x --maxfail=2 --lf --benchmark-skip --benchmark-sort mean --mypy --doctest-modules "
        "--import-mode=importlib -W error"
    )
    kept, dropped = neutralise_addopts(args, frozenset({"pkg", "pkg.plugin"}))
    assert kept == shlex.split(
        "-ra --strict-markers -p no:cacheprovider -p pkg.plugin -p pytester --doctest-modules "
        "--import-mode=importlib -W error"
    )
    assert [d.option for d in dropped] == [
        "--cov=pkg",
        "--cov",
        "--no-cov-on-fail",
        "--cov-report term-missing",
        "--cov-report=xml:c.xml",
        "--junitxml=out.xml",
        "-n auto",
        "-n4",
        "--dist loadscope",
        "-p pytest_randomly",
        "-x",
        "--maxfail=2",
        "--lf",
        "--benchmark-skip",
        "--benchmark-sort mean",
        "--mypy",
    ]
    assert {d.reason for d in dropped} >= {"coverage", "report", "parallel or repeated runs", "stops early"}


def test_test_command_overrides_addopts_only_when_needed() -> None:
    plain = read_test_setup({"pyproject.toml": b'[tool.pytest.ini_options]\naddopts = "-ra"\ntestpaths = ["tests"]\n'})
    assert plain.test_command == "python -m pytest -p no:cacheprovider -q" and not plain.dropped
    files = {
        "setup.cfg": b"[tool:pytest]\naddopts =\n  --cov=pkg\n  --doctest-glob='*.rst'\nmarkers =\n"
        b"  slow: slow tests\n  network: needs the internet\n"
    }
    setup = read_test_setup(files)
    assert setup.config.path == "setup.cfg" and setup.deselect_marker == "network"
    command = shlex.split(setup.test_command)
    assert command[command.index("-o") + 1] == "addopts='--doctest-glob=*.rst'"
    assert command[-2:] == ["-m", "not network"]
    own_m = read_test_setup({"pytest.ini": b"[pytest]\naddopts = -m 'not slow'\nmarkers = network\n"})
    assert own_m.deselect_marker == ""


def test_testpaths_and_python_files_choose_the_test_files() -> None:
    files = {
        "pytest.ini": b"[pytest]\ntestpaths = tests\npython_files = check_*.py test_*.py\n",
        "tests/check_a.py": b"",
        "tests/test_b.py": b"",
        "tests/conftest.py": b"",
        "docs/test_doc.py": b"",
        "pkg/check_c.py": b"",
    }
    assert read_test_setup(files).test_files(files, ["docs/test_doc.py", "tests/test_b.py"]) == [
        "tests/check_a.py",
        "tests/test_b.py",
    ]


def test_network_errors_are_recognised() -> None:
    assert needs_network("E   socket.gaierror: [Errno -3] Temporary failure in name resolution")
    assert needs_network("E   urllib.error.URLError: <urlopen error [Errno -2] Name or service not known>")
    assert not needs_network("E   AssertionError: assert 2 == 3")


def test_declared_test_requirements() -> None:
    pyproject = (
        b'[project]\nname = "demo"\ndependencies = ["attrs>=22"]\n'
        b'[project.optional-dependencies]\ntest = ["pytest>=7", "pytest-cov", "freezegun"]\ndocs = ["sphinx"]\n'
        b'[dependency-groups]\nlint = ["ruff"]\ntests = ["demo[test]", {include-group = "lint"}]\n'
    )
    declared = declared_requirements({"pyproject.toml": pyproject, "tox.ini": b"[testenv]\ndeps = numpy\n"}, "demo")
    assert declared.requirements == ["attrs>=22", "freezegun", "ruff"]
    assert declared.skipped == {
        "pytest>=7": "the sandbox's pytest is pinned",
        "pytest-cov": "coverage options are neutralised",
        "demo[test]": "the release itself",
    }
    setup_py = b"from setuptools import setup\nsetup(name='x', install_requires=['six'], tests_require=['mock'])\n"
    assert declared_requirements({"setup.py": setup_py}, "x").requirements == ["six", "mock"]
    tox_only = {"tox.ini": b"[testenv]\ndeps =\n    pytest\n    -rrequirements.txt\n    hypothesis  # property tests\n"}
    assert declared_requirements(tox_only, "x").requirements == ["hypothesis"]


def test_requirements_are_pinned_from_wheels_and_the_unavailable_dropped() -> None:
    pins, dropped = pin_requirements(["pytest-mock>=3.10", "no-such-project-horizongym-test==1.0"])
    assert any(pin.startswith("pytest-mock==") for pin in pins)
    assert not any(pin.startswith(("pytest==", "pluggy==")) for pin in pins)
    assert list(dropped) == ["no-such-project-horizongym-test==1.0"]
    assert pin_requirements(["pytest-mock>=3.10"])[0] == pins


def test_report_round_trips_the_test_setup() -> None:
    report = MiningReport(source="embedded:x", test_setup={"config": "tox.ini"}, skipped_tests={"needs_network": 2})
    again = MiningReport.from_json(report.to_json())
    assert again.test_setup == {"config": "tox.ini"} and again.skipped_tests == {"needs_network": 2}
