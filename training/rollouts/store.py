"""Append-only JSONL episode store: one episode per line, flushed and fsynced per episode.

A crash loses at most the episodes in flight. What readers make of a file that is not what the
store wrote:

* a **torn last line** (a write cut short by a kill: no newline at its end) is skipped with a
  warning if it is not a whole episode, and cut off before the next append; a last line that
  is a whole episode and lacks only its newline is read, and the next append adds the newline;
* a **bad line** anywhere else (not JSON, not an episode: hand-edited, truncated, overwritten)
  is skipped with a warning naming ``FILE:LINE`` and what is wrong; every other line is read;
* a **duplicate**: a run holds each episode once, an episode being its env id, env kwargs,
  policy, seed, sample and branch. A later line with the identity of an earlier one (a line copied
  twice, two processes appending the same run) is skipped with a warning naming both lines:
  the first stored wins, so readers see every episode once, and :meth:`EpisodeStore.finished_keys`
  (a set) counts it once; a resumed run skips it and never stores it again;
* a file with whole lines none of which is an episode raises :class:`NotAnEpisodeFile`:
  appending a run to it, or summarizing it, would be a mistake.

At most :data:`MAX_LINE_WARNINGS` lines are warned about one by one; one more warning counts
the rest. Warnings are :class:`EpisodeFileWarning`.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

from horizongym.argtypes import os_error
from horizongym.training.rollouts.trajectory import Episode

MAX_LINE_WARNINGS = 10
"""Bad lines of one file warned about one by one; the rest are counted in one warning."""


class EpisodeFileWarning(UserWarning):
    """A line of an episode file that readers skipped (torn, not an episode, a duplicate)."""


class NotAnEpisodeFile(ValueError):
    """A file none of whose whole lines is an episode."""


class UnreadableEpisode(ValueError):
    """An episode that would not validate when read back; the store does not write it."""


def _repair_tail(path: Path) -> None:
    """End the file with a newline: a last line that is a whole episode gets its newline, any
    other text after the last newline (a torn write) is cut off."""
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        position = size
        chunk = 65536
        end = 0
        while position > 0:
            start = max(0, position - chunk)
            handle.seek(start)
            data = handle.read(position - start)
            newline = data.rfind(b"\n")
            if newline != -1:
                end = start + newline + 1
                break
            position = start
        if end == size:
            return
        handle.seek(end)
        if _episode_or_problem(handle.read())[0] is not None:
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
        else:
            handle.truncate(end)


def _checked_line(episode: Episode) -> bytes:
    """The episode's line, newline included, once it is known to read back; :class:`UnreadableEpisode` if not."""
    text = episode.model_dump_json()
    try:
        Episode.model_validate_json(text)
    except ValueError as exc:
        raise UnreadableEpisode(
            f"refused to store episode (seed {episode.seed}, sample {episode.sample}, branch {episode.branch}) "
            f"of {episode.env_id}: it would not read back ({exc})"
        ) from None
    return text.encode() + b"\n"


def _tree_identity(row: dict[str, Any]) -> tuple[str, str, Any, Any]:
    """The tree a stored line belongs to: env id, env kwargs, seed and sample (the line as JSON).

    Not the policy: a branch added later to a stored trunk may be another policy's (``play --from``
    stores a person's continuation under policy ``human``), and it belongs to that trunk's tree."""
    kwargs = json.dumps(row.get("env_kwargs", {}), sort_keys=True, default=str)
    return (str(row.get("env_id")), kwargs, row.get("seed"), row.get("sample", 0))


def _cut_unfinished_tree(path: Path, chunk: int = 1 << 20) -> None:
    """Cut off a tree cut short by a kill: the trailing branch lines whose trunk is not on file before them.

    A tree is written branches first, trunk last; a kill in that write can leave some of its branches
    and no trunk. A resumed run plays the whole tree again: left in place, the old branches would be
    duplicates of the new (and the first line wins). A branch added later to a stored trunk (its
    trunk earlier in the file) is kept. Warns (:class:`EpisodeFileWarning`) with the number cut.
    """
    trailing = _trailing_branch_lines(path, chunk)
    if not trailing:
        return
    trunks: set[tuple[str, str, Any, Any]] = set()
    first_branch = trailing[-1][0]
    with open(path, "rb") as handle:
        for line in handle:
            if handle.tell() > first_branch:
                break
            row = _json_row(line)
            if row is not None and not row.get("branch"):
                trunks.add(_tree_identity(row))
    orphans = [offset for offset, row in trailing if _tree_identity(row) not in trunks]
    if not orphans:
        return
    cut_at = min(orphans)
    count = sum(1 for offset, _ in trailing if offset >= cut_at)
    with open(path, "rb+") as handle:
        handle.truncate(cut_at)
    warnings.warn(
        f"{path}: cut off the last {count} branch episodes: a tree cut short (no trunk after them) that a "
        "resumed run plays again whole",
        EpisodeFileWarning,
        stacklevel=3,
    )


