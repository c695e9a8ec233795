"""The exec server that runs inside every docker sandbox (standard library only).

:class:`~horizongym.sandboxes.docker.DockerSandbox` starts this file as the container's main
process (``python3 -c <this source>``, under docker's init) and talks to it over the attached
stdin/stdout: one round trip per command instead of docker's create-exec/start/inspect calls.

Wire format, both ways: a 4-byte big-endian length, a JSON header of that length, then
``header["blob"]`` raw bytes (file contents, tar archives; 0 when absent). Requests carry
``op``; every reply carries ``ok`` and, when ``ok`` is false, ``error`` (and ``errno``).

Operations:

* ``hello`` — the server's pid and Python version (a health check);
* ``exec`` — ``bash -lc cmd`` in a new session in ``cwd``; output (stdout and stderr together)
  read until the command exits, plus a short drain, cut head+tail to ``max_output`` bytes. On
  ``timeout`` the process group and every other process but init and this server are SIGKILLed
  (repeatedly, which also stops fork bombs) and the partial output comes back. The reply names
  the containment limit that stopped the command, read from the container's cgroup counters:
  ``timeout``, ``memory`` (the cgroup's ``oom_kill`` count rose), ``pids`` (the cgroup's pids
  ``max`` count rose: the command is stopped at once), ``file_size`` (SIGXFSZ, or EFBIG);
* ``write`` / ``read`` — a file's bytes (the workdir is a tmpfs that docker's archive API does
  not see, so files travel this way);
* ``reset`` — kill every other process, empty ``wipe`` folders, unpack the blob (a tar) in
  ``workdir``;
* ``pack`` — a tar of folders, each under its own top-level name (a snapshot's files);
* ``overlay`` — put such a tar (the blob, or a file ``path`` in the image) over the folders,
  after emptying ``wipe`` folders and deleting ``remove`` paths (a snapshot restored);
* ``kill`` — kill every other process.

The server exits when its stdin closes, killing every other process first.

Users: the container starts as root with only the SETUID, SETGID and KILL capabilities; the
server keeps them and runs every command, and every file operation, as the unprivileged uid/gid
given on its command line (``python3 -I -c SOURCE UID GID``). Commands thus cannot signal the
server (``kill -9 -1`` or ``pkill python`` in a command leaves it alone) while the server can
kill everything they start. Started as a non-root user, it runs everything as itself.
"""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

READ_CHUNK = 65536
DRAIN_S = 0.05
"""How long to wait for more output once the command exited (background jobs may hold the pipe)."""
DRAIN_MAX_S = 0.5
"""The longest that drain goes on while background jobs keep writing."""
KILL_WINDOW_S = 5.0
WATCH_S = 0.1
"""How often a running command's cgroup counters are looked at."""

OOM_FILES = ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events")
PIDS_FILES = ("/sys/fs/cgroup/pids/pids.events", "/sys/fs/cgroup/pids.events")
_seen = {"pids_max": -1}


RUN_UID = os.getuid()
RUN_GID = os.getgid()
SWITCH = False
"""Whether commands and file operations run as another (unprivileged) user (set by :func:`main`)."""


