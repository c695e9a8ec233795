"""The on-disk cache every layer shares: where it lives, content keys, atomic builds, file locks.

This module sits below everything (it imports nothing of horizongym). The cache folder is
``$HORIZONGYM_CACHE`` if set, else ``~/.cache/horizongym``. An artefact is
a folder named by its key; keys are content hashes (an index of a corpus is keyed by the
corpus's ``content_hash``) or, for generated data, a hash of the generator's parameters and
code version, so a stale artefact is never picked up: a change gives a new key.

``cached(key, build)`` is safe across threads and processes (pytest-xdist workers, several
trainers on one machine): a file lock serialises builders of one key, the builder writes into
a temporary sibling folder, and a rename publishes it whole, so readers see either nothing
or a complete artefact, even after a crash mid-build.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def cache_dir() -> Path:
    """The cache root: ``$HORIZONGYM_CACHE`` or ``~/.cache/horizongym`` (created if missing)."""
    root = Path(os.environ.get("HORIZONGYM_CACHE") or Path.home() / ".cache" / "horizongym").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_subdir(name: str) -> Path:
    """The folder ``name`` under the cache root (created if missing)."""
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class LockTimeout(RuntimeError):
    """A machine-wide lock was held by someone else for longer than the caller would wait."""


@contextmanager
def file_lock(name: str, timeout: float = 3600.0) -> Iterator[None]:
    """A machine-wide lock named ``name`` (a file under ``<cache>/locks``); ``LockTimeout`` after ``timeout`` s."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    lock = FileLock(str(cache_subdir("locks") / f"{safe}.lock"))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise LockTimeout(f"waited {timeout:.0f} s for the lock {lock.lock_file}; is another build stuck?") from exc
    try:
        yield
    finally:
        lock.release()


def source_files(*modules: str) -> list[tuple[str, Path]]:
    """``(label, path)`` of the ``.py`` files of ``modules`` (dotted names): a module's file, or every
    file of a package; the label is the dotted name and the path inside the package."""
    files: list[tuple[str, Path]] = []
    for name in modules:
        origin = Path(importlib.import_module(name).__file__ or "")
        if origin.name == "__init__.py":
            files.extend((f"{name}:{p.relative_to(origin.parent)}", p) for p in sorted(origin.parent.rglob("*.py")))
        else:
            files.append((name, origin))
    return files


def content_key(*parts: str | bytes, modules: tuple[str, ...] = (), length: int = 20) -> str:
    """A hex key of ``parts`` and of the source code of ``modules`` (a package counts whole).

    ``sha256(part₁ ‖ 0 ‖ … ‖ label₁ ‖ 0 ‖ source₁ ‖ 0 ‖ …)`` cut to ``length`` hex digits: a
    change to a parameter or to any file of the code that builds an artefact gives a new key, so
    a stale artefact is never picked up, and the key does not depend on where the code lies.
    """
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    for label, path in source_files(*modules):
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:length]


def build_atomically(target: Path, build: Callable[[Path], object], *, replace: bool = False) -> Path:
    """Run ``build(tmp)`` on a fresh temporary sibling of ``target``, then rename it to ``target``.

    Holds ``target``'s lock (``<target>.lock``) throughout. An existing ``target`` is kept and
    nothing is built, unless ``replace``: then the new folder takes its place. A failing
    ``build`` leaves no trace but the lock file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):
        if target.exists() and not replace:
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            build(tmp)
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                os.replace(target, old / "x")
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def cached(key: str, build: Callable[[Path], None]) -> Path:
    """The folder of artefact ``key`` in the cache, built with ``build(folder)`` if missing.

    ``build`` fills the (empty, temporary) folder it is given; it runs at most once per key
    however many threads or processes ask at the same time. Keys are file names: letters,
    digits, ``.``, ``_`` and ``-``.
    """
    if not _KEY.fullmatch(key):
        raise ValueError(f"cache key {key!r} must be letters, digits, '.', '_' or '-' (not starting with a dot)")
    target = cache_dir() / key
    if target.exists():  # the fast path: published folders are complete
        return target
    return build_atomically(target, build)
