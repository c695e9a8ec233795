"""Unified-diff handling and JUnit parsing of the SWE harness (no sandbox needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from horizongym.agents.experts.swe import edit_calls
from horizongym.envs.swe.patches import filter_patch, is_test_path, patch_paths, split_patch
from horizongym.envs.swe.testrun import junit_key, outcomes_for, parse_junit, selection_command

TWO_FILES = """diff --git a/pkg/core.py b/pkg/core.py
index 1111111..2222222 100644
--- a/pkg/core.py
+++ b/pkg/core.py
@@ -1,4 +1,4 @@
 def clamp(x, low, high):
--- a comment line that looks like a header
+++ another one
     return max(low, min(x, high))
diff --git a/tests/test_core.py b/tests/test_core.py
deleted file mode 100644
--- a/tests/test_core.py
+++ /dev/null
@@ -1,2 +0,0 @@
-def test_clamp():
-    assert True
"""


def test_split_patch_keeps_header_lookalikes_inside_hunks() -> None:
    sections = split_patch(TWO_FILES)
    assert [s.path for s in sections] == ["pkg/core.py", "tests/test_core.py"]
    assert "--- a comment line" in sections[0].text
    assert "".join(s.text for s in sections) == TWO_FILES


def test_split_patch_without_git_headers() -> None:
    plain = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n--- a/y.py\n+++ b/y.py\n@@ -1 +1 @@\n-c\n+d\n"
    assert patch_paths(plain) == ["x.py", "y.py"]


def test_test_paths() -> None:
    for path in ("tests/test_a.py", "test_b.py", "pkg/b_test.py", "conftest.py", "src/x/testing/util.py", "pytest.ini"):
        assert is_test_path(path), path
    for path in ("pkg/core.py", "src/latest.py", "pkg/contest.py", "docs/testing.md"):
        assert not is_test_path(path), path


def test_an_empty_patch_has_no_sections() -> None:
    assert split_patch("") == [] and filter_patch("", lambda p: True) == ("", [])


def test_filter_patch_drops_test_files() -> None:
    kept, dropped = filter_patch(TWO_FILES, lambda p: not is_test_path(p))
    assert dropped == ["tests/test_core.py"]
    assert patch_paths(kept) == ["pkg/core.py"]


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True).stdout


def test_expert_edit_calls_reproduce_a_real_git_diff(tmp_path: Path) -> None:
    """The expert's editor calls, replayed on the starting file, give exactly the patched file."""
    before = "".join(f"line {i}\n" for i in range(30))
    after = before.replace("line 3\n", "line three\n").replace("line 20\n", "").replace("line 25\n", "line 25\nnew\n")
    _git(tmp_path, "init", "-q")
    (tmp_path / "f.py").write_text(before)
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    (tmp_path / "f.py").write_text(after)
    (tmp_path / "new.py").write_text("print('hi')\n")
    _git(tmp_path, "add", "-A")
    diff = _git(tmp_path, "diff", "--cached", "HEAD")
    text = before
    calls = edit_calls(diff, workdir="/work")
    assert [c.arguments["command"] for c in calls] == ["str_replace", "str_replace", "create"]  # 20 and 25 share a hunk
    for call in calls[:2]:
        assert text.count(call.arguments["old_str"]) == 1
        text = text.replace(call.arguments["old_str"], call.arguments["new_str"])
    assert text == after
    assert calls[2].arguments == {"command": "create", "path": "/work/new.py", "file_text": "print('hi')\n"}


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_core" name="test_ok" time="0.001"/>
<testcase classname="tests.test_core.TestClamp" name="test_low[1-2]" time="0.001">
<failure message="x">x</failure></testcase>
<testcase classname="tests.test_core" name="test_skip" time="0"><skipped message="s"/></testcase>
<testcase classname="tests.test_core" name="test_teardown" time="0"/>
<testcase classname="tests.test_core" name="test_teardown" time="0"><error message="e"/></testcase>
</testsuite></testsuites>"""


def test_junit_outcomes_by_node_id() -> None:
    assert junit_key("tests/test_core.py::TestClamp::test_low[1-2]") == "tests.test_core.TestClamp::test_low[1-2]"
    outcomes = outcomes_for(
        [
            "tests/test_core.py::test_ok",
            "tests/test_core.py::TestClamp::test_low[1-2]",
            "tests/test_core.py::test_skip",
            "tests/test_core.py::test_teardown",
            "tests/test_core.py::test_deleted",
        ],
        parse_junit(JUNIT),
    )
    assert list(outcomes.values()) == ["passed", "failed", "skipped", "error", "missing"]


def test_selection_runs_whole_files_once() -> None:
    command = selection_command("python -m pytest -q", ["tests/a.py::t1", "tests/a.py::t2", "tests/b c.py::t"])
    assert command.endswith("tests/a.py 'tests/b c.py'")
    assert "--junitxml=" in command
