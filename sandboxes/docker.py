"""The docker backend: one container per episode on the real engine, driven through the docker SDK.

Each container runs with no network, every capability dropped but the three the exec server
needs to run commands as another user and to kill them (SETUID, SETGID, KILL),
``no-new-privileges``, memory (swap included), CPU, pids and file-size limits, a read-only root
filesystem, and tmpfs mounts for the working directory (``Limits.workdir_mb``) and ``/tmp``.
Commands run as uid 1000, who owns both.

Its main process, under docker's init, is the exec server of :mod:`horizongym.sandboxes.server`,
attached over the container's stdin/stdout: a command is one round trip of length-prefixed JSON
(docker's 8-byte stream frames taken apart here), a few milliseconds instead of the ~55 ms of
docker's exec API, which stays available as ``exec(..., path="exec_run")`` for comparison.
Files travel the same way: docker's archive API cannot see tmpfs mounts.

A container lives as long as this process's connection to it: when the connection closes (the
sandbox is garbage-collected, or the process dies, even by SIGKILL) the server's stdin ends, it
kills every process and exits, and docker removes the container (``StdinOnce`` + auto-remove).
Containers also carry the labels of :mod:`horizongym.sandboxes.reaper`, which removes any left
behind when the process that started them is gone.
:class:`~horizongym.sandboxes.pool.SandboxPool` keeps warm ones.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import json
import os
import posixpath
import socket
import struct
import tarfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from horizongym.sandboxes.base import ExecResult, SandboxError, SandboxSpec
from horizongym.sandboxes.engine import is_engine_failure
from horizongym.sandboxes.images import SANDBOX_UID
from horizongym.sandboxes.reaper import SNAPSHOT_KIND, install_exit_cleanup, owner_labels, reap_once, run_id
from horizongym.sandboxes.server import OutputCap
from horizongym.sandboxes.snapshots import TMP, WORK, SandboxSnapshot, SnapshotMethod, changes_since, check_method

if TYPE_CHECKING:
    from horizongym.sandboxes.pool import SandboxPool

SERVER_SOURCE = (Path(__file__).with_name("server.py")).read_bytes()
LOADER = (
    "import os,sys;n=int(sys.argv.pop(1));b=bytearray();"
    'exec("while len(b)<n:\\n c=os.read(0,n-len(b))\\n if not c:raise SystemExit(3)\\n b+=c");'
    'exec(compile(bytes(b),"horizongym-exec-server","exec"))'
)
"""The container's command: reads the exec server's source from stdin, then runs it (keeps ``ps`` short)."""
REPLY_SLACK_S = 15.0
"""How long past a command's own timeout to wait for the server's reply before giving up on it."""
EXEC_PATHS = ("fast", "exec_run")
SNAPSHOT_REPOSITORY = "horizongym/snapshot"
SNAPSHOT_TAR = "/.horizongym-snapshot.tar"
"""Where a committed snapshot image holds its changes (a tar the exec server unpacks on restore)."""
_snapshot_ids = itertools.count(1)
_images_to_remove: set[str] = set()
"""Released snapshot images that a running sandbox still used: removed when it is destroyed."""
_images_lock = threading.Lock()

# Importing happens on the main thread, where signal handlers can be set; sandboxes are often
# started from worker threads, where they cannot.
install_exit_cleanup()


def _check_spec(spec: SandboxSpec) -> None:
    if not isinstance(spec, SandboxSpec):
        raise TypeError(f"expected a SandboxSpec, got {type(spec).__name__}")
    if not spec.image or not isinstance(spec.image, str):
        raise ValueError("SandboxSpec.image must name a docker image (see images.ensure_base_image)")
    workdir = posixpath.normpath(spec.workdir)
    if not spec.workdir.startswith("/") or workdir in ("/", "/tmp", "/proc", "/sys", "/dev"):
        raise ValueError(f"SandboxSpec.workdir must be an absolute folder of its own, got {spec.workdir!r}")
    lim = spec.limits
    for name in ("memory_mb", "pids", "file_size_mb", "workdir_mb", "output_bytes"):
        if getattr(lim, name) <= 0:
            raise ValueError(f"Limits.{name} must be positive, got {getattr(lim, name)}")
    if lim.cpus <= 0:
        raise ValueError(f"Limits.cpus must be positive, got {lim.cpus}")
    if not isinstance(spec.files, bytes | bytearray):
        raise TypeError("SandboxSpec.files must be an uncompressed tar archive as bytes")


def config_key(spec: SandboxSpec) -> tuple[Any, ...]:
    """What a container is created from (two specs with the same key can share warm containers)."""
    return (spec.image, posixpath.normpath(spec.workdir), tuple(spec.env), spec.limits)


def container_config(spec: SandboxSpec, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``client.containers.create`` for a sandbox of ``spec``."""
    import docker.types

    lim = spec.limits
    workdir = posixpath.normpath(spec.workdir)
    uid = SANDBOX_UID
    env = {"HOME": "/tmp", "USER": "agent", "LOGNAME": "agent", "LANG": "C.UTF-8"}
    env.update(dict(spec.env))
    fsize = lim.file_size_mb * 1024 * 1024
    return {
        "image": spec.image,
        "command": ["python3", "-I", "-c", LOADER, str(len(SERVER_SOURCE)), str(uid), str(uid)],
        "stdin_open": True,
        "detach": False,  # with stdin_open: StdinOnce, so when our connection closes (even by SIGKILL)
        "auto_remove": True,  # stdin ends, the server exits, and the container goes away by itself
        "tty": False,
        "user": "0:0",
        "working_dir": workdir,
        "environment": env,
        "network_mode": "none",
        "init": True,
        "cap_drop": ["ALL"],
        "cap_add": ["SETUID", "SETGID", "KILL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": f"{lim.memory_mb}m",
        "memswap_limit": f"{lim.memory_mb}m",
        "nano_cpus": int(min(lim.cpus, os.cpu_count() or lim.cpus) * 1e9),  # docker refuses more than the host has
        "pids_limit": lim.pids,
        "ulimits": [
            docker.types.Ulimit(name="fsize", soft=fsize, hard=fsize),
            docker.types.Ulimit(name="nofile", soft=4096, hard=4096),
            docker.types.Ulimit(name="core", soft=0, hard=0),
        ],
        "read_only": True,
        "tmpfs": {
            workdir: f"size={lim.workdir_mb}m,uid={uid},gid={uid},mode=0755,exec",
            "/tmp": f"size={lim.workdir_mb}m,mode=1777,exec",
        },
        "labels": {**owner_labels(), "horizongym.kind": "sandbox", **(labels or {})},
        "log_config": docker.types.LogConfig(type="none"),  # stdout is the protocol: nothing to keep
    }


class Channel:
    """Length-prefixed JSON over a container's attached stdin/stdout (docker's frames taken apart).

    Docker multiplexes a non-tty container's stdout and stderr on one stream, each frame an
    8-byte header (stream id, 3 zero bytes, big-endian size) and its payload. Stdout carries
    the server's replies; the last few kB of stderr are kept for error messages.
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw  # keeps the HTTP response (and so the socket) alive
        self.sock: socket.socket = getattr(raw, "_sock", raw)
        self._frames = bytearray()
        self._stdout = bytearray()
        self.stderr = bytearray()

    def send(self, header: dict[str, Any], blob: bytes = b"") -> None:
        header = {**header, "blob": len(blob)}
        data = json.dumps(header).encode()
        self.sock.settimeout(60.0)
        self.sock.sendall(struct.pack(">I", len(data)) + data)
        if blob:
            self.sock.sendall(blob)

    def receive(self, timeout: float) -> tuple[dict[str, Any], bytes]:
        deadline = time.monotonic() + timeout
        while True:
            message = self._take_message()
            if message is not None:
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self._frames += chunk
            self._split_frames()

    def _split_frames(self) -> None:
        frames = self._frames
        offset = 0
        while len(frames) - offset >= 8:
            kind = frames[offset]
            (size,) = struct.unpack_from(">I", frames, offset + 4)
            if len(frames) - offset - 8 < size:
                break
            payload = frames[offset + 8 : offset + 8 + size]
            if kind == 2:
                self.stderr += payload
                del self.stderr[:-8192]
            else:
                self._stdout += payload
            offset += 8 + size
        del frames[:offset]

    def _take_message(self) -> tuple[dict[str, Any], bytes] | None:
        buf = self._stdout
        if len(buf) < 4:
            return None
        (size,) = struct.unpack_from(">I", buf, 0)
        if len(buf) < 4 + size:
            return None
        header = json.loads(bytes(buf[4 : 4 + size]))
        blob_size = int(header.get("blob", 0))
        if len(buf) < 4 + size + blob_size:
            return None
        blob = bytes(buf[4 + size : 4 + size + blob_size])
        del buf[: 4 + size + blob_size]
        return header, blob

    def close(self) -> None:
        for thing in (self.sock, self._raw):
            with contextlib.suppress(Exception):
                thing.close()


def start_container(client: Any, spec: SandboxSpec, labels: dict[str, str] | None = None) -> tuple[Any, Channel]:
    """Create and start a sandbox container, attach to its exec server and check it answers.

    Every failure of the engine or the container comes out as :class:`SandboxError`: retryable
    when the engine failed or went away, not when it refused the request (no such image, a
    configuration it does not accept).
    """
    import docker.errors

    _check_spec(spec)
    reap_once(client)
    try:
        container = client.containers.create(**container_config(spec, labels))
    except docker.errors.ImageNotFound as exc:
        raise SandboxError(
            f"image {spec.image!r} not found; build it (images.ensure_base_image / derive_image)", retryable=False
        ) from exc
    except Exception as exc:
        if not is_engine_failure(exc):
            raise
        refused = isinstance(exc, docker.errors.APIError) and exc.is_client_error()
        raise SandboxError(
            f"docker could not create a sandbox from {spec.image!r}: {type(exc).__name__}: {exc}", retryable=not refused
        ) from exc
    channel: Channel | None = None
    try:
        raw = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        channel = Channel(raw)
        container.start()
        channel.sock.sendall(SERVER_SOURCE)
        channel.send({"op": "hello"})
        reply, _ = channel.receive(30.0)
        if not reply.get("ok"):
            raise SandboxError(f"the exec server did not start: {reply}")
        if spec.files:
            channel.send({"op": "reset", "workdir": posixpath.normpath(spec.workdir), "wipe": []}, bytes(spec.files))
            reply, _ = channel.receive(120.0)
            if not reply.get("ok"):
                raise SandboxError(
                    f"could not unpack SandboxSpec.files into {spec.workdir}: {reply.get('error')}", retryable=False
                )
    except BaseException as exc:
        detail = _describe_death(container, channel)
        if channel is not None:
            channel.close()
        with contextlib.suppress(Exception):
            container.remove(force=True)
        if isinstance(exc, SandboxError):
            raise
        if isinstance(exc, EOFError | TimeoutError | OSError | ValueError | struct.error) or is_engine_failure(exc):
            raise SandboxError(f"the sandbox from {spec.image!r} did not start: {detail}") from exc
        raise
    return container, channel


def _describe_death(container: Any, channel: Channel | None) -> str:
    """What is known about a container that stopped answering (its state, its last output)."""
    parts = []
    try:
        container.reload()
        state = container.attrs.get("State", {})
        parts.append(
            f"container {container.short_id} {state.get('Status')}, exit code {state.get('ExitCode')}"
            + (", killed by the OOM killer" if state.get("OOMKilled") else "")
            + (f", error: {state['Error']}" if state.get("Error") else "")
        )
    except Exception as exc:
        parts.append(f"container {getattr(container, 'short_id', '?')} is gone ({type(exc).__name__})")
    err = bytes(channel.stderr).decode("utf-8", "replace").strip() if channel is not None else ""
    if not err:
        try:
            err = container.logs(stdout=True, stderr=True, tail=20).decode("utf-8", "replace").strip()
        except Exception:
            err = ""
    if err:
        parts.append(f"its last output: {err[-1500:]}")
    return "; ".join(parts)


class DockerSandbox:
    """A sandbox in a docker container (see the module docstring). Thread-safe, one call at a time.

    ``DockerSandbox(spec)`` starts a container of its own (about a quarter of a second);
    :class:`~horizongym.sandboxes.pool.SandboxPool` hands out warm ones instead.
    """

    isolated = True

    def __init__(self, spec: SandboxSpec, *, client: Any | None = None) -> None:
        if client is None:
            from horizongym.sandboxes.engine import shared_client

            client = shared_client()
        container, channel = start_container(client, spec)
        self._setup(spec, client, container, channel, pool=None)

    @classmethod
    def adopt(
        cls, spec: SandboxSpec, client: Any, container: Any, channel: Channel, pool: SandboxPool | None
    ) -> DockerSandbox:
        """Wrap a started container (its exec server answering, ``spec.files`` in place)."""
        self = cls.__new__(cls)
        self._setup(spec, client, container, channel, pool)
        return self

    def _setup(
        self, spec: SandboxSpec, client: Any, container: Any, channel: Channel, pool: SandboxPool | None
    ) -> None:
        self.spec = spec
        self.client = client
        self.container = container
        self.channel = channel
        self.pool = pool
        self.workdir = posixpath.normpath(spec.workdir)
        self._lock = threading.Lock()
        self._closed = False
        self._dead: str | None = None
        self.snapshot_image: str | None = None
        """The committed snapshot image its container was started from (``commit`` restores)."""

    def __repr__(self) -> str:
        return f"DockerSandbox({self.spec.image!r}, container={self.container.short_id})"

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- the server round trip -------------------------------------------------------
    def _call(self, header: dict[str, Any], blob: bytes = b"", timeout: float = 60.0) -> tuple[dict[str, Any], bytes]:
        if self._closed:
            raise SandboxError("this sandbox is closed", retryable=False)
        if self._dead is not None:
            raise SandboxError(self._dead)
        try:
            self.channel.send(header, blob)
            return self.channel.receive(timeout)
        except (EOFError, OSError, TimeoutError, ValueError, struct.error) as exc:
            why = {TimeoutError: "no answer in time", EOFError: "its connection closed"}.get(
                type(exc), f"its connection failed: {type(exc).__name__}: {exc}"
            )
            self._dead = f"the sandbox is gone ({why}): {_describe_death(self.container, self.channel)}"
            raise SandboxError(self._dead) from exc

    def _path(self, path: str) -> str:
        if not isinstance(path, str) or not path:
            raise ValueError(f"a file path is needed, got {path!r}")
        return posixpath.normpath(posixpath.join(self.workdir, path))

    @property
    def alive(self) -> bool:
        """False once the container stopped answering or the sandbox was closed."""
        return not self._closed and self._dead is None

    def ping(self, timeout: float = 2.0) -> bool:
        """Whether the exec server answers within ``timeout`` seconds."""
        with self._lock:
            try:
                reply, _ = self._call({"op": "hello"}, timeout=timeout)
            except SandboxError:
                return False
        return bool(reply.get("ok"))

    # ----- the protocol ----------------------------------------------------------------
    def exec(self, command: str, timeout: float = 30.0, *, path: str = "fast") -> ExecResult:
        """Run ``command`` with ``bash -lc`` in the workdir (see :class:`~horizongym.sandboxes.base.Sandbox`).

        ``path="exec_run"`` goes through docker's exec API instead of the exec server (slower;
        killed with coreutils ``timeout``; no limit detection but the timeout), for comparison.
        """
        if not isinstance(command, str):
            raise TypeError(f"command must be a string, got {type(command).__name__}")
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if path not in EXEC_PATHS:
            raise ValueError(f"path must be one of {EXEC_PATHS}, got {path!r}")
        if path == "exec_run":
            return self._exec_run(command, timeout)
        request = {
            "op": "exec",
            "cmd": command,
            "timeout": float(timeout),
            "cwd": self.workdir,
            "max_output": self.spec.limits.output_bytes,
        }
        with self._lock:
            reply, _ = self._call(request, timeout=timeout + REPLY_SLACK_S)
        if not reply.get("ok"):
            raise SandboxError(f"the exec server failed: {reply.get('error')}")
        return ExecResult(
            exit_code=int(reply["exit_code"]),
            output=str(reply["output"]),
            duration_s=float(reply["duration"]),
            timed_out=bool(reply["timed_out"]),
            truncated=bool(reply["truncated"]),
            limit=reply.get("limit"),
        )

    def _exec_run(self, command: str, timeout: float) -> ExecResult:
        if self._closed:
            raise SandboxError("this sandbox is closed", retryable=False)
        start = time.monotonic()
        cmd = ["timeout", "-s", "KILL", f"{timeout:.3f}", "bash", "-lc", command]
        try:
            result = self.container.exec_run(cmd, workdir=self.workdir, user=f"{SANDBOX_UID}:{SANDBOX_UID}")
        except Exception as exc:
            raise SandboxError(f"docker exec failed: {exc}; {_describe_death(self.container, None)}") from exc
        duration = time.monotonic() - start
        cap = OutputCap(self.spec.limits.output_bytes)
        cap.add(result.output or b"")
        text, truncated = cap.text()
        timed_out = result.exit_code == 137 and duration >= timeout - 0.05
        return ExecResult(
            exit_code=int(result.exit_code),
            output=text,
            duration_s=duration,
            timed_out=timed_out,
            truncated=truncated,
            limit="timeout" if timed_out else None,
        )

    def write_file(self, path: str, content: bytes) -> None:
        """Write ``content`` at ``path`` (absolute, or relative to the workdir), creating parents."""
        if isinstance(content, str):
            raise TypeError("write_file takes bytes; encode text first (content.encode())")
        if not isinstance(content, bytes | bytearray | memoryview):
            raise TypeError(f"content must be bytes, got {type(content).__name__}")
        target = self._path(path)
        with self._lock:
            reply, _ = self._call({"op": "write", "path": target}, bytes(content))
        _raise_for(reply, target)

    def read_file(self, path: str) -> bytes:
        """The bytes at ``path``; ``FileNotFoundError`` if there is no such file."""
        target = self._path(path)
        with self._lock:
            reply, blob = self._call({"op": "read", "path": target})
        _raise_for(reply, target)
        return blob

    def reset(self) -> None:
        """Kill every process but the server, empty the workdir, /tmp and /dev/shm, restore ``spec.files``."""
        self.load(self.spec)

    def load(self, spec: SandboxSpec) -> None:
        """:meth:`reset` to another spec's files (same image, workdir, env and limits)."""
        if config_key(spec) != config_key(self.spec):
            raise ValueError("load() needs a spec with the same image, workdir, env and limits")
        request = {"op": "reset", "workdir": self.workdir, "wipe": [self.workdir, "/tmp", "/dev/shm"]}
        with self._lock:
            reply, _ = self._call(request, bytes(spec.files), timeout=120.0)
        if not reply.get("ok"):
            raise SandboxError(f"reset failed: {reply.get('error')}")
        if not reply.get("clean", True):
            self._dead = "reset could not kill every process in the sandbox"
            raise SandboxError(self._dead)
        self.spec = spec

    # ----- snapshots (horizongym.sandboxes.snapshots) --------------------------------------
    def pack(self) -> bytes:
        """A tar of the workdir (under ``work/``) and ``/tmp`` (under ``tmp/``), read by the exec server."""
        with self._lock:
            reply, blob = self._call({"op": "pack", "roots": {WORK: self.workdir, TMP: "/tmp"}}, timeout=120.0)
        if not reply.get("ok"):
            raise SandboxError(f"could not pack the sandbox's files: {reply.get('error')}", retryable=False)
        return blob

    def overlay(self, changes: bytes, removed: tuple[str, ...], *, image_path: str | None = None) -> None:
        """Put a snapshot's changes over the starting files: ``/tmp`` emptied, ``removed`` deleted, the
        tar (``changes``, or the file ``image_path`` of the container's image) unpacked."""
        request: dict[str, Any] = {"op": "overlay", "roots": {WORK: self.workdir, TMP: "/tmp"}}
        request.update(remove={WORK: list(removed)}, wipe=["/tmp"], path=image_path)
        with self._lock:
            reply, _ = self._call(request, changes, timeout=120.0)
        if not reply.get("ok"):
            raise SandboxError(f"could not restore a snapshot's files: {reply.get('error')}", retryable=False)

    def snapshot(self, method: SnapshotMethod = "archive") -> SandboxSnapshot:
        """This sandbox's files as a :class:`~horizongym.sandboxes.snapshots.SandboxSnapshot` (``archive``:
        the changes in the snapshot; ``commit``: in a new image, see that module)."""
        check_method(method)
        changes, removed = changes_since(bytes(self.spec.files), self.pack())
        if method == "archive":
            return SandboxSnapshot("archive", "docker", self.spec, changes, removed)
        image = commit_snapshot_image(self.client, self.spec.image, changes)
        return SandboxSnapshot("commit", "docker", self.spec, b"", removed, image)

    @classmethod
    def restore(
        cls, snapshot: SandboxSnapshot, *, client: Any | None = None, pool: SandboxPool | None = None
    ) -> DockerSandbox:
        """A new sandbox holding ``snapshot``'s files: a warm one of ``pool`` (``archive``, when given),
        else a new container (of the committed image, for ``commit``)."""
        if client is None:
            from horizongym.sandboxes.engine import shared_client

            client = pool.client if pool is not None else shared_client()
        if snapshot.method == "archive":
            box = pool.acquire(snapshot.spec) if pool is not None else cls(snapshot.spec, client=client)
        else:
            if snapshot.image is None:
                raise ValueError("a commit snapshot without its image cannot be restored")
            container, channel = start_container(client, replace(snapshot.spec, image=snapshot.image))
            box = cls.adopt(snapshot.spec, client, container, channel, pool=None)
            box.snapshot_image = snapshot.image
        try:
            box.overlay(snapshot.changes, snapshot.removed, image_path=None if snapshot.image is None else SNAPSHOT_TAR)
        except BaseException:
            box.close()
            raise
        return box

    def close(self) -> None:
        """Give the container back to its pool, or remove it."""
        if self._closed:
            return
        if self.pool is not None:
            self.pool.release(self)
            return
        self.destroy()

    def destroy(self) -> None:
        """Remove the container now (never returned to a pool)."""
        self._closed = True
        self.channel.close()
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        if self.snapshot_image is not None:
            # closing the channel starts docker's auto-remove, and remove(force=True) returns at once
            # while that removal is in progress: the image stays in use until the container is gone, so
            # a release of it made after this close (or pending since before) must find it gone
            with contextlib.suppress(Exception):
                self.container.wait(condition="removed", timeout=30)
            with _images_lock:
                pending = self.snapshot_image in _images_to_remove
            if pending:
                remove_snapshot_image(self.snapshot_image, self.client)