def _trailing_branch_lines(path: Path, chunk: int) -> list[tuple[int, dict[str, Any]]]:
    """The (offset, JSON row) of the branch lines (``branch`` > 0) at the end of the file, last first;
    read backwards a chunk at a time, so only the tail is read. The file ends with a newline."""
    found: list[tuple[int, dict[str, Any]]] = []
    with open(path, "rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        data = b""  # the file's bytes from ``position`` up to the last line not yet looked at
        while True:
            newline = data.rfind(b"\n", 0, max(0, len(data) - 1))
            if newline == -1 and position > 0:
                start = max(0, position - chunk)
                handle.seek(start)
                data = handle.read(position - start) + data
                position = start
                continue
            if not data:
                return found
            line = data[newline + 1 :]
            data = data[: newline + 1]
            if not line.strip():
                continue
            row = _json_row(line)
            if row is None or not row.get("branch"):
                return found
            found.append((position + newline + 1, row))


def _json_row(line: bytes) -> dict[str, Any] | None:
    """The JSON object on ``line``; None when it is not one."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return row if isinstance(row, dict) else None


class EpisodeStore:
    """Episodes in a JSONL file. Safe to append from several threads of one process."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._handle: BinaryIO | None = None

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> BinaryIO:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                _repair_tail(self.path)
                _cut_unfinished_tree(self.path)
            self._handle = open(self.path, "ab")  # noqa: SIM115 - kept open across appends
        return self._handle

    def append(self, episode: Episode) -> None:
        """Write one episode as one line, then flush and fsync.

        The line is read back before it is written: an episode that would not validate on
        reading (a value of the wrong type in a record built without validation) raises
        :class:`UnreadableEpisode` and leaves the file as it was.
        """
        line = _checked_line(episode)
        with self._lock:
            handle = self._open()
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def append_many(self, episodes: Sequence[Episode]) -> None:
        """Write several episodes (a tree: its branches, then its trunk) in one write, then flush and fsync.

        Every line is read back first, as :meth:`append` does: one that would not validate raises
        :class:`UnreadableEpisode` and nothing is written. A kill during the write can leave the
        first lines of the tree on file without its trunk; the next :meth:`append` cuts them off.
        """
        data = b"".join(_checked_line(episode) for episode in episodes)
        with self._lock:
            handle = self._open()
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def __iter__(self) -> Iterator[Episode]:
        return iter_episodes(self.path)

    def finished_keys(
        self, env_id: str | None = None, env_kwargs: dict[str, Any] | None = None
    ) -> set[tuple[int, int]]:
        """The (seed, sample) pairs already stored (of that env and those kwargs, when given): their
        episodes, or their trees' trunks (a tree's trunk is stored last: a trunk on file is a whole tree)."""
        return {
            episode.key
            for episode in iter_episodes(self.path)
            if not episode.branch
            and (env_id is None or episode.env_id == env_id)
            and (env_kwargs is None or episode.env_kwargs == env_kwargs)
        }


def read_episodes(path: str | os.PathLike[str]) -> list[Episode]:
    """Every episode of the file, each once, in file order (see the module docstring for bad lines);
    ``[]`` when there is no file."""
    return list(iter_episodes(path))


class RunFileError(ValueError):
    """A run file a command cannot read: missing, unreadable, not episodes, or empty (one line with the fix)."""


def read_run(path: str | os.PathLike[str], command: str) -> list[Episode]:
    """The episodes of the run file ``path`` that ``horizongym COMMAND`` reads; :class:`RunFileError`
    when there is no such file, it cannot be read, none of its lines is an episode, or it is empty."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"no episode file at {path}")
    try:
        episodes = read_episodes(path)
    except NotAnEpisodeFile as exc:
        raise RunFileError(f"{exc}; 'horizongym {command}' reads the JSONL files 'rollout' and 'train' write") from None
    except OSError as exc:
        raise RunFileError(f"cannot read {path}: {os_error(exc)}") from None
    if not episodes:
        raise RunFileError(f"{path} holds no episodes")
    return episodes


def iter_episodes(path: str | os.PathLike[str]) -> Iterator[Episode]:
    """The episodes of :func:`read_episodes`, read one line at a time."""
    path = Path(path)
    if not path.exists():
        return
    seen: dict[tuple[str, str, str, int, int, int], int] = {}
    warned = skipped = whole_lines = 0
    first_problem = ""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            torn = not line.endswith(b"\n")
            if not line.strip():
                continue
            whole_lines += not torn
            episode, problem = _episode_or_problem(line)
            if episode is not None:
                identity = _identity(episode)
                first = seen.setdefault(identity, number)
                if first == number:
                    yield episode
                    continue
                problem = (
                    f"a duplicate of line {first} (env {episode.env_id}, seed {episode.seed}, sample {episode.sample});"
                    " the first is kept"
                )
            elif torn:
                problem = f"a torn last line, cut short while it was written: {problem}; the next append cuts it off"
            skipped += 1
            first_problem = first_problem or f"line {number}: {problem}"
            if warned < MAX_LINE_WARNINGS:
                warned += 1
                warnings.warn(f"{path}:{number}: skipped {problem}", EpisodeFileWarning, stacklevel=2)
    if skipped > warned:
        warnings.warn(f"{path}: skipped {skipped - warned} more bad lines", EpisodeFileWarning, stacklevel=2)
    if whole_lines and not seen:
        raise NotAnEpisodeFile(f"{path} is not an episode file: none of its lines is an episode ({first_problem})")


def _episode_or_problem(line: bytes) -> tuple[Episode | None, str]:
    """The episode on ``line``, or None and what is wrong with it, in a few words."""
    try:
        return Episode.model_validate(json.loads(line)), ""
    except ValidationError as exc:
        return None, f"not an episode ({_problems(exc)})"
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, f"not JSON ({_first_line(exc)})"


def _problems(exc: ValidationError, shown: int = 3) -> str:
    """The first ``shown`` problems of a validation error, one line: ``field.path: message``."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'the line'}: {e['msg']}" for e in errors[:shown]]
    more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(parts) + more


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _identity(episode: Episode) -> tuple[str, str, str, int, int, int]:
    """What makes an episode the same one: env id, env kwargs, policy, seed, sample and branch."""
    kwargs = json.dumps(episode.env_kwargs, sort_keys=True, default=str)
    return (episode.env_id, kwargs, episode.policy, episode.seed, episode.sample, episode.branch)
