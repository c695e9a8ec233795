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
from collections.abc import Iterator
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
            self._handle = open(self.path, "ab")  # noqa: SIM115 - kept open across appends
        return self._handle

    def append(self, episode: Episode) -> None:
        """Write one episode as one line, then flush and fsync.

        The line is read back before it is written: an episode that would not validate on
        reading (a value of the wrong type in a record built without validation) raises
        :class:`UnreadableEpisode` and leaves the file as it was.
        """
        text = episode.model_dump_json()
        try:
            Episode.model_validate_json(text)
        except ValueError as exc:
            raise UnreadableEpisode(
                f"refused to store episode (seed {episode.seed}, sample {episode.sample}) of {episode.env_id}: "
                f"it would not read back ({exc})"
            ) from None
        line = text.encode() + b"\n"
        with self._lock:
            handle = self._open()
            handle.write(line)
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
        """The (seed, sample) pairs already stored (of that env and those kwargs, when given)."""
        return {
            episode.key
            for episode in iter_episodes(self.path)
            if (env_id is None or episode.env_id == env_id) and (env_kwargs is None or episode.env_kwargs == env_kwargs)
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
