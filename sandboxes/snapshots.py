"""Snapshots of a sandbox: its files now, restorable into any number of new sandboxes.

What a sandbox's commands can change is its files: the working directory and ``/tmp`` (in a
docker sandbox the root filesystem is read-only and these two are its only writable places). A
snapshot keeps them as *changes* from the task's starting files (``SandboxSpec.files``), as
``docker diff`` keeps a container's writable layer: a tar of every entry of the workdir that is
new or differs (kind, mode, content, link target) and all of ``/tmp``, plus the starting entries
that are gone (or changed kind). Processes still running are not kept (a restored sandbox runs
nothing), nor is ``/dev/shm``.

Two methods (``SandboxSnapshot.method``), measured by ``python -m horizongym.bench.sandbox``:

* ``archive`` — the changes are bytes in the snapshot: self-contained, picklable, restorable in
  any process for as long as the task's image exists. Restored into a new sandbox with the task's
  starting files (a warm one from a :class:`~horizongym.sandboxes.pool.SandboxPool` where one is
  given): the gone entries deleted, the tar unpacked over them. The local backend has this one.
* ``commit`` — the changes go into a docker image (``docker commit`` of a stopped helper
  container of the task's image that holds the tar; committing the running container would keep
  nothing, as its workdir and ``/tmp`` are tmpfs mounts outside its layer). The snapshot is a
  handle: the image's name. Restored by starting a new container from that image (never a warm
  one) and unpacking the tar from it. The image carries the owner labels of
  :mod:`horizongym.sandboxes.reaper` (``horizongym.kind=snapshot``): it lives until
  :func:`release_snapshot`, the end of the process that made it, or the next start-up's reaping
  after that process died.

Each restore gives a new sandbox: two restores of one snapshot share nothing.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from horizongym.sandboxes.base import Sandbox, SandboxSpec

if TYPE_CHECKING:
    from horizongym.sandboxes.pool import SandboxPool

SnapshotMethod = Literal["commit", "archive"]
SNAPSHOT_METHODS: tuple[SnapshotMethod, ...] = ("commit", "archive")
WORK = "work"
TMP = "tmp"
"""The top-level names of the workdir and ``/tmp`` in a packed tar (the exec server's ``pack``)."""


@dataclass(frozen=True)
class SandboxSnapshot:
    """A sandbox's files at one moment, as changes from its task's starting files (module docstring).

    ``spec`` is the sandbox's spec (the task's image and starting files); ``changes`` a tar of the
    new or changed workdir entries (under ``work/``) and of ``/tmp`` (under ``tmp/``), empty for
    ``commit``, whose tar lies in ``image``; ``removed`` the starting entries to delete first
    (relative to the workdir); ``backend`` the kind of sandbox it was taken from.
    """

    method: SnapshotMethod
    backend: Literal["docker", "local"]
    spec: SandboxSpec
    changes: bytes = b""
    removed: tuple[str, ...] = ()
    image: str | None = None


def check_method(method: str) -> SnapshotMethod:
    """``method`` if it is a snapshot method; a ValueError naming the choices otherwise."""
    if method not in SNAPSHOT_METHODS:
        raise ValueError(f"the snapshot method must be one of {SNAPSHOT_METHODS}, got {method!r}")
    return method


def _name(member: tarfile.TarInfo) -> str:
    return posixpath.normpath(member.name).lstrip("/")


def _kind(member: tarfile.TarInfo) -> bytes:
    return tarfile.REGTYPE if member.type == tarfile.AREGTYPE else member.type


def _same(a: tarfile.TarInfo, a_tar: tarfile.TarFile, b: tarfile.TarInfo, b_tar: tarfile.TarFile) -> bool:
    if a.islnk() or b.islnk():  # a hard link is kept as a copy of its target's content
        return False
    if _kind(a) != _kind(b) or (a.mode & 0o7777) != (b.mode & 0o7777):
        return False
    if a.issym():
        return a.linkname == b.linkname
    if a.isfile():
        if a.size != b.size:
            return False
        a_data, b_data = a_tar.extractfile(a), b_tar.extractfile(b)
        return a_data is not None and b_data is not None and a_data.read() == b_data.read()
    return True


def _empty_tar() -> bytes:
    buffer = io.BytesIO()
    tarfile.open(fileobj=buffer, mode="w").close()
    return buffer.getvalue()


def changes_since(starting_files: bytes, packed: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The changes of a packed sandbox (a tar of ``work/`` and ``tmp/``) from its starting files.

    Returns the tar of what is new or differs (hard links as copies of their target's content)
    and the starting entries gone or of another kind, parents before children and children of a
    removed folder left out (deleting the folder deletes them).
    """
    out = io.BytesIO()
    present: set[str] = set()
    removed: list[str] = []
    with (
        tarfile.open(fileobj=io.BytesIO(starting_files or _empty_tar()), mode="r:") as base_tar,
        tarfile.open(fileobj=io.BytesIO(packed), mode="r:") as now,
        tarfile.open(fileobj=out, mode="w") as delta,
    ):
        base = {_name(m): m for m in base_tar.getmembers()}
        base.pop(".", None)
        for member in now.getmembers():
            top, _, relative = _name(member).partition("/")
            if not relative:
                continue
            if top == WORK:
                present.add(relative)
                old = base.get(relative)
                if old is not None and _same(member, now, old, base_tar):
                    continue
                if old is not None and _kind(old) != _kind(member) and not member.islnk():
                    removed.append(relative)  # a file became a folder (or the reverse): delete it first
            if member.islnk():
                data = now.extractfile(member)
                content = data.read() if data is not None else b""
                copy = tarfile.TarInfo(member.name)
                copy.size, copy.mode, copy.mtime = len(content), member.mode, member.mtime
                delta.addfile(copy, io.BytesIO(content))
            elif member.isfile():
                delta.addfile(member, now.extractfile(member))
            else:
                delta.addfile(member)
    removed.extend(name for name in base if name not in present)
    kept: list[str] = []
    for name in sorted(set(removed)):
        if not any(name.startswith(parent + "/") for parent in kept):
            kept.append(name)
    return out.getvalue(), tuple(kept)


def snapshot_sandbox(sandbox: Sandbox, method: SnapshotMethod) -> SandboxSnapshot:
    """A snapshot of ``sandbox``'s files (a docker or a local sandbox) by ``method``."""
    from horizongym.sandboxes.local import LocalSandbox

    check_method(method)
    if isinstance(sandbox, LocalSandbox):
        return sandbox.snapshot(method)
    from horizongym.sandboxes.docker import DockerSandbox

    if isinstance(sandbox, DockerSandbox):
        return sandbox.snapshot(method)
    raise TypeError(f"a {type(sandbox).__name__} cannot be snapshot (docker and local sandboxes can)")


def restore_sandbox(snapshot: SandboxSnapshot, *, pool: SandboxPool | None = None) -> Sandbox:
    """A new sandbox holding ``snapshot``'s files (docker snapshots: from ``pool`` where given and
    the method allows); close it like any other."""
    if not isinstance(snapshot, SandboxSnapshot):
        raise TypeError(f"expected a SandboxSnapshot, got {type(snapshot).__name__}")
    if snapshot.backend == "local":
        from horizongym.sandboxes.local import LocalSandbox

        return LocalSandbox.restore(snapshot)
    from horizongym.sandboxes.docker import DockerSandbox

    return DockerSandbox.restore(snapshot, pool=pool)


def release_snapshot(snapshot: SandboxSnapshot) -> None:
    """Free what ``snapshot`` holds outside the process (a committed image); nothing for ``archive``."""
    if snapshot.image is not None:
        from horizongym.sandboxes.docker import remove_snapshot_image

        remove_snapshot_image(snapshot.image)
