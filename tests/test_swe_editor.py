"""The str_replace_editor tool against a real Docker sandbox: SWE-agent's commands and error messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from horizongym.envs.swe.editor import Editor, EditorError
from horizongym.sandboxes import Sandbox, SandboxSpec, ensure_base_image, open_sandbox, tar_files

SOURCE = "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    spec = SandboxSpec(image=ensure_base_image(), files=tar_files({"geo/shapes.py": SOURCE, "README.md": "geo\n"}))
    box = open_sandbox(spec, backend="docker")
    yield box
    box.close()


@pytest.fixture
def editor(sandbox: Sandbox) -> Editor:
    sandbox.reset()
    return Editor(sandbox)


def test_view_file_and_range(editor: Editor) -> None:
    whole = editor.run("view", "/work/geo/shapes.py")
    assert "     1\tdef area(w, h):" in whole and "     6\t    return 2 * (w + h)" in whole
    part = editor.run("view", "/work/geo/shapes.py", view_range=[5, -1])
    assert "     5\tdef perimeter" in part and "area" not in part
    with pytest.raises(EditorError, match="Invalid `view_range`"):
        editor.run("view", "/work/geo/shapes.py", view_range=[9, 10])


def test_view_directory(editor: Editor) -> None:
    listing = editor.run("view", "/work")
    assert "/work/geo/shapes.py" in listing and "/work/README.md" in listing
    with pytest.raises(EditorError, match="only the `view` command"):
        editor.run("str_replace", "/work/geo", old_str="a", new_str="b")


def test_str_replace_then_undo(editor: Editor, sandbox: Sandbox) -> None:
    out = editor.run("str_replace", "/work/geo/shapes.py", old_str="return w * h", new_str="return w * h * 1")
    assert "has been edited" in out and "return w * h * 1" in out
    assert b"w * h * 1" in sandbox.read_file("/work/geo/shapes.py")
    assert "undone successfully" in editor.run("undo_edit", "/work/geo/shapes.py")
    assert sandbox.read_file("/work/geo/shapes.py").decode() == SOURCE
    with pytest.raises(EditorError, match="No edit history found"):
        editor.run("undo_edit", "/work/geo/shapes.py")


def test_str_replace_must_match_exactly_once(editor: Editor, sandbox: Sandbox) -> None:
    with pytest.raises(EditorError, match="did not appear verbatim"):
        editor.run("str_replace", "/work/geo/shapes.py", old_str="return w + h", new_str="x")
    with pytest.raises(EditorError, match=r"Multiple occurrences of old_str `return` in lines \[2, 6\]"):
        editor.run("str_replace", "/work/geo/shapes.py", old_str="return", new_str="x")
    assert sandbox.read_file("/work/geo/shapes.py").decode() == SOURCE  # nothing changed


def test_insert_and_create(editor: Editor, sandbox: Sandbox) -> None:
    editor.run("insert", "/work/geo/shapes.py", insert_line=0, new_str="import math")
    assert sandbox.read_file("/work/geo/shapes.py").decode().startswith("import math\ndef area")
    with pytest.raises(EditorError, match="Invalid `insert_line`"):
        editor.run("insert", "/work/geo/shapes.py", insert_line=99, new_str="x")
    assert "File created successfully" in editor.run("create", "/work/geo/new/mod.py", file_text="X = 1\n")
    assert sandbox.read_file("/work/geo/new/mod.py") == b"X = 1\n"
    with pytest.raises(EditorError, match="File already exists"):
        editor.run("create", "/work/geo/new/mod.py", file_text="X = 2\n")


def test_bad_paths_and_commands(editor: Editor) -> None:
    with pytest.raises(EditorError, match=r"not an absolute path.*Maybe you meant /work/geo/shapes\.py"):
        editor.run("view", "geo/shapes.py")
    with pytest.raises(EditorError, match="does not exist"):
        editor.run("view", "/work/nope.py")
    with pytest.raises(EditorError, match="Unrecognized command"):
        editor.run("delete", "/work/geo/shapes.py")
    with pytest.raises(EditorError, match="`old_str` is required"):
        editor.run("str_replace", "/work/geo/shapes.py")
