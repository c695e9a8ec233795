"""Sandbox images built offline: the base image, derived images, and the tar archives they take.

* :func:`ensure_base_image` — ``horizongym/base:<recipe hash>``: Debian bookworm from
  ``debootstrap --variant=minbase`` with Python, venv, pip, git, patch and procps, imported with
  ``docker import`` (no registry is ever contacted);
* :func:`derive_image` — an image made from another one by putting files in and running
  commands (a per-project virtual environment, say), committed as
  ``horizongym/<name>:<hash of base + files + commands>``;
* :func:`tar_files` — a deterministic tar of files, for images and ``SandboxSpec.files``.

Images are built once per machine: a tag that exists is reused, and a file lock keeps
parallel processes (pytest-xdist workers) from building the same image twice. Build folders
live in the cache folder, under ``sandboxes/build``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path, PurePosixPath
from typing import Any

from horizongym.cache import file_lock
from horizongym.sandboxes.base import SandboxError
from horizongym.sandboxes.engine import cache_dir, engine_calls, ensure_engine, install_packages

DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_SUITE = "bookworm"
BASE_VARIANT = "minbase"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "git", "patch", "procps")
BASE_RECIPE_VERSION = 1
SANDBOX_UID = 1000
"""The unprivileged user commands run as (``agent`` in the base image)."""
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Debian's /etc/profile overwrites PATH, which would hide a PATH set by the image or the
# sandbox (a virtual environment's bin/) from ``bash -lc``; the base image's keeps it.
_PROFILE = f"""# /etc/profile (horizongym): keep the PATH the image or the sandbox set.
[ -n "$PATH" ] || PATH={DEFAULT_PATH}
export PATH
if [ -d /etc/profile.d ]; then
  for i in /etc/profile.d/*.sh; do
    [ -r "$i" ] && . "$i"
  done
  unset i
fi
"""
_PASSWD = f"agent:x:{SANDBOX_UID}:{SANDBOX_UID}:horizongym sandbox:/tmp:/bin/bash\n"
_GROUP = f"agent:x:{SANDBOX_UID}:\n"
_IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEBOOTSTRAP_MINUTES = 20


class ImageBuildError(SandboxError):
    """A step of an image build failed; ``output`` holds what it printed. Not retryable: the same
    recipe fails the same way on another try."""

    retryable = False

    def __init__(self, message: str, *, command: str = "", exit_code: int | None = None, output: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.exit_code = exit_code
        self.output = output


# ----- images --------------------------------------------------------------------------------
def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def image_exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def base_image_tag(mirror: str | None = None, suite: str = BASE_SUITE) -> str:
    """The base image's tag: ``horizongym/base:<hash of the recipe>``."""
    recipe = {
        "version": BASE_RECIPE_VERSION,
        "suite": suite,
        "variant": BASE_VARIANT,
        "packages": sorted(BASE_PACKAGES),
        "mirror": _mirror(mirror),
        "profile": _PROFILE,
        "passwd": _PASSWD,
        "group": _GROUP,
    }
    return f"horizongym/base:{_digest(recipe)}"


def _mirror(mirror: str | None) -> str:
    return mirror or os.environ.get("HORIZONGYM_DEBIAN_MIRROR") or DEFAULT_MIRROR


def _mounts_under(folder: Path) -> list[str]:
    root = str(folder.resolve())
    found = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            point = line.split()[1].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _remove_rootfs(folder: Path) -> None:
    """Delete a debootstrap folder, unmounting what debootstrap may have left mounted in it first."""
    for point in _mounts_under(folder):
        subprocess.run(["umount", "-l", point], capture_output=True)
    if _mounts_under(folder):
        raise SandboxError(
            f"{folder} still has mounts in it; not deleting it (unmount them, then remove it)", retryable=False
        )
    shutil.rmtree(folder, ignore_errors=True)


def _finish_rootfs(root: Path) -> None:
    """The base recipe's own touches: the sandbox user, a PATH-keeping /etc/profile, no apt caches."""
    (root / "etc" / "profile").write_text(_PROFILE)
    with open(root / "etc" / "passwd", "a") as fh:
        fh.write(_PASSWD)
    with open(root / "etc" / "group", "a") as fh:
        fh.write(_GROUP)
    for cache in (root / "var" / "cache" / "apt" / "archives", root / "var" / "lib" / "apt" / "lists"):
        for item in cache.glob("*"):
            if item.is_file():
                item.unlink()


def ensure_base_image(client: Any | None = None, *, mirror: str | None = None, suite: str = BASE_SUITE) -> str:
    """The tag of the base image, built first if this machine has none (about a minute, once).

    ``debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,git,patch,procps
    bookworm DIR MIRROR``, then the recipe's touches (user ``agent`` uid 1000, an /etc/profile
    that keeps PATH), then ``tar -C DIR -c . | docker import``. ``mirror`` defaults to
    ``$HORIZONGYM_DEBIAN_MIRROR`` or deb.debian.org.
    """
    client = client or ensure_engine()
    tag = base_image_tag(mirror, suite)
    with engine_calls(f"looking up or building the base image {tag}"):
        return _ensure_base_image(client, tag, mirror, suite)


def _ensure_base_image(client: Any, tag: str, mirror: str | None, suite: str) -> str:
    if image_exists(client, tag):
        return tag
    with file_lock(f"image-{tag}"):
        if image_exists(client, tag):
            return tag
        if shutil.which("debootstrap") is None:
            install_packages(["debootstrap"])
        if os.geteuid() != 0:
            raise SandboxError(
                "building the base image runs debootstrap, which needs root. Fix: sudo horizongym sandbox build-image",
                retryable=False,
            )
        build_root = cache_dir() / "build"
        build_root.mkdir(exist_ok=True)
        rootfs = Path(tempfile.mkdtemp(prefix="base-", dir=build_root))
        try:
            cmd = [
                "debootstrap",
                f"--variant={BASE_VARIANT}",
                f"--include={','.join(BASE_PACKAGES)}",
                suite,
                str(rootfs),
                _mirror(mirror),
            ]
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=_DEBOOTSTRAP_MINUTES * 60,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
            if done.returncode != 0:
                raise ImageBuildError(
                    f"debootstrap failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}",
                    command=" ".join(cmd),
                    exit_code=done.returncode,
                    output=done.stdout + done.stderr,
                )
            for point in _mounts_under(rootfs):
                subprocess.run(["umount", "-l", point], capture_output=True)
            _finish_rootfs(rootfs)
            _import_rootfs(client, rootfs, tag)
        finally:
            _remove_rootfs(rootfs)
    return tag


def _import_rootfs(client: Any, rootfs: Path, tag: str) -> None:
    """``tar -C rootfs -c . | docker import - tag`` through the SDK (streamed, never in memory)."""
    repository, _, version = tag.partition(":")
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert tar.stdout is not None
    changes = [f"ENV PATH={DEFAULT_PATH}", "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]']
    try:
        client.api.import_image(src=tar.stdout, repository=repository, tag=version, changes=changes, stream_src=True)
    finally:
        tar.stdout.close()
        err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
        code = tar.wait()
    if code != 0:
        raise ImageBuildError(f"tar of {rootfs} failed (exit {code}): {err[-2000:]}", exit_code=code, output=err)
    if not image_exists(client, tag):
        raise ImageBuildError(f"docker import did not produce {tag}")


def derive_image(
    base: str,
    name: str,
    *,
    files: bytes | None = None,
    target_dir: str = "/",
    commands: list[str],
    network: bool = False,
    image_env: dict[str, str] | None = None,
    command_timeout: float = 1800.0,
    client: Any | None = None,
) -> str:
    """An image made from ``base``: ``files`` (a tar) put in ``target_dir``, then ``commands`` run.

    Each command runs as root with ``bash -lc`` in ``target_dir``, in order, with no network
    unless ``network`` (a build should install from wheels it was given, not from the network);
    the first that fails (or runs past ``command_timeout``) raises :class:`ImageBuildError`
    with its output. ``image_env`` becomes the image's ``ENV`` (e.g. ``PATH`` starting with a
    virtual environment's ``bin``). The result is committed as
    ``horizongym/<name>:<hash of base's id + files + commands + options>`` and the tag
    returned; a tag that exists is returned at once (a file lock guards the build).

    Example — a virtual environment at ``/opt/venv`` from wheels::

        tag = derive_image(ensure_base_image(), "env-mypkg", files=wheels_tar, target_dir="/wheels",
                           commands=["python3 -m venv /opt/venv",
                                     "/opt/venv/bin/pip install --no-index --find-links /wheels pytest mypkg",
                                     "rm -rf /wheels"],
                           image_env={"PATH": "/opt/venv/bin:" + DEFAULT_PATH})
    """
    if not _IMAGE_NAME.match(name):
        raise ValueError(f"image name {name!r}: use lowercase letters, digits and . _ - / (like 'env-mypkg')")
    if not target_dir.startswith("/"):
        raise ValueError(f"target_dir must be absolute, got {target_dir!r}")
    if isinstance(commands, str) or not all(isinstance(c, str) for c in commands):
        raise TypeError("commands must be a list of shell command strings")
    if files is not None and not isinstance(files, bytes | bytearray):
        raise TypeError("files must be an uncompressed tar archive as bytes")
    env = dict(image_env or {})
    for key, value in env.items():
        if not _ENV_KEY.match(key) or "\n" in value:
            raise ValueError(f"image_env {key!r}={value!r}: keys are shell names, values one line")
    client = client or ensure_engine()
    with engine_calls(f"deriving the image {name} from {base}"):
        return _derive_image(client, base, name, files, target_dir, commands, network, env, command_timeout)


def _derive_image(
    client: Any,
    base: str,
    name: str,
    files: bytes | None,
    target_dir: str,
    commands: list[str],
    network: bool,
    env: dict[str, str],
    command_timeout: float,
) -> str:
    import docker.errors

    try:
        base_id = client.images.get(base).id
    except docker.errors.ImageNotFound as exc:
        missing = f"base image {base!r} not found; build it with ensure_base_image()"
        raise SandboxError(missing, retryable=False) from exc
    key = _digest(
        {
            "v": 1,
            "base": base_id,
            "files": hashlib.sha256(files or b"").hexdigest(),
            "target_dir": target_dir,
            "commands": list(commands),
            "network": network,
            "env": env,
        }
    )
    tag = f"horizongym/{name}:{key}"
    if image_exists(client, tag):
        return tag
    with file_lock(f"image-{tag}"):
        if image_exists(client, tag):
            return tag
        _build_derived(client, base, tag, files, target_dir, commands, network, env, command_timeout)
    return tag


def _build_derived(
    client: Any,
    base: str,
    tag: str,
    files: bytes | None,
    target_dir: str,
    commands: list[str],
    network: bool,
    env: dict[str, str],
    command_timeout: float,
) -> None:
    from horizongym.sandboxes.reaper import owner_labels

    container = client.containers.create(
        base,
        command=["sleep", "infinity"],
        user="0:0",
        working_dir="/",
        network_mode="bridge" if network else "none",
        labels={**owner_labels(), "horizongym.kind": "build"},
        environment=env or None,
    )
    try:
        container.start()
        _run_build_step(container, f"mkdir -p {_quote(target_dir)}", "/", 60)
        if files and not container.put_archive(target_dir, bytes(files)):
            raise ImageBuildError(f"could not put the files into {target_dir} for {tag}")
        for command in commands:
            _run_build_step(container, command, target_dir, command_timeout)
        repository, _, version = tag.partition(":")
        changes = [f'ENV {k}="{v}"' for k, v in env.items()]
        container.commit(repository=repository, tag=version, changes=changes or None)
    finally:
        with suppress(Exception):
            container.remove(force=True)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _run_build_step(container: Any, command: str, workdir: str, timeout: float) -> None:
    wrapped = ["timeout", "-s", "KILL", f"{max(int(timeout), 1)}", "bash", "-lc", command]
    result = container.exec_run(wrapped, workdir=workdir, user="0:0")
    if result.exit_code != 0:
        output = (result.output or b"").decode("utf-8", "replace")
        why = f"ran past {timeout:.0f} s" if result.exit_code == 137 else f"exit {result.exit_code}"
        raise ImageBuildError(
            f"image build step failed ({why}): {command}\n{output[-4000:]}",
            command=command,
            exit_code=result.exit_code,
            output=output,
        )


def tar_files(files: Mapping[str, bytes | str], *, executable: Iterable[str] = ()) -> bytes:
    """An uncompressed tar of ``{relative path: content}`` (for ``SandboxSpec.files``, ``derive_image``
    or a content hash), with fixed metadata so the same files always give the same bytes: parent
    folders 0755, files 0644 (0755 for paths in ``executable``), no owners, mtime 0."""
    import tarfile

    executable = set(executable)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        folders: set[str] = set()
        for path in sorted(files):
            name = path.lstrip("/")
            for parent in reversed(list(PurePosixPath(name).parents)[:-1]):
                if parent.as_posix() not in folders:
                    folders.add(parent.as_posix())
                    info = tarfile.TarInfo(parent.as_posix())
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    archive.addfile(info)
            content = files[path]
            data = content.encode() if isinstance(content, str) else bytes(content)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if path in executable else 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
