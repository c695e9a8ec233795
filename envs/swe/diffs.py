"""Git-style unified diffs of whole files, as ``git diff`` writes them and ``git apply`` reads them.

``file_diff(path, old, new)`` gives one file's section: ``None`` as ``old`` creates the file,
``None`` as ``new`` deletes it. A last line without a newline gets git's
``\\ No newline at end of file`` marker, so the diff restores the bytes exactly.
"""

from __future__ import annotations

import difflib
import re

_LINE = re.compile(r"[^\n]*\n|[^\n]+$")
_NO_NEWLINE = "\\ No newline at end of file\n"


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


def file_diff(path: str, old: str | None, new: str | None, *, context: int = 3) -> str:
    """The ``diff --git a/PATH b/PATH`` section turning ``old`` into ``new`` ("" when they are equal)."""
    if old == new:
        return ""
    header = [f"diff --git a/{path} b/{path}\n"]
    if old is None:
        header.append("new file mode 100644\n")
    elif new is None:
        header.append("deleted file mode 100644\n")
    body = []
    hunks = difflib.unified_diff(_lines(old or ""), _lines(new or ""), n=context, lineterm="\n")
    for line in list(hunks)[2:]:  # difflib's own ---/+++ lines are replaced by the header below
        body.append(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE)
    if not body:  # an empty file created or deleted: git writes the header alone
        return "".join(header)
    header.append("--- /dev/null\n" if old is None else f"--- a/{path}\n")
    header.append("+++ /dev/null\n" if new is None else f"+++ b/{path}\n")
    return "".join(header + body)


def files_diff(changes: list[tuple[str, str | None, str | None]]) -> str:
    """Several files' sections, in the order given."""
    return "".join(file_diff(path, old, new) for path, old, new in changes)
