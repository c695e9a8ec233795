"""The file editor tool (``str_replace_editor``), with SWE-agent's commands and messages.

Commands: ``view`` (a file with line numbers, optionally ``view_range``; a folder two levels
deep), ``create`` (a new file only), ``str_replace`` (``old_str`` must occur exactly once),
``insert`` (``new_str`` after line ``insert_line``; 0 = at the top) and ``undo_edit`` (the
last change to a file). Paths are absolute. Every mistake raises :class:`EditorError`, whose
message tells the model what to do instead; the file is left unchanged. The semantics follow
SWE-agent's editor (Yang et al. 2024, arXiv 2405.15793) and Anthropic's text editor tool.
"""

from __future__ import annotations

import posixpath
import shlex

from horizongym.sandboxes.base import Sandbox

COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")
SNIPPET_LINES = 4
MAX_VIEW_CHARS = 16_000


class EditorError(ValueError):
    """A command the editor cannot carry out; the message is the observation."""


def _numbered(text: str, first_line: int = 1) -> str:
    return "\n".join(f"{number:6}\t{line}" for number, line in enumerate(text.split("\n"), first_line))


class Editor:
    """``str_replace_editor`` over one sandbox; keeps each file's edit history for ``undo_edit``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.history: dict[str, list[str]] = {}

    def run(
        self,
        command: str,
        path: str,
        *,
        file_text: str | None = None,
        old_str: str | None = None,
        new_str: str | None = None,
        insert_line: int | None = None,
        view_range: list[int] | None = None,
    ) -> str:
        if command not in COMMANDS:
            raise EditorError(f"Unrecognized command {command!r}. The allowed commands are: {', '.join(COMMANDS)}.")
        if not path.startswith("/"):
            suggestion = posixpath.join(self.sandbox.spec.workdir, path)
            raise EditorError(
                f"The path {path} is not an absolute path, it should start with `/`. Maybe you meant {suggestion}?"
            )
        path = posixpath.normpath(path)
        kind = self._kind(path)
        if command == "create":
            if kind != "missing":
                raise EditorError(f"File already exists at: {path}. Cannot overwrite files using command `create`.")
            if file_text is None:
                raise EditorError("Parameter `file_text` is required for command: create.")
            self._write(path, file_text, record=False)
            self.history.setdefault(path, [])
            return f"File created successfully at: {path}"
        if kind == "missing":
            raise EditorError(f"The path {path} does not exist. Please provide a valid path.")
        if kind == "dir":
            if command != "view":
                raise EditorError(
                    f"The path {path} is a directory and only the `view` command can be used on directories."
                )
            if view_range is not None:
                raise EditorError("The `view_range` parameter is not allowed when `path` points to a directory.")
            return self._view_dir(path)
        if command == "view":
            return self._view_file(path, view_range)
        if command == "str_replace":
            if old_str is None:
                raise EditorError("Parameter `old_str` is required for command: str_replace.")
            return self._str_replace(path, old_str, new_str or "")
        if command == "insert":
            if insert_line is None or new_str is None:
                raise EditorError("Parameters `insert_line` and `new_str` are required for command: insert.")
            return self._insert(path, int(insert_line), new_str)
        return self._undo(path)

    # ----- commands -------------------------------------------------------------------
    def _view_dir(self, path: str) -> str:
        listing = self.sandbox.exec(
            f"find {shlex.quote(path)} -maxdepth 2 -not -path '*/.*' -not -path '*/__pycache__*' | sort", timeout=30
        ).output
        header = f"Here's the files and directories up to 2 levels deep in {path}, excluding hidden items:"
        return f"{header}\n{listing.rstrip()}"

    def _view_file(self, path: str, view_range: list[int] | None) -> str:
        text = self._read(path)
        lines = text.split("\n")
        first = 1
        if view_range is not None:
            if len(view_range) != 2 or not all(isinstance(x, int) for x in view_range):
                raise EditorError("Invalid `view_range`. It should be a list of two integers.")
            first, last = view_range
            if not 1 <= first <= len(lines):
                raise EditorError(
                    f"Invalid `view_range`: {view_range}. Its first element `{first}` should be within the range "
                    f"of lines of the file: [1, {len(lines)}]."
                )
            if last != -1 and not first <= last <= len(lines):
                raise EditorError(
                    f"Invalid `view_range`: {view_range}. Its second element `{last}` should be -1 or within "
                    f"[{first}, {len(lines)}]."
                )
            text = "\n".join(lines[first - 1 :] if last == -1 else lines[first - 1 : last])
        shown = _numbered(text, first)
        if len(shown) > MAX_VIEW_CHARS:
            shown = shown[:MAX_VIEW_CHARS] + "\n<response clipped: view a smaller `view_range`>"
        return f"Here's the result of running `cat -n` on {path}:\n{shown}\n"

    def _str_replace(self, path: str, old: str, new: str) -> str:
        text = self._read(path).expandtabs()
        old, new = old.expandtabs(), new.expandtabs()
        count = text.count(old)
        if count == 0:
            raise EditorError(f"No replacement was performed, old_str `{old}` did not appear verbatim in {path}.")
        if count > 1:
            lines = [n for n, line in enumerate(text.split("\n"), 1) if old.split("\n")[0] in line]
            raise EditorError(
                f"No replacement was performed. Multiple occurrences of old_str `{old}` in lines {lines}. "
                "Please ensure it is unique."
            )
        self._write(path, text.replace(old, new), record=True)
        start = text.split(old)[0].count("\n")
        return self._edited(path, text.replace(old, new), start, new.count("\n"))

    def _insert(self, path: str, line: int, new: str) -> str:
        text = self._read(path).expandtabs()
        lines = text.split("\n")
        if not 0 <= line <= len(lines):
            raise EditorError(
                f"Invalid `insert_line` parameter: {line}. It should be within the range of lines of the file: "
                f"[0, {len(lines)}]."
            )
        updated = "\n".join([*lines[:line], *new.expandtabs().split("\n"), *lines[line:]])
        self._write(path, updated, record=True)
        return self._edited(path, updated, line, new.count("\n") + 1)

    def _undo(self, path: str) -> str:
        versions = self.history.get(path)
        if not versions:
            raise EditorError(f"No edit history found for {path}.")
        self._write(path, versions.pop(), record=False)
        return f"Last edit to {path} undone successfully. " + self._view_file(path, None)

    # ----- helpers --------------------------------------------------------------------
    def _edited(self, path: str, text: str, start: int, changed_lines: int) -> str:
        lines = text.split("\n")
        first = max(0, start - SNIPPET_LINES)
        last = min(len(lines), start + changed_lines + SNIPPET_LINES + 1)
        snippet = _numbered("\n".join(lines[first:last]), first + 1)
        return (
            f"The file {path} has been edited. Here's the result of running `cat -n` on a snippet of {path}:\n"
            f"{snippet}\nReview the changes and make sure they are as expected. Edit the file again if necessary."
        )

    def _kind(self, path: str) -> str:
        quoted = shlex.quote(path)
        result = self.sandbox.exec(f"if [ -d {quoted} ]; then echo dir; elif [ -e {quoted} ]; then echo file; fi", 30)
        return result.output.strip() or "missing"

    def _read(self, path: str) -> str:
        try:
            return self.sandbox.read_file(path).decode("utf-8")
        except UnicodeDecodeError:
            raise EditorError(f"The file {path} is not UTF-8 text; use bash to inspect it.") from None
        except FileNotFoundError:
            raise EditorError(f"The path {path} does not exist. Please provide a valid path.") from None

    def _write(self, path: str, text: str, *, record: bool) -> None:
        if record:
            self.history.setdefault(path, []).append(self._read(path))
        self.sandbox.write_file(path, text.encode("utf-8"))