@contextmanager
def as_user() -> Iterator[None]:
    """File operations as the commands' user, so that what they create is theirs."""
    if not SWITCH:
        yield
        return
    os.setegid(RUN_GID)
    os.seteuid(RUN_UID)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def _read_exact(n: int) -> bytes:
    parts = []
    while n:
        chunk = os.read(0, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _send(header: dict, blob: bytes = b"") -> None:
    header["blob"] = len(blob)
    data = json.dumps(header).encode()
    out = memoryview(struct.pack(">I", len(data)) + data + blob)
    while out:
        written = os.write(1, out)
        out = out[written:]


def _counter(paths: tuple[str, ...], key: str) -> int | None:
    """A named counter from the first readable cgroup file, or None where none is readable."""
    for path in paths:
        try:
            with open(path) as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def _other_pids() -> list[int]:
    """Live processes besides init (pid 1) and this server; zombies do not count."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in (1, me):
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            found.append(pid)
    return found


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_others() -> bool:
    """SIGKILL every process but init and this server until none is left (True) or time is up."""
    end = time.monotonic() + KILL_WINDOW_S
    while True:
        with suppress(OSError):
            os.kill(-1, signal.SIGKILL)
        _reap()
        if not _other_pids():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.002)


class OutputCap:
    """Keeps the first and last ``limit // 2`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.half:
                del self.tail[: len(self.tail) - self.half]

    def text(self) -> tuple[str, bool]:
        tail = self.tail[-self.half :] if len(self.tail) > self.half else self.tail
        cut = self.total - len(self.head) - len(tail)
        if cut <= 0:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace"), False
        note = f"\n[... {cut} bytes of output cut ...]\n".encode()
        return (bytes(self.head) + note + bytes(tail)).decode("utf-8", "replace"), True


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _signal_of(code: int) -> int | None:
    return code - 128 if 128 < code < 160 else None


def do_exec(req: dict) -> dict:
    timeout = float(req.get("timeout", 30.0))
    out = OutputCap(int(req.get("max_output", 32000)))
    env = dict(os.environ)
    env.update(req.get("env") or {})
    oom_before = _counter(OOM_FILES, "oom_kill")
    pids_before = _counter(PIDS_FILES, "max")
    if pids_before is not None and pids_before > _seen["pids_max"] >= 0:
        kill_others()  # something a command left running hit the pids limit since: a fork bomb
    _seen["pids_max"] = -1 if pids_before is None else pids_before
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            ["bash", "-lc", req["cmd"]],
            cwd=req.get("cwd") or None,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_user_kwargs(),
        )
    except OSError as exc:
        limit = "pids" if isinstance(exc, BlockingIOError) else None
        if limit:
            kill_others()
        return {
            "ok": True,
            "exit_code": 126,
            "output": f"cannot start the command: {exc}",
            "truncated": False,
            "timed_out": False,
            "limit": limit,
            "duration": time.monotonic() - start,
        }
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    pidfd = -1
    try:
        pidfd = os.pidfd_open(proc.pid)
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):
        pass
    deadline = start + timeout
    stopped: str | None = None
    pipe_open = True
    next_watch = start + WATCH_S
    while True:
        now = time.monotonic()
        if now >= deadline:
            stopped = "timeout"
            break
        if now >= next_watch:
            next_watch = now + WATCH_S
            pids_now = _counter(PIDS_FILES, "max")
            if pids_before is not None and pids_now is not None and pids_now > pids_before:
                stopped = "pids"
                break
        if proc.poll() is not None:
            break
        wait = min(deadline - now, WATCH_S if pidfd >= 0 else 0.01)
        for ready_fd, _ in poller.poll(max(wait, 0.0) * 1000):
            if ready_fd == fd:
                chunk = _read_some(fd)
                if chunk:
                    out.add(chunk)
                elif chunk is not None:
                    poller.unregister(fd)
                    pipe_open = False
    if stopped:
        with suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    returncode = proc.wait()
    if stopped:
        kill_others()
    if pipe_open:
        _drain(fd, out, DRAIN_S, min(time.monotonic() + DRAIN_MAX_S, deadline))
    proc.stdout.close()
    if pidfd >= 0:
        os.close(pidfd)
    duration = time.monotonic() - start
    code = _exit_code(returncode)
    sig = _signal_of(code)
    text, truncated = out.text()
    oom_after = _counter(OOM_FILES, "oom_kill")
    pids_after = _counter(PIDS_FILES, "max")
    oom_hit = oom_before is not None and oom_after is not None and oom_after > oom_before
    pids_hit = pids_before is not None and pids_after is not None and pids_after > pids_before
    if pids_hit and stopped is None:
        kill_others()  # the command left a fork bomb running in the background
    fresh = _counter(PIDS_FILES, "max")
    _seen["pids_max"] = -1 if fresh is None else fresh
    limit = stopped
    if oom_hit and stopped != "timeout":
        limit = "memory"
    elif stopped is None and oom_before is None and sig == signal.SIGKILL:
        limit = "memory"  # no counter to read: an unexplained SIGKILL is most likely the OOM killer
    elif pids_hit:
        limit = "pids"
    elif stopped is None and (sig == signal.SIGXFSZ or _file_size_note(code, text)):
        limit = "file_size"
    return {
        "ok": True,
        "exit_code": code,
        "output": text,
        "truncated": truncated,
        "timed_out": stopped == "timeout",
        "limit": limit,
        "duration": duration,
        "counters": {"oom_kill": [oom_before, oom_after], "pids_max": [pids_before, pids_after]},
    }


