"""One run file, indexed once: each episode's outline, table ROW and the byte span of its line.

The table, its filters and the summary read the outlines in memory; a whole episode is read from
its span on demand (:meth:`EpisodeIndex.episode`). Episodes are numbered as ``read_run`` numbers
them: file order, less blank lines, lines that are not episodes, and duplicates (a later line with
the identity of an earlier one: the first stored wins). A line that is an outline but would not
validate as a whole :class:`~horizongym.training.rollouts.trajectory.Episode` (a hand-edited step)
is numbered here and not by ``read_run``; the store never writes one.

:meth:`EpisodeIndex.refresh` keeps up with the file: lines appended since (a branch saved by play,
a rollout still running) are indexed from where the last pass stopped; a file rewritten meanwhile
(replaced, cut shorter, or its last indexed line changed) is indexed again from the start. A last
line without its newline is read when it is a whole episode (as ``read_run`` does), else left for
the next pass (a write in progress).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from horizongym.training.rollouts.trajectory import Episode
from horizongym.view.outline import EpisodeOutline

FACETS = ("env_id", "policy", "outcome")
"""The ROW keys whose distinct values the episode list offers as choices."""


class UnreadableEpisode(ValueError):
    """An indexed line that does not validate as a whole episode (one line: which, and why)."""


def _problem(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


class EpisodeIndex:
    """The index of the run file ``path`` (which need not exist yet: it is then empty)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.outlines: list[EpisodeOutline] = []
        self.rows: list[dict[str, Any]] = []
        self.spans: list[tuple[int, int]] = []
        """Each episode's line: (byte offset, length)."""
        self.facets: dict[str, set[str]] = {key: set() for key in FACETS}
        self.whole_lines = 0
        self.skipped = 0
        self.first_problem = ""
        self.version = getattr(self, "version", 0) + 1
        """Changes whenever the indexed content does (for caches of what is computed from it)."""
        self._seen: set[tuple[str, str, str, int, int, int]] = set()
        self._end = 0
        self._inode: int | None = None
        self._last: tuple[int, bytes] | None = None
        """The last consumed line (offset, bytes): a rewrite that changed it restarts the index."""

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def not_episodes(self) -> bool:
        """Whole lines, none of which is an episode: not a run file."""
        return self.whole_lines > 0 and not self.rows

    def refresh(self) -> None:
        """Index what was appended since the last pass, or everything again after a rewrite (module docstring);
        OSError when the file cannot be read."""
        with self._lock:
            try:
                stat = os.stat(self.path)
            except FileNotFoundError:
                if self._end:
                    self._reset()
                return
            if self._rewritten(stat):
                self._reset()
            if stat.st_size > self._end:
                self._inode = stat.st_ino
                self._read_from(self._end)

    def _rewritten(self, stat: os.stat_result) -> bool:
        if self._inode is not None and stat.st_ino != self._inode:
            return True
        if stat.st_size < self._end:
            return True
        if self._last is None:
            return False
        offset, line = self._last
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(len(line)) != line

    def _read_from(self, start: int) -> None:
        before = len(self.rows)
        with open(self.path, "rb") as handle:
            handle.seek(start)
            offset = start
            for line in handle:
                whole = line.endswith(b"\n")
                if line.strip():
                    try:
                        outline = EpisodeOutline.model_validate_json(line)
                    except ValidationError as exc:
                        if not whole:
                            break  # a write in progress: read once it has its newline
                        self._skip(f"line at byte {offset}: not an episode ({_problem(exc)})")
                    else:
                        if outline.identity in self._seen:
                            self._skip(f"line at byte {offset}: a duplicate of an earlier episode; the first is kept")
                        else:
                            self._add(outline, offset, len(line))
                    self.whole_lines += whole
                    self._last = (offset, line)
                offset += len(line)
            self._end = offset
        if len(self.rows) != before:
            self.version += 1

    def _skip(self, problem: str) -> None:
        self.skipped += 1
        self.first_problem = self.first_problem or problem

    def _add(self, outline: EpisodeOutline, offset: int, length: int) -> None:
        row = outline.row(len(self.rows))
        self._seen.add(outline.identity)
        self.outlines.append(outline)
        self.rows.append(row)
        self.spans.append((offset, length))
        for key in FACETS:
            if row[key] is not None:
                self.facets[key].add(str(row[key]))

    def episode(self, n: int) -> Episode:
        """Episode ``n`` (0-based, see the module docstring), read whole from its line;
        IndexError when there is none, :class:`UnreadableEpisode` when its line is no longer one."""
        offset, length = self.spans[n]
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            line = handle.read(length)
        try:
            return Episode.model_validate_json(line)
        except ValidationError as exc:
            raise UnreadableEpisode(
                f"episode {n} of {self.path} (line at byte {offset}) is not a whole episode ({_problem(exc)}); "
                "fix or remove that line"
            ) from None
