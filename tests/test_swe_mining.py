"""SWE task mining: mutations, source layouts, diffs, bug reports, and mining real packages end to end.

The last part runs on the real Docker engine (installed and started where the machine allows
it) and fails, never skips, when there is none. Mining results are cached on disk by content
hash, so only the first run on a machine pays for mining and validation.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from horizongym.envs.swe.diffs import file_diff
from horizongym.envs.swe.environments import apply_patch, git_repository
from horizongym.envs.swe.mining import EMBEDDED_INSTANCES, cheat_patch, mine_report
from horizongym.envs.swe.mining_report import MiningReport
from horizongym.envs.swe.mutations import KINDS, Mutation, find_mutations, sample_mutations
from horizongym.envs.swe.packages import DEFAULT_PACKAGES, detect_layout, embedded_source, read_archive
from horizongym.envs.swe.reports import CodeIndex, problem_statement
from horizongym.envs.swe.types import SWEInstance, load_instances
from horizongym.sandboxes import tar_files


# ----- mutations -----------------------------------------------------------------------------
def mutants(source: str, kind: str) -> dict[str, str]:
    """{description: mutated source} of every ``kind`` mutation of ``source``."""
    return {m.description: m.apply(source) for m in find_mutations(source, "m.py") if m.kind == kind}


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_flip_comparison() -> None:
    source = "def f(a, b):\n    return a < b and a is not None and (a) in (b)\n"
    results = set(mutants(source, "flip_comparison").values())
    assert "def f(a, b):\n    return a >= b and a is not None and (a) in (b)\n" in results
    assert "def f(a, b):\n    return a < b and a is None and (a) in (b)\n" in results
    assert "def f(a, b):\n    return a < b and a is not None and (a) not in (b)\n" in results
    assert len(results) == 3


def test_off_by_one() -> None:
    source = "def f(x, n):\n    for i in range(len(x)):\n        x[i + 1] = x[-1] + x[:n][0]\n"
    results = set(mutants(source, "off_by_one").values())
    assert "def f(x, n):\n    for i in range(len(x) - 1):\n        x[i + 1] = x[-1] + x[:n][0]\n" in results
    assert "def f(x, n):\n    for i in range(len(x)):\n        x[i] = x[-1] + x[:n][0]\n" in results
    assert "def f(x, n):\n    for i in range(len(x)):\n        x[i + 1] = x[0] + x[:n][0]\n" in results
    assert "def f(x, n):\n    for i in range(len(x)):\n        x[i + 1] = x[-1] + x[:n - 1][0]\n" in results
    assert "def f(x, n):\n    for i in range(len(x)):\n        x[i + 1] = x[-1] + x[:n][1]\n" in results


def test_swap_arguments_keeps_the_text_between() -> None:
    source = "def f(a, b):\n    return g(a,  b + 1, c=2) + isinstance(a, int) + h(a, a)\n"
    assert list(mutants(source, "swap_arguments").values()) == [
        "def f(a, b):\n    return g(b + 1,  a, c=2) + isinstance(a, int) + h(a, a)\n"
    ]


def test_drop_statement() -> None:
    source = (
        "def f(items):\n"
        '    """Doc."""\n'
        "    total = 0\n"
        "    items.sort()  # in place\n"
        "    a = 1; b = 2\n"
        "    return total\n"
        "def g():\n"
        "    x = 1\n"
    )
    results = mutants(source, "drop_statement")
    assert sorted(results.values()) == sorted(
        [source.replace("    total = 0\n", ""), source.replace("    items.sort()  # in place\n", "")]
    )


def test_wrong_constant() -> None:
    source = "def f(s):\n    flag = True\n    n = 0\n    return s.split(\"-\", 3) or 'x'\n"
    results = set(mutants(source, "wrong_constant").values())
    assert source.replace("True", "False") in results
    assert source.replace("n = 0", "n = 1") in results
    assert source.replace('"-"', '"_"') in results
    assert source.replace("3)", "4)") in results
    assert source.replace("'x'", "'X'") in results


def test_invert_condition() -> None:
    source = "def f(x):\n    if x > 0:\n        return 1\n    elif not x:\n        return 2\n    return 3\n"
    results = set(mutants(source, "invert_condition").values())
    assert results == {source.replace("if x > 0:", "if not (x > 0):"), source.replace("elif not x:", "elif x:")}


def test_only_function_bodies_are_mutated_and_docstrings_never() -> None:
    source = (
        "X = 1 < 2\n"
        "if X:\n"
        "    Y = [0][0]\n\n"
        "class C:\n"
        '    """Doc."""\n'
        "    Z = True\n\n"
        "    def m(self):\n"
        '        """Doc."""\n'
        "        return 1\n"
    )
    found = find_mutations(source, "m.py")
    assert [(m.kind, m.line) for m in found] == [("wrong_constant", 11)]
    assert found[0].function == "C.m"


def test_edits_use_byte_offsets_on_non_ascii_lines() -> None:
    source = 'def f(s):\n    return "é" + s[1:] if s == "ü" else s\n'
    for mutation in find_mutations(source, "m.py"):
        mutated = mutation.apply(source)
        ast.parse(mutated)
        assert changed_lines(source, mutated)[0].startswith("-    return")


def test_every_mutation_of_a_real_module_is_a_minimal_valid_edit() -> None:
    release = embedded_source("textkit")
    for path in release.layout.source_files:
        source = release.files[path].decode()
        found = find_mutations(source, path)
        assert {m.kind for m in found} <= set(KINDS)
        for mutation in found:
            assert mutation.is_valid(source), mutation
            lines = changed_lines(source, mutation.apply(source))
            assert 1 <= len(lines) <= 2 * (mutation.end_line - mutation.line + 1), (mutation, lines)
    assert {m.kind for p in release.layout.source_files for m in find_mutations(release.files[p].decode(), p)} == set(
        KINDS
    )


def test_enumeration_and_sampling_are_deterministic() -> None:
    release = embedded_source("textkit")
    sites: list[Mutation] = []
    for path in release.layout.source_files:
        sites += find_mutations(release.files[path].decode(), path)
    again = [m for p in release.layout.source_files for m in find_mutations(release.files[p].decode(), p)]
    assert sites == again
    first = sample_mutations(sites, 30, seed=7, per_function=None)
    assert first == sample_mutations(list(reversed(sites)), 30, seed=7, per_function=None)
    assert first != sample_mutations(sites, 30, seed=8, per_function=None)
    kinds = [m.kind for m in first[: len(KINDS)]]
    assert sorted(kinds) == sorted(KINDS), "kinds take turns"
    functions = [(m.path, m.function) for m in sample_mutations(sites, 1000, seed=7)]
    assert len(functions) == len(set(functions)), "one mutation per function by default"


# ----- diffs, layouts, starting repositories -------------------------------------------------
def test_file_diffs_apply_with_git_and_restore_bytes_exactly() -> None:
    files = {"a.py": b"x = 1\ny = 2\n", "b.txt": b"no newline at end", "gone.py": b"print(1)\n"}
    patch = (
        file_diff("a.py", "x = 1\ny = 2\n", "x = 1\ny = 3\n")
        + file_diff("b.txt", "no newline at end", "still none")
        + file_diff("gone.py", "print(1)\n", None)
        + file_diff("new/c.py", None, "z = 0")
        + file_diff("empty.py", None, "")
    )
    result = apply_patch(files, patch)
    assert result == {"a.py": b"x = 1\ny = 3\n", "b.txt": b"still none", "new/c.py": b"z = 0", "empty.py": b""}
    assert file_diff("a.py", "same\n", "same\n") == ""


def test_git_repository_commit_is_reproducible() -> None:
    files = {"pkg/__init__.py": b"VALUE = 1\n", "README": b"hello\n"}
    tar, commit = git_repository(files, message="demo 1.0")
    _, again = git_repository(dict(reversed(list(files.items()))), message="demo 1.0")
    assert commit == again and len(commit) == 40
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        names = archive.getnames()
    assert "pkg/__init__.py" in names and ".git/HEAD" in names and ".git/info/exclude" in names


def test_detect_layout() -> None:
    src = detect_layout(
        {"pyproject.toml": b"", "src/pkg/__init__.py": b"", "src/pkg/core.py": b"", "tests/test_core.py": b""}
    )
    assert src.python_path == ["src"]
    assert src.source_files == ["src/pkg/__init__.py", "src/pkg/core.py"]
    assert src.test_files == ["tests/test_core.py"]
    flat = detect_layout(
        {
            "setup.py": b"",
            "mod.py": b"",
            "test_mod.py": b"",
            "pkg/__init__.py": b"",
            "pkg/_version.py": b"",
            "pkg/tests/test_a.py": b"",
            "pkg/tests/conftest.py": b"",
            "docs/conf.py": b"",
        }
    )
    assert flat.python_path == ["."]
    assert flat.source_files == ["mod.py", "pkg/__init__.py"]
    assert flat.test_files == ["pkg/tests/test_a.py", "test_mod.py"]


def test_read_archive_strips_the_top_folder() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("demo-1.0/demo.py", b"x = 1\n"), ("demo-1.0/__pycache__/demo.pyc", b"\0")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_600_000_000
            archive.addfile(info, io.BytesIO(data))
    files, newest = read_archive("demo-1.0.tar.gz", buffer.getvalue())
    assert files == {"demo.py": b"x = 1\n"} and newest == 1_600_000_000


def test_embedded_library_is_a_source_release_whose_tests_pass(tmp_path: Path) -> None:
    release = embedded_source("textkit")
    assert release.sha256 == embedded_source("textkit").sha256
    assert release.layout.python_path == ["src"] and len(release.layout.test_files) >= 5
    with tarfile.open(fileobj=io.BytesIO(tar_files(release.files))) as archive:
        archive.extractall(tmp_path, filter="data")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    passed = int(result.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert 40 <= passed <= 150


def test_line_tracer_maps_lines_to_tests(tmp_path: Path) -> None:
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    plugin = Path(__file__).resolve().parent.parent / "envs" / "swe" / "linetrace.py"
    (plugin_dir / "horizongym_linetrace.py").write_bytes(plugin.read_bytes())
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "lib.py").write_text("def double(x):\n    return 2 * x\n\n\ndef half(x):\n    return x / 2\n")
    (project / "tests" / "test_lib.py").write_text(
        "from lib import double, half\n\n\ndef test_double():\n    assert double(2) == 4\n\n\n"
        "def test_half():\n    assert half(2) == 1\n\n\ndef test_fails():\n    assert double(1) == 3\n"
    )
    (project / "files.txt").write_text("lib.py\n")
    env = {
        **os.environ,
        "PYTHONPATH": f"{plugin_dir}{os.pathsep}{project}",
        "HORIZONGYM_TRACE_FILES": str(project / "files.txt"),
        "HORIZONGYM_TRACE_OUT": str(tmp_path / "trace.json"),
    }
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    subprocess.run([*command, "-p", "horizongym_linetrace", "tests"], cwd=project, env=env, timeout=120, check=False)
    trace = json.loads((tmp_path / "trace.json").read_text())
    tests = trace["tests"]
    assert trace["outcomes"] == {
        "tests/test_lib.py::test_double": "passed",
        "tests/test_lib.py::test_half": "passed",
        "tests/test_lib.py::test_fails": "failed",
    }
    lines = {int(n): {tests[i].split("::")[1] for i in ids} for n, ids in trace["lines"]["lib.py"].items()}
    assert lines[2] == {"test_double", "test_fails"} and lines[6] == {"test_half"}


# ----- bug reports ---------------------------------------------------------------------------
SHORT_TRACEBACK = """tests/test_roman.py:20: in test_from_roman_round_trip
    assert from_roman(numeral) == number