def _file_size_note(code: int, text: str) -> bool:
    """Whether the output tells of a write past RLIMIT_FSIZE (EFBIG in a failed command, or bash's report)."""
    return "File size limit exceeded" in text or (code != 0 and "File too large" in text)


def _user_kwargs() -> dict:
    if not SWITCH:
        return {}
    return {"user": RUN_UID, "group": RUN_GID, "extra_groups": []}  # Python >= 3.9 in the image


def _read_some(fd: int) -> bytes | None:
    """Bytes from ``fd``; b"" at end of file; None when nothing is there right now."""
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return None


def _drain(fd: int, out: OutputCap, quiet_s: float, until: float) -> None:
    """Read what is left until end of file, the pipe stays quiet for ``quiet_s``, or time ``until``."""
    while True:
        wait = min(quiet_s, until - time.monotonic())
        if wait <= 0:
            return
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            return
        chunk = _read_some(fd)
        if chunk == b"":
            return
        if chunk:
            out.add(chunk)


def _empty(folder: str) -> None:
    """Remove everything inside ``folder`` (making unreadable folders readable first)."""

    def fix(func: object, path: str, exc_info: object) -> None:
        try:
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
        except OSError:
            pass
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with suppress(OSError):
                os.unlink(path)

    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    except PermissionError:
        os.chmod(folder, 0o755)
        names = os.listdir(folder)
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=fix)
        else:
            try:
                os.unlink(path)
            except OSError:
                fix(os.unlink, path, None)


def _unpack(blob: bytes, workdir: str) -> None:
    """Unpack a tar into ``workdir``, refusing members that would land outside it."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as archive:
        _extract(archive, archive.getmembers(), workdir)


def _extract(archive: tarfile.TarFile, members: list[tarfile.TarInfo], workdir: str) -> None:
    """Extract ``members`` of ``archive`` into ``workdir`` (as the running user), refusing any outside it."""
    root = os.path.realpath(workdir)
    kept = []
    for member in members:
        target = os.path.realpath(os.path.join(root, member.name))
        if target != root and not target.startswith(root + os.sep):
            raise ValueError(f"archive member {member.name!r} is outside the workdir")
        if member.isdev():
            continue
        if member.issym() or member.islnk():
            link = os.path.realpath(os.path.join(os.path.dirname(target), member.linkname))
            if member.islnk():
                link = os.path.realpath(os.path.join(root, member.linkname))
            if link != root and not link.startswith(root + os.sep):
                raise ValueError(f"archive link {member.name!r} points outside the workdir")
        member.uid, member.gid = os.geteuid(), os.getegid()
        member.uname = member.gname = ""
        member.mode |= stat.S_IRUSR | stat.S_IWUSR | (stat.S_IXUSR if member.isdir() else 0)
        kept.append(member)
    archive.extractall(root, members=kept, numeric_owner=True)


def _extract_snapshot(archive: tarfile.TarFile, members: list[tarfile.TarInfo], workdir: str) -> None:
    """Extract a snapshot's ``members`` into ``workdir`` one at a time. A symbolic link may point
    anywhere (a virtualenv's ``bin/python -> /usr/bin/python3``: the sandbox's own files, as its
    commands made them); what keeps every write inside ``workdir`` is that each member's folder is
    resolved as extracted so far (through the links already made) and must lie inside it, and a link
    already at a member's place is removed, not written through."""
    root = os.path.realpath(workdir)
    for member in members:
        path = os.path.join(root, member.name)
        parent = os.path.realpath(os.path.dirname(path))
        if parent != root and not parent.startswith(root + os.sep):
            raise ValueError(f"archive member {member.name!r} is outside the workdir")
        if member.isdev() or not os.path.basename(os.path.normpath(path)):
            continue
        if member.islnk():
            link = os.path.realpath(os.path.join(root, member.linkname))
            if link != root and not link.startswith(root + os.sep):
                raise ValueError(f"archive link {member.name!r} points outside the workdir")
        if os.path.islink(path):
            os.unlink(path)
        member.uid, member.gid = os.geteuid(), os.getegid()
        member.uname = member.gname = ""
        member.mode |= stat.S_IRUSR | stat.S_IWUSR | (stat.S_IXUSR if member.isdir() else 0)
        archive.extract(member, root, numeric_owner=True)


