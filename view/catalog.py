"""The runs ``horizongym view`` shows: the sources named on its command line, and the play-out file.

A source is a run file (``RUN.jsonl``, as ``rollout`` writes it) or a trainer's ``--out`` folder
(its ``episodes.jsonl`` and ``metrics.jsonl``; its ``init/`` folder holds the tokenizer that decodes
its token ids). Runs get the ids ``r0``, ``r1``... in the order given; :meth:`RunCatalog.add` adds
one later (the play-out file, which need not exist yet). Each run's file is indexed once
(:class:`~horizongym.view.index.EpisodeIndex`) and kept up to date as it grows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from horizongym.argtypes import os_error
from horizongym.training.rollouts.trajectory import Episode
from horizongym.view.errors import ApiError, not_found
from horizongym.view.index import EpisodeIndex, UnreadableEpisode

RunKind = Literal["episodes", "train"]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
"""Files that mark a folder as a transformers tokenizer (``save_pretrained``)."""


class RunSourceError(ValueError):
    """A source that is no run: missing, unreadable, not episodes, or empty (one line with the fix)."""


def _is_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


@dataclass
class Run:
    """One run of the catalog."""

    id: str
    name: str
    source: Path
    """The path as given: a run file or a trainer's out folder."""
    episodes_path: Path
    metrics_path: Path | None
    kind: RunKind
    tokenizer: Path | None
    """The folder of the tokenizer that decodes its token ids; None: ids are shown as ``<id>``."""
    index: EpisodeIndex
    summary_cache: tuple[int, dict[str, Any]] | None = field(default=None, repr=False)
    """The summary of the index's last version (:mod:`horizongym.view.run_summary`)."""

    def refreshed(self) -> EpisodeIndex:
        """The index, brought up to date with the file (ApiError 500 when it cannot be read now)."""
        try:
            self.index.refresh()
        except OSError as exc:
            raise ApiError(500, f"cannot read the run's episodes: {os_error(exc)}") from None
        return self.index

    def episode(self, n: int) -> Episode:
        """Episode ``n`` of the run, whole; ApiError 404 when there is none."""
        index = self.refreshed()
        if not 0 <= n < len(index):
            last = f"pick 0..{len(index) - 1}" if len(index) else "it holds no episodes"
            raise not_found(f"run {self.id} has no episode {n} ({last})")
        try:
            return index.episode(n)
        except UnreadableEpisode as exc:
            raise ApiError(422, str(exc)) from None
        except OSError as exc:
            raise ApiError(500, f"cannot read the run's episodes: {os_error(exc)}") from None

    def info(self) -> dict[str, Any]:
        """The run as ``/api/runs`` lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "path": str(self.source),
            "episodes": len(self.refreshed()),
            "metrics": self.metrics_path is not None and self.metrics_path.is_file(),
            "kind": self.kind,
        }


class RunCatalog:
    """The runs of one ``horizongym view``: ``sources`` (run files or trainer out folders) as ``r0``, ``r1``...

    ``tokenizer`` decodes the token ids of runs whose source names none (a trainer's ``init/`` wins).
    Raises :class:`RunSourceError` for a source that is no run.
    """

    def __init__(
        self, sources: Sequence[str | os.PathLike[str]] = (), *, tokenizer: str | os.PathLike[str] | None = None
    ) -> None:
        self.tokenizer = Path(tokenizer) if tokenizer is not None else None
        if self.tokenizer is not None and not _is_tokenizer(self.tokenizer):
            raise RunSourceError(
                f"--tokenizer {self.tokenizer}: no tokenizer there (no {' or '.join(TOKENIZER_FILES)}); "
                "give a folder written by save_pretrained"
            )
        self._runs: list[Run] = []
        self._lock = threading.Lock()
        for source in sources:
            self._open(Path(source), given=True)

    @property
    def runs(self) -> list[Run]:
        return list(self._runs)

    def get(self, run_id: str) -> Run:
        """The run ``run_id``; ApiError 404 naming the ids there are."""
        for run in self._runs:
            if run.id == run_id:
                return run
        known = ", ".join(run.id for run in self._runs) or "none"
        raise not_found(f"no run {run_id!r}: the runs are {known} (GET /api/runs lists them)")

    def find(self, path: str | os.PathLike[str]) -> Run | None:
        """The run whose episodes are in the file ``path``, if the catalog holds it."""
        target = Path(path).resolve()
        return next((run for run in self._runs if run.episodes_path.resolve() == target), None)

    def add(self, path: str | os.PathLike[str]) -> Run:
        """The run of the episode file ``path`` (added now when new; the file need not exist yet)."""
        return self._open(Path(path), given=False)

    def _open(self, source: Path, *, given: bool) -> Run:
        with self._lock:
            metrics: Path | None
            if source.is_dir():
                episodes, metrics = source / "episodes.jsonl", source / "metrics.jsonl"
                if not episodes.is_file() and not metrics.is_file():
                    raise RunSourceError(
                        f"{source} is a folder without episodes.jsonl or metrics.jsonl: give a run file (RUN.jsonl) "
                        "or a trainer's --out folder"
                    )
                folder: Path | None = source
            else:
                if given and not source.is_file():
                    raise RunSourceError(
                        f"no episode file at {source}: give a run file (RUN.jsonl) or a trainer's --out folder"
                    )
                episodes = source
                sibling = source.parent / "metrics.jsonl"
                folder = source.parent if source.name == "episodes.jsonl" and sibling.is_file() else None
                metrics = sibling if folder is not None else None
            existing = self.find(episodes)
            if existing is not None:
                return existing
            kind: RunKind = "train" if metrics is not None and metrics.is_file() else "episodes"
            init = folder / "init" if folder is not None else None
            run = Run(
                id=f"r{len(self._runs)}",
                name=source.resolve().name,
                source=source,
                episodes_path=episodes,
                metrics_path=metrics,
                kind=kind,
                tokenizer=init if init is not None and _is_tokenizer(init) else self.tokenizer,
                index=EpisodeIndex(episodes),
            )
            try:
                run.index.refresh()
            except OSError as exc:
                raise RunSourceError(f"cannot read the run's episodes: {os_error(exc)}") from None
            if run.index.not_episodes:
                raise RunSourceError(
                    f"{episodes} is not an episode file: none of its lines is an episode ({run.index.first_problem}); "
                    "'horizongym view' reads the JSONL files 'rollout' and 'train' write"
                )
            if given and source.is_file() and not len(run.index):
                raise RunSourceError(f"{source} holds no episodes")
            self._runs.append(run)
            return run