def commit_snapshot_image(client: Any, base_image: str, changes: bytes) -> str:
    """A new image: ``base_image`` with ``changes`` at :data:`SNAPSHOT_TAR` (``docker commit`` of a
    stopped helper container); labelled as this process's snapshot. Returns its name."""
    import docker.errors

    holder = io.BytesIO()
    with tarfile.open(fileobj=holder, mode="w") as archive:
        member = tarfile.TarInfo(SNAPSHOT_TAR.lstrip("/"))
        member.size, member.mode, member.mtime = len(changes), 0o644, int(time.time())
        archive.addfile(member, io.BytesIO(changes))
    labels = {**owner_labels(), "horizongym.kind": SNAPSHOT_KIND}
    name = f"{SNAPSHOT_REPOSITORY}:{run_id()}-{next(_snapshot_ids)}-{os.urandom(3).hex()}"
    repository, tag = name.split(":")
    try:
        helper = client.containers.create(
            base_image,
            command=["true"],
            network_mode="none",
            labels={**owner_labels(), "horizongym.kind": "snapshot-helper"},
        )
    except docker.errors.ImageNotFound as exc:
        raise SandboxError(f"image {base_image!r} not found: cannot commit a snapshot of it", retryable=False) from exc
    except Exception as exc:
        if not is_engine_failure(exc):
            raise
        raise SandboxError(f"docker could not create a snapshot helper: {type(exc).__name__}: {exc}") from exc
    try:
        helper.put_archive("/", holder.getvalue())
        helper.commit(repository=repository, tag=tag, conf={"Labels": labels})
    except Exception as exc:
        if not is_engine_failure(exc):
            raise
        raise SandboxError(f"docker could not commit a snapshot image: {type(exc).__name__}: {exc}") from exc
    finally:
        with contextlib.suppress(Exception):
            helper.remove(force=True)
    return name


def remove_snapshot_image(name: str, client: Any | None = None) -> None:
    """Remove a committed snapshot image; while a sandbox still runs from it, when that sandbox goes."""
    import docker.errors

    if client is None:
        from horizongym.sandboxes.engine import shared_client

        client = shared_client()
    try:
        client.images.remove(name, noprune=False)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: a container still uses it
            raise SandboxError(f"could not remove the snapshot image {name}: {exc}") from exc
        with _images_lock:
            _images_to_remove.add(name)
        return
    with _images_lock:
        _images_to_remove.discard(name)


def _raise_for(reply: dict[str, Any], path: str) -> None:
    if reply.get("ok"):
        return
    code = reply.get("errno")
    if isinstance(code, int):
        raise OSError(code, f"{errno.errorcode.get(code, 'error')}: {reply.get('error')}", path)
    raise SandboxError(f"{path}: {reply.get('error')}")
