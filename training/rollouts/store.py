"""Append-only JSONL episode store: one episode per line, flushed and fsynced per episode.

A crash loses at most the episodes in flight. A torn last line (a write cut short by a
kill) is ignored by readers and cut off before the next append, so a resumed run writes
whole lines only and skips every (seed, sample) pair already stored.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from horizongym.training.rollouts.trajectory import Episode


def _cut_torn_tail(path: Path) -> None:
    """Truncate the file after its last newline, dropping a partially written line."""
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        position = size
        chunk = 65536
        while position > 0:
            start = max(0, position - chunk)
            handle.seek(start)
            data = handle.read(position - start)
            newline = data.rfind(b"\n")
            if newline != -1:
                end = start + newline + 1
                if end != size:
                    handle.truncate(end)
                return
            position = start
        handle.truncate(0)


class UnreadableEpisode(ValueError):
    """An episode that would not validate when read back; the store does not write it."""


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
                _cut_torn_tail(self.path)
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
        return iter(read_episodes(self.path))

    def finished_keys(
        self, env_id: str | None = None, env_kwargs: dict[str, Any] | None = None
    ) -> set[tuple[int, int]]:
        """The (seed, sample) pairs already stored (of that env and those kwargs, when given)."""
        return {
            episode.key
            for episode in read_episodes(self.path)
            if (env_id is None or episode.env_id == env_id) and (env_kwargs is None or episode.env_kwargs == env_kwargs)
        }


def read_episodes(path: str | os.PathLike[str]) -> list[Episode]:
    """Read every whole episode; a torn last line is skipped, a bad line elsewhere warns."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    episodes = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            episodes.append(Episode.model_validate(json.loads(line)))
        except ValueError as exc:
            if number < len(lines):
                warnings.warn(f"{path}:{number}: skipped an unreadable episode ({exc})", stacklevel=2)
    return episodes
