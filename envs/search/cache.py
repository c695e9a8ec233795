"""Where built search artefacts (corpora, indexes) live, and how each is built exactly once.

The cache folder is ``$HORIZONGYM_CACHE`` if set, else ``~/.cache/horizongym``. An artefact is
a folder named by its key; keys are content hashes (an index of a corpus is keyed by the
corpus's ``content_hash``) or, for generated data, a hash of the generator's parameters and
code version, so a stale artefact is never picked up: a change gives a new key.

``cached(key, build)`` is safe across threads and processes (pytest-xdist workers, several
trainers on one machine): a file lock serialises builders of one key, the builder writes into
a temporary sibling folder, and a rename publishes it whole, so readers see either nothing
or a complete artefact, even after a crash mid-build.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def cache_dir() -> Path:
    """The cache root: ``$HORIZONGYM_CACHE`` or ``~/.cache/horizongym`` (created if missing)."""
    root = Path(os.environ.get("HORIZONGYM_CACHE") or Path.home() / ".cache" / "horizongym").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_atomically(target: Path, build: Callable[[Path], None], *, replace: bool = False) -> Path:
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