def pack(roots: dict[str, str]) -> bytes:
    """One tar of several folders, each under its own top-level name (``{"work": "/work"}`` puts
    ``/work/a.py`` at ``work/a.py``): what a snapshot of the sandbox's files keeps."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, folder in sorted(roots.items()):
            if os.path.isdir(folder):
                archive.add(folder, arcname=name, recursive=True)
    return buffer.getvalue()


def overlay(blob: bytes, roots: dict[str, str], remove: dict[str, list[str]], wipe: list[str]) -> None:
    """Put a :func:`pack`-made tar over folders holding an earlier state: empty the ``wipe`` folders,
    delete the ``remove`` paths (relative, per top-level name), then extract each name's members in its folder."""
    for folder in wipe:
        _empty(folder)
    for name, paths in remove.items():
        root = os.path.realpath(roots[name])
        for relative in paths:
            target = os.path.realpath(os.path.join(root, relative))
            if not target.startswith(root + os.sep):
                raise ValueError(f"cannot remove {relative!r}: it is outside {root}")
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.unlink(target)
    if not blob:
        return
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as archive:
        members = archive.getmembers()
        for name, folder in roots.items():
            mine = []
            for member in members:
                if member.name.startswith(name + "/"):  # the folder itself stays as it is
                    member.name = member.name[len(name) + 1 :]
                    if member.islnk():
                        member.linkname = member.linkname[len(name) + 1 :]
                    mine.append(member)
            _extract_snapshot(archive, mine, folder)


def do_reset(req: dict, blob: bytes) -> dict:
    clean = kill_others()
    with as_user():
        for folder in req.get("wipe", []):
            _empty(folder)
        if blob:
            _unpack(blob, req["workdir"])
    return {"ok": True, "clean": clean}


def do_pack(req: dict) -> bytes:
    with as_user():
        return pack(req["roots"])


def do_overlay(req: dict, blob: bytes) -> dict:
    if req.get("path"):  # the tar lies in the container's image (a committed snapshot); read as root
        with open(req["path"], "rb") as fh:
            blob = fh.read()
    with as_user():
        overlay(blob, req["roots"], req.get("remove", {}), req.get("wipe", []))
    return {"ok": True}


def do_read(req: dict) -> bytes:
    with as_user(), open(req["path"], "rb") as fh:
        return fh.read()


def do_write(req: dict, blob: bytes) -> dict:
    with as_user():
        return _write(req, blob)


def _write(req: dict, blob: bytes) -> dict:
    path = req["path"]
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(blob)
    if req.get("mode") is not None:
        os.chmod(path, int(req["mode"]))
    return {"ok": True}


def main() -> None:
    global RUN_UID, RUN_GID, SWITCH
    if len(sys.argv) > 2:
        RUN_UID, RUN_GID = int(sys.argv[1]), int(sys.argv[2])
    SWITCH = os.getuid() == 0 and RUN_UID != 0
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    while True:
        try:
            (size,) = struct.unpack(">I", _read_exact(4))
            req = json.loads(_read_exact(size))
            blob = _read_exact(req["blob"]) if req.get("blob") else b""
        except EOFError:
            kill_others()
            return
        op = req.get("op")
        try:
            if op == "exec":
                _send(do_exec(req))
            elif op == "read":
                _send({"ok": True}, do_read(req))
            elif op == "write":
                _send(do_write(req, blob))
            elif op == "reset":
                _send(do_reset(req, blob))
            elif op == "pack":
                _send({"ok": True}, do_pack(req))
            elif op == "overlay":
                _send(do_overlay(req, blob))
            elif op == "kill":
                _send({"ok": kill_others()})
            elif op == "hello":
                _send(
                    {
                        "ok": True,
                        "pid": os.getpid(),
                        "python": sys.version.split()[0],
                        "uid": os.getuid(),
                        "run_as": [RUN_UID, RUN_GID],
                    }
                )
            else:
                _send({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as exc:
            _send(
                {
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}",
                    "errno": getattr(exc, "errno", None),
                    "kind": type(exc).__name__,
                }
            )


if __name__ == "__main__":
    main()