src/textkit/roman.py:45: in from_roman
    if index + 1 < len(text) and _DIGITS.get(text[index + 2], 0) > value:
E   IndexError: string index out of range"""

WRONG_RESULT = """tests/test_slug.py:8: in test_slugify_basic
    assert slugify("Hello, World!") == "hello-world"
E   AssertionError: assert 'hello_world' == 'hello-world'
E     - hello-world
E     + hello_world
E   Use -v to get more diff"""


def code_index() -> CodeIndex:
    release = embedded_source("textkit")
    layout = release.layout
    return CodeIndex(
        sources={p: release.files[p].decode() for p in layout.source_files},
        tests={p: release.files[p].decode() for p in layout.test_files},
        test_ids=["tests/test_roman.py::test_from_roman_round_trip", "tests/test_slug.py::test_slugify_basic"],
    )


def test_problem_statement_shows_the_symptom_and_no_tests() -> None:
    text = problem_statement("textkit 1.0.0", 0, [SHORT_TRACEBACK, WRONG_RESULT], code_index())
    assert "`from_roman` raises `IndexError`" in text
    assert 'File "src/textkit/roman.py", line 45, in from_roman' in text
    assert "assert from_roman(numeral) == number" in text
    assert "assert 'hello_world' == 'hello-world'" in text and "-v" not in text
    for leak in ("test_", "tests/", "test_roman", "test_from_roman_round_trip", "test_slugify_basic"):
        assert leak not in text
    assert text == problem_statement("textkit 1.0.0", 0, [SHORT_TRACEBACK, WRONG_RESULT], code_index())


def test_problem_statement_names_the_api_of_a_wrong_result() -> None:
    text = problem_statement("textkit 1.0.0", 1, [WRONG_RESULT], code_index())
    assert text.startswith("`slugify` gives an incorrect result in textkit 1.0.0.")


def test_problem_statement_drops_lines_that_name_tests() -> None:
    leaky = "tests/test_x.py:3: in test_leaky\n    check_test_leaky()\nE   ValueError: bad value in test_leaky"
    text = problem_statement("textkit 1.0.0", 0, [leaky, WRONG_RESULT], code_index())
    assert "leaky" not in text and "slugify" in text


# ----- mining real packages (Docker) ---------------------------------------------------------
SOURCES = ("embedded:textkit", *DEFAULT_PACKAGES)


@pytest.fixture(scope="session")
def mined() -> dict[str, MiningReport]:
    """Every default source mined and validated (cached on disk by content hash)."""
    from horizongym.sandboxes import ensure_base_image, ensure_engine

    try:
        ensure_engine()
        ensure_base_image()
    except Exception as error:  # the point is a loud failure with the reason, not a skip
        pytest.fail(f"SWE mining needs a Docker engine and the base image: {type(error).__name__}: {error}")
    return {source: mine_report(source) for source in SOURCES}


def test_mining_yields_validated_tasks_from_real_packages(mined: dict[str, MiningReport]) -> None:
    real = {source: report for source, report in mined.items() if not source.startswith("embedded:")}
    assert len(real) >= 3
    counts = {source: len(report.instances) for source, report in real.items()}
    assert all(count >= 10 for count in counts.values()), counts
    assert sum(counts.values()) >= 30, counts
    assert len(mined["embedded:textkit"].instances) >= 10
    for report in mined.values():
        for instance in report.instances:
            assert report.validation[instance.instance_id] == {"gold": True, "empty": False, "cheat": False}
    kinds = {m["kind"] for report in mined.values() for m in report.mutations.values()}
    assert len(kinds) >= 4, kinds


def test_mined_instances_are_well_formed(mined: dict[str, MiningReport]) -> None:
    for source, report in mined.items():
        ids = [i.instance_id for i in report.instances]
        assert len(ids) == len(set(ids))
        for instance in report.instances:
            assert SWEInstance.model_validate_json(instance.model_dump_json()) == instance
            assert instance.repo == (source if source.startswith("embedded:") else source.removeprefix("pypi:"))
            assert instance.FAIL_TO_PASS and not set(instance.FAIL_TO_PASS) & set(instance.PASS_TO_PASS)
            assert instance.patch.startswith("diff --git a/") and instance.test_patch.startswith("diff --git a/")
            assert len(instance.base_commit) == 40 and instance.environment.sdist_sha256
            hidden = {t.split("::")[0] for t in instance.FAIL_TO_PASS}
            for path in hidden:
                assert f"+++ b/{path}" in instance.test_patch and f"--- a/{path}" in instance.environment.start_patch
            statement = instance.problem_statement
            assert "test_" not in statement and "tests/" not in statement, statement
            for test in instance.FAIL_TO_PASS + instance.PASS_TO_PASS:
                path, *parts = test.split("::")
                names = [path, path.rsplit("/", 1)[-1], *(part.split("[")[0] for part in parts)]
                assert not [name for name in names if name in statement], (test, statement)


def test_shipped_embedded_instances_match_a_fresh_mining(mined: dict[str, MiningReport]) -> None:
    assert load_instances(EMBEDDED_INSTANCES) == mined["embedded:textkit"].instances


def test_harness_judges_gold_empty_and_cheating_patches(mined: dict[str, MiningReport]) -> None:
    from horizongym.envs.swe.harness import evaluate_patch
    from horizongym.envs.swe.packages import load_source

    for source, report in mined.items():
        instance = report.instances[0]
        release = load_source(instance.environment.source, instance.environment.sdist_sha256)
        gold = evaluate_patch(instance, instance.patch, backend="docker")
        assert gold.resolved, (source, gold.error, gold.log[-2000:])
        assert set(gold.fail_to_pass.values()) == {"passed"}
        empty = evaluate_patch(instance, "", backend="docker")
        assert not empty.resolved and "passed" not in set(empty.fail_to_pass.values())
        cheat = evaluate_patch(instance, cheat_patch(instance, release), backend="docker")
        assert not cheat.resolved and cheat.dropped_files


def test_starting_state_hides_the_tests_and_is_a_clean_git_repository(mined: dict[str, MiningReport]) -> None:
    from horizongym.envs.swe.harness import sandbox_spec
    from horizongym.sandboxes import open_sandbox

    instance = mined[DEFAULT_PACKAGES[0]].instances[0]
    hidden = sorted({t.split("::")[0] for t in instance.FAIL_TO_PASS})
    box = open_sandbox(sandbox_spec(instance), backend="docker")
    try:
        assert box.exec("git rev-parse HEAD").output.strip() == instance.base_commit
        assert box.exec("git status --porcelain").output.strip() == ""
        history = box.exec("git log --all --format=%H --name-only; git rev-list --all --objects").output
        for path in hidden:
            assert box.exec(f"test -e {path}").exit_code == 1
            assert path not in history and path.rsplit("/", 1)[-1] not in history
        run = box.exec("python -m pytest -q -p no:cacheprovider --co 2>&1 | tail -1", timeout=120)
        assert "error" not in run.output.lower() and "collected" in run.output, run.output
    finally:
        box.close()


# ----- packages whose CI set-up needs care (Docker) ------------------------------------------
CI_SETUPS = {
    "embedded:covkit": "pyproject.toml",  # --cov*, --junitxml, -n, -p of a missing plugin; pytest-mock extra
    "semver==3.0.2": "setup.cfg",  # [tool:pytest] with --cov addopts, doctests, importlib mode
    "wcwidth==0.2.13": "tox.ini",  # [pytest] with --cov addopts, filterwarnings = error
    "humanize==4.11.0": "pyproject.toml",  # the tests extra (freezegun) installed from wheels
}


@pytest.fixture(scope="session")
def mined_ci() -> dict[str, MiningReport]:
    """The CI set-up packages, mined small (3 tasks each; cached on disk by content hash)."""
    from horizongym.sandboxes import ensure_base_image, ensure_engine

    try:
        ensure_engine()
        ensure_base_image()
    except Exception as error:  # the point is a loud failure with the reason, not a skip
        pytest.fail(f"SWE mining needs a Docker engine and the base image: {type(error).__name__}: {error}")
    return {source: mine_report(source, max_candidates=12, max_tasks=3) for source in CI_SETUPS}


def test_packages_are_mined_with_their_ci_test_setup(mined_ci: dict[str, MiningReport]) -> None:
    for source, report in mined_ci.items():
        assert report.test_setup["config"] == CI_SETUPS[source], (source, report.test_setup)
        assert len(report.instances) >= 2, (source, report.rejected, report.skipped_tests)
        for instance in report.instances:
            assert report.validation[instance.instance_id] == {"gold": True, "empty": False, "cheat": False}
    covkit = mined_ci["embedded:covkit"]
    dropped = " ".join(covkit.test_setup["dropped_options"])
    for option in ("--cov=covkit", "--junitxml", "-n 2", "-p pytest_randomly"):
        assert option in dropped
    assert any(pin.startswith("pytest-mock==") for pin in covkit.test_setup["installed"])
    assert covkit.skipped_tests == {"deselected_by_marker": 1, "needs_network": 1}
    assert any(pin.startswith("freezegun==") for pin in mined_ci["humanize==4.11.0"].test_setup["installed"])
    assert "--cov=semver (coverage)" in mined_ci["semver==3.0.2"].test_setup["dropped_options"]
    assert "--cov=wcwidth (coverage)" in mined_ci["wcwidth==0.2.13"].test_setup["dropped_options"]


def test_mined_ci_task_is_judged_by_the_harness(mined_ci: dict[str, MiningReport]) -> None:
    from horizongym.envs.swe.harness import evaluate_patch

    instance = mined_ci["embedded:covkit"].instances[0]
    assert "-o 'addopts=" in instance.environment.test_command
    gold = evaluate_patch(instance, instance.patch, backend="docker")
    assert gold.resolved, (gold.error, gold.log[-2000:])
    assert not evaluate_patch(instance, "", backend="docker").resolved
